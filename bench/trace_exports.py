"""Where chat's slow messages fall around the exports: reads ``bench/reports.py --trace FILE``.

Run: .venv/bin/python bench/trace_exports.py FILE [--edge-ms 10]

A message is *slow* above the alone phases' pooled p99. Each with-export message is placed by where its flight
(sent → delivered) lies against the export requests, as the export client saw them (start t0, end t1):
- ``request in``: in flight when an export request was sent, or sent within ``--edge-ms`` after (the web process
  takes the request: middleware, routing, the API token, the commit, handing it to the render process; as the
  loop exports back to back, the previous export's last steps come just before);
- ``response out``: within ``--edge-ms`` before an export's response arrived (the audit row's commit, the file
  sent back);
- ``render pdf`` / ``render xlsx``: inside an export, away from both ends (the render process reads and draws);
- ``between``: no export request open (the export client turning one response into the next request).

For each place: the share of with-export messages, how many of them were slow, and how much of the phase's
excess over 1 % slow they account for.
"""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_load import percentile  # noqa: E402 - the p99 bench/reports.py reports, so the threshold is that figure

OFFSET_BINS_MS = (0, 2, 4, 6, 10, 20, 50, 1e9)


def place(sent: float, delivered: float, exports: list[dict[str, Any]], starts: list[float], edge_s: float) -> str:
    """Where a message's flight lies against the export windows (sorted by start)."""
    i = bisect.bisect_right(starts, delivered) - 1
    if i < 0:
        return "between"
    # the export running when the message was delivered, or the last one before it
    for export in (exports[i], exports[i - 1] if i > 0 else None):
        if export is None:
            continue
        t0, t1 = export["t0"], export["t1"]
        if delivered < t0 or sent > t1:
            continue
        if sent <= t0 + edge_s:
            return "request in"
        if delivered >= t1 - edge_s:
            return "response out"
        return f"render {export['format']}"
    return "between"


def analyse(phases: list[dict[str, Any]], edge_ms: float) -> dict[str, Any]:
    alone = [(d - s) * 1000 for p in phases if p["kind"] == "alone" for s, d in p["messages"]]
    threshold = percentile(alone, 99) or 0.0
    places: dict[str, list[int]] = {}
    # By when a message was delivered after the latest request start: the requests' own cost shows as a
    # raised slow rate in the first milliseconds.
    by_offset = [[0, 0] for _ in OFFSET_BINS_MS[:-1]]
    total = slow_total = 0
    for p in phases:
        if p["kind"] != "with_export":
            continue
        exports = sorted((e for e in p["exports"] if "t0" in e), key=lambda e: e["t0"])
        starts = [e["t0"] for e in exports]
        for sent, delivered in p["messages"]:
            slow = (delivered - sent) * 1000 > threshold
            counts = places.setdefault(place(sent, delivered, exports, starts, edge_ms / 1000), [0, 0])
            counts[0] += 1
            counts[1] += slow
            total += 1
            slow_total += slow
            if (i := bisect.bisect_right(starts, delivered) - 1) >= 0:
                counts = by_offset[bisect.bisect_right(OFFSET_BINS_MS, (delivered - starts[i]) * 1000) - 1]
                counts[0] += 1
                counts[1] += slow
    excess = slow_total - 0.01 * total
    bins = OFFSET_BINS_MS
    return {
        "alone_messages": len(alone), "alone_p99_ms": round(threshold, 2),
        "alone_p50_ms": round(statistics.median(alone), 2) if alone else None,
        "with_messages": total, "with_slow": slow_total, "with_slow_rate": round(slow_total / total, 4) if total else None,
        "places": {where: {"share": round(n / total, 4), "messages": n, "slow": s, "slow_rate": round(s / n, 4),
                           "of_excess": round((s - 0.01 * n) / excess, 2) if excess > 0 else None}
                   for where, (n, s) in sorted(places.items(), key=lambda kv: -kv[1][1])},
        "delivered_after_a_request_start_ms": {
            f"{lo:g}–{hi:g}" if hi < 1e9 else f"{lo:g}+": {"messages": n, "slow": s,
                                                          "slow_rate": round(s / n, 4) if n else None}
            for lo, hi, (n, s) in zip(bins, bins[1:], by_offset, strict=False)},
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace", type=Path)
    p.add_argument("--edge-ms", type=float, default=10.0, help="how near an export's start or end counts as its edge")
    args = p.parse_args(argv)
    try:
        phases = json.loads(args.trace.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read the trace {args.trace}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(analyse(phases, args.edge_ms), indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
