"""How much a report render process disturbs a latency-sensitive neighbour on this machine, without the web
server, the chat client or HTTP in the picture.

A client sends small messages (Poisson, ``--rate`` a second) to an echo process that works ``--work-ms`` on
each (a stand-in for the web process's handling of a chat frame) and times each round trip. Alternated
phases: alone, then beside a process that reads and renders the yearly overview back to back with gasdesk's
own render code — its session and autogroup, nice level, idle class and CPU share (``reports/render.py``). Each
phase kind's round trips are pooled and their p99s compared (the move, as in ``bench/reports.py``).

``--read-policy normal`` reads the figures in the normal class at nice 19, as before 2026-12-05;
``--formats xlsx`` is mostly reads (a yearly xlsx draws in ~15 ms), ``pdf`` mostly drawing.

    .venv/bin/python bench/render_neighbour.py --reuse /tmp/gasdesk-bench-reports-XXXX  # a `reports.py --keep` dir
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's gasdesk
import chat_load  # noqa: E402 - percentile
from reports import copy_database  # noqa: E402


def echo(sock: socket.socket, work_s: float) -> None:
    while data := sock.recv(64):
        until = time.perf_counter() + work_s
        while time.perf_counter() < until:
            pass
        sock.send(data)


@contextlib.contextmanager
def normal_class_read() -> Iterator[None]:
    """The read as it was before: the normal scheduling class at the process's nice level."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def render_forever(database_url: str, formats: list[str], share: float, read_policy: str) -> None:
    from gasdesk.clock import utcnow  # noqa: PLC0415 - in the child only
    from gasdesk.reports import render  # noqa: PLC0415
    from gasdesk.reports.builders import period_for  # noqa: PLC0415

    render._start_render_process(True, share, os.getppid())
    if read_policy == "normal":
        render._reading = normal_class_read
    period = period_for("year", date.today())
    for n in range(10**9):
        render.build_and_render(database_url, "overview", period, {}, [formats[n % len(formats)]], utcnow())


def phase(seconds: float, rate: float, work_s: float, render_args: tuple | None) -> list[float]:
    client, server = socket.socketpair()
    echo_pid = os.fork()
    if echo_pid == 0:
        client.close()
        echo(server, work_s)
        os._exit(0)
    server.close()
    render_pid = None
    if render_args is not None:
        render_pid = os.fork()
        if render_pid == 0:
            client.close()
            render_forever(*render_args)
            os._exit(0)
        time.sleep(3)  # its imports and first read are under way
    latencies = []
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at:
        time.sleep(random.expovariate(rate))
        sent = time.perf_counter()
        client.send(b"x" * 32)
        client.recv(64)
        latencies.append((time.perf_counter() - sent) * 1000)
    client.close()
    os.waitpid(echo_pid, 0)
    if render_pid is not None:
        os.kill(render_pid, 9)
        os.waitpid(render_pid, 0)
    return latencies


def figures(values: list[float]) -> dict[str, float]:
    return {"n": len(values), **{f"p{q}_ms": round(chat_load.percentile(values, q) or 0, 3) for q in (50, 99, 99.9)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", type=Path, required=True, help="a directory kept by `bench/reports.py --keep`")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rate", type=float, default=200, help="round trips a second")
    parser.add_argument("--work-ms", type=float, default=0.3)
    parser.add_argument("--formats", default="pdf,xlsx")
    parser.add_argument("--share", type=float, default=0.25, help="the render's CPU share (reports/render.py)")
    parser.add_argument("--read-policy", choices=("idle", "normal"), default="idle")
    args = parser.parse_args(argv)
    if not (args.reuse / "bench.db").is_file():
        parser.error(f"{args.reuse} has no bench.db (make one with bench/reports.py --keep)")
    with tempfile.TemporaryDirectory(prefix="gasdesk-render-neighbour-") as tmp:
        copy_database(args.reuse, Path(tmp))
        database_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        os.environ.update({"GASDESK_DATABASE_URL": database_url, "GASDESK_VAR_DIR": f"{tmp}/var",
                           "GASDESK_ENV": "development"})
        render_args = (database_url, args.formats.split(","), args.share, args.read_policy)
        pooled: dict[str, list[float]] = {"alone": [], "with_render": []}
        for n in range(args.rounds):
            for kind, with_render in (("alone", None), ("with_render", render_args)):
                latencies = phase(args.seconds, args.rate, args.work_ms / 1000, with_render)
                pooled[kind].extend(latencies)
                print(f"round {n + 1} {kind}: {figures(latencies)}", file=sys.stderr, flush=True)
    result = {kind: figures(values) for kind, values in pooled.items()}
    result["p99_move"] = round(result["with_render"]["p99_ms"] / result["alone"]["p99_ms"] - 1, 3)
    result["settings"] = {k: str(v) for k, v in vars(args).items()}
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
