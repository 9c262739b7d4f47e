"""Rendering a report into a file, in a process of its own.

Drawing a year of charts and laying out the PDF is seconds of pure-Python CPU. In a thread of the web
process it would hold the GIL against the event loop (every chat frame would wait up to the interpreter's
switch interval, again and again); in a separate process it only takes a core. The pool is small (one
process by default, ``reports_render_processes``) and started on first use; 0 renders in a thread instead.
This module is what the child imports: the renderers and the Report model, not the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from gasdesk.config import get_settings
from gasdesk.errors import ServiceUnavailable
from gasdesk.reports.model import Report
from gasdesk.reports.pdf import report_to_pdf
from gasdesk.reports.xlsx import report_to_xlsx

log = logging.getLogger(__name__)

MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "pdf": "application/pdf"}
RENDERERS: dict[str, Callable[[Report], bytes]] = {"xlsx": report_to_xlsx, "pdf": report_to_pdf}

RENDER_NICENESS = 19
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def render(report: Report, fmt: str) -> bytes:
    """Render ``report`` as ``fmt`` (xlsx|pdf) here and now (what the pool's processes run)."""
    return RENDERERS[fmt](report)


def _lower_priority(idle: bool = True) -> None:
    """Render processes yield the CPU to the web processes: chat first, report files when a core is free.
    The lowest nice level, and on Linux the idle scheduling class: a waking web process preempts the render
    at once (a nice level alone only shortens the render's turns, and chat's p99 felt them). ``idle=False``
    (setting ``reports_render_idle``, the test suite) keeps the normal priority."""
    if not idle:
        return
    with contextlib.suppress(OSError):
        os.nice(RENDER_NICENESS)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the web process has threads and an event loop that a forked child must not inherit.
            _pool = ProcessPoolExecutor(max_workers=get_settings().reports_render_processes,
                                        mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority,
                                        initargs=(get_settings().reports_render_idle,))
        return _pool


def shutdown_pool() -> None:
    """Stop the render processes (app shutdown, tests); the next render starts a new pool."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


async def render_report(report: Report, fmt: str) -> bytes:
    """Render ``report`` off the event loop: in the render processes, or in a thread when they are off."""
    if get_settings().reports_render_processes == 0:
        return await asyncio.to_thread(render, report, fmt)
    try:
        return await asyncio.get_running_loop().run_in_executor(_executor(), render, report, fmt)
    except BrokenProcessPool:
        log.exception("report render process died")
        shutdown_pool()
        raise ServiceUnavailable("报表生成进程异常退出，请稍后重试", code="report_render_failed") from None
