"""Job handlers for the worker-process tests (tests/jobs/test_worker_processes.py), and the entry point that
runs the real ``gasdesk worker`` command with them registered.

Each handler records its effect twice: in the database, in the job's own transaction (a notification whose
link names the job's ``n``: what must happen exactly once), and as a line appended to a file outside any
transaction (``n pid``: how often the handler really ran, and in which process)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.jobs.queue import job
from gasdesk.notifications.service import do_notify

RECORD = "test.proc_record"
BLOCK_ONCE = "test.proc_block_once"


def _ran(payload: dict[str, Any]) -> None:
    with open(payload["log"], "a", encoding="utf-8") as fh:  # one short append: lines never interleave
        fh.write(f"{payload['n']} {os.getpid()}\n")


async def _effect(session: AsyncSession, payload: dict[str, Any]) -> None:
    do_notify(session, payload["user_id"], "test", "任务效果", link=f"/test/{payload['n']}")
    _ran(payload)


@job(RECORD)
async def record(session: AsyncSession, payload: dict[str, Any]) -> None:
    await asyncio.sleep(0.005)
    await _effect(session, payload)


@job(BLOCK_ONCE)
async def block_once(session: AsyncSession, payload: dict[str, Any]) -> None:
    """The first process to run it writes its pid to the marker file and hangs (until it is killed); any later
    attempt does the work."""
    marker = Path(payload["marker"])
    try:
        with open(marker, "x", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))
    except FileExistsError:
        await _effect(session, payload)
        return
    await asyncio.sleep(3600)


def main() -> None:
    """``python -m tests.jobs.worker_handlers READY_FILE [gasdesk worker options]``: import the worker (the slow
    part), tell the test it is ready, then run the ``gasdesk worker`` command with these handlers registered."""
    import gasdesk.worker  # noqa: F401, PLC0415 - imported before "ready" so the test's clock starts after it
    from gasdesk.cli import app  # noqa: PLC0415 - the CLI only in this entry point

    Path(sys.argv[1]).write_text(str(os.getpid()))
    app(["worker", *sys.argv[2:]], prog_name="gasdesk")


if __name__ == "__main__":
    main()
