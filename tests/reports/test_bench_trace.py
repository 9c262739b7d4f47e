"""bench/trace_exports.py: where the with-export phases' slow chat messages fall against the export requests."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "trace_exports.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trace_exports", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_trace() -> list[dict[str, object]]:
    """Alone: 200 messages of 2 ms and 2 of 9 ms (p99 2 ms). With exports: two exports of 1 s; four messages in
    flight at the second export's start take 8 ms, the rest 1.5 ms — slow only at a request's start."""
    alone = [(i * 0.01, i * 0.01 + 0.002) for i in range(200)] + [(3.0, 3.009), (3.1, 3.109)]
    exports = [{"format": "pdf", "t0": 10.0, "t1": 11.0}, {"format": "xlsx", "t0": 11.0, "t1": 12.0}]
    fast = [(10.1 + i * 0.005, 10.1 + i * 0.005 + 0.0015) for i in range(150)]
    at_start = [(10.999 + i * 0.0005, 10.999 + i * 0.0005 + 0.008) for i in range(4)]
    return [{"kind": "alone", "messages": alone},
            {"kind": "with_export", "messages": fast + at_start, "exports": exports}]


def test_slow_messages_are_placed_at_the_request_start() -> None:
    result = load_script().analyse(synthetic_trace(), edge_ms=10)
    assert result["alone_p99_ms"] == 2.0
    assert result["with_messages"] == 154 and result["with_slow"] == 4
    assert result["places"]["request in"] == {"share": 0.026, "messages": 4, "slow": 4, "slow_rate": 1.0,
                                              "of_excess": 1.61}
    assert result["places"]["render pdf"]["slow"] == 0 and result["places"]["render pdf"]["messages"] == 150
    by_offset = result["delivered_after_a_request_start_ms"]
    assert by_offset["6–10"] == {"messages": 4, "slow": 4, "slow_rate": 1.0}
    assert by_offset["50+"]["slow"] == 0


def test_the_script_reads_a_trace_file_and_refuses_a_missing_one(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(synthetic_trace()))
    done = subprocess.run([sys.executable, str(SCRIPT), str(trace)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["with_slow"] == 4
    missing = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read the trace" in missing.stderr
