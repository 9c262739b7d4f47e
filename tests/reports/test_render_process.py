"""A render process does not outlive the web process that started it: killed or crashed, its render processes
end within seconds instead of waiting on the pool's queue forever with hundreds of MB each."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A stand-in for the web process: starts the render pool as an export would, prints the render process's pid.
WEB_PROCESS = """
import os, time
from gasdesk.reports import render
print(render._executor().submit(os.getpid).result(timeout=120), flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_render_process_ends_when_its_web_process_is_killed() -> None:
    web = subprocess.Popen([sys.executable, "-c", WEB_PROCESS], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert web.stdout is not None
        child = int(web.stdout.readline())
        assert child != web.pid and _alive(child)
        web.kill()  # SIGKILL: no shutdown handler runs, nothing tells the pool to stop
        web.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the render process outlived its web process"
    finally:
        web.kill()
        web.wait(timeout=10)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
