"""Building and rendering a report file, in a process of its own.

Drawing a year of charts and laying out the PDF is seconds of pure-Python CPU. In a thread of the web
process it would hold the GIL against the event loop (every chat frame would wait up to the interpreter's
switch interval, again and again); in a separate process it only takes a core. Reading the report's figures
(tens of queries and their Python, ~40 ms for a yearly overview on a big history) happens there too, on the
process's own database connection and at the same low priority (``_reading``, guarded against starvation),
so the web process only hands over the query and sends the file back.
The pool is small (one process by default, ``reports_render_processes``) and started on first use; 0 builds
in the web process and renders in a thread instead. This module is what the child imports: the builders,
the renderers and the Report model, not the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gasdesk.config import get_settings
from gasdesk.db import commit, make_engine
from gasdesk.errors import ServiceUnavailable
from gasdesk.reports.builders import build_report
from gasdesk.reports.idle_group import IdleGroup, cpu_cgroup
from gasdesk.reports.model import Period, Report
from gasdesk.reports.pdf import report_to_pdf
from gasdesk.reports.xlsx import report_to_xlsx
from gasdesk.system.cpu_priority import LOWEST, lower_own_priority

log = logging.getLogger(__name__)

MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "pdf": "application/pdf"}
RENDERERS: dict[str, Callable[[Report], bytes]] = {"xlsx": report_to_xlsx, "pdf": report_to_pdf}

RENDER_NICENESS = LOWEST
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
T = TypeVar("T")


def render(report: Report, fmt: str) -> bytes:
    """Render ``report`` as ``fmt`` (xlsx|pdf) here and now (what the pool's processes run), within the render
    process's CPU share."""
    with cpu_share(_render_cpu_share):
        return RENDERERS[fmt](report)


@contextlib.contextmanager
def cpu_share(share: float, slice_s: float = 0.01) -> Iterator[None]:
    """Use at most ``share`` of one core inside the block: after every ``slice_s`` of CPU time the process
    used, a SIGPROF handler sleeps ``slice_s·(1−share)/share``, so the block's wall time is at least its CPU
    time / ``share``. Why not only the idle class (and cgroup): on a 2-vCPU guest, yearly exports back to back
    uncapped (~9 a second instead of ~2.4) moved chat's p99 by +69 % instead of +13 to +37 % (docs/performance.md).
    A no-op at ``share`` 1, outside the main thread (Python runs signal handlers there) and without
    ``ITIMER_PROF``."""
    if share >= 1 or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    pause = slice_s * (1 - share) / share

    def _pause(signum: int, frame: object) -> None:
        time.sleep(pause)

    previous = signal.signal(signal.SIGPROF, _pause)
    signal.setitimer(signal.ITIMER_PROF, slice_s, slice_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)


# ---------------------------------------------------------------- in the render process

# The render process's event loop and engine, kept between reports (connecting again for each would cost
# more than a small report); a report for another database (tests) replaces the engine.
_loop: asyncio.AbstractEventLoop | None = None
_engine: tuple[str, AsyncEngine] | None = None
# Set by the pool's initializer: 1 (no cap) wherever else ``render`` runs, e.g. a thread of the web process.
_render_cpu_share = 1.0
# The render process's membership of the machine's idle CPU cgroup (idle_group.py), joined by the initializer.
_idle_group = IdleGroup(None)


def _child_engine(database_url: str) -> tuple[asyncio.AbstractEventLoop, AsyncEngine]:
    global _loop, _engine
    if _loop is None:
        _loop = asyncio.new_event_loop()
    if _engine is not None and _engine[0] != database_url:
        _loop.run_until_complete(_engine[1].dispose())
        _engine = None
    if _engine is None:
        _engine = (database_url, make_engine(database_url))
    return _loop, _engine[1]


async def _read(engine: AsyncEngine, key: str, period: Period, filters: dict[str, str]) -> Report:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        try:
            return await build_report(session, key, period, filters=filters)
        finally:
            await session.rollback()  # it only read: end the read transaction (a WAL snapshot on SQLite)


def build_and_render(database_url: str, key: str, period: Period, filters: dict[str, str], formats: list[str],
                     generated_at: datetime) -> tuple[Report, dict[str, bytes]]:
    """Read report ``key`` from the database at ``database_url`` and render it in each of ``formats``, here
    and now (what the pool's processes run); ``generated_at`` is the requesting process's clock."""
    loop, engine = _child_engine(database_url)
    with _reading():
        report = replace(loop.run_until_complete(_read(engine, key, period, filters)), generated_at=generated_at)
    return report, {fmt: render(report, fmt) for fmt in formats}


# ---------------------------------------------------------------- the pool, seen from the web process


def _lower_priority(idle: bool = True, share: float = 1.0) -> None:
    """Render processes yield the CPU to the web processes: chat first, report files when a core is free.
    On Linux the idle scheduling class: a waking web process preempts the render at once (a nice level alone
    only shortens the render's turns, and chat's p99 felt them). A class ranks a process only inside its group,
    so the process also joins the machine's idle CPU cgroup (``idle_group``: idle against every other group)
    where it may, and takes an autogroup of its own at nice 19 (what ranks it where it may not, and where a
    starved read goes while out of the idle group). The nice level stays, so a read that
    ``_reading`` lifts out of the idle class still comes behind chat; where there is no idle class, the nice
    level alone. ``idle=False`` (setting ``reports_render_idle``, the test suite) keeps the normal priority.
    ``share``: the drawing's ``cpu_share`` (``Settings.render_cpu_share``)."""
    global _render_cpu_share, _idle_group
    _render_cpu_share = share
    if not idle:
        return
    lower_own_priority(RENDER_NICENESS, new_session=True)
    _idle_group = IdleGroup(cpu_cgroup())
    _idle_group.join()
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _start_render_process(idle: bool, share: float, parent_pid: int) -> None:
    """The pool's initializer, in each render process: its priority and CPU share (``_lower_priority``), and a
    watchdog that ends it once the process that started it is gone. The pool's call queue is a pipe whose
    writing end the child holds too, so a child of a killed or crashed web process would otherwise wait for
    work forever with its hundreds of MB (fonts, matplotlib, a database connection)."""
    _lower_priority(idle, share)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="gasdesk-render-watchdog",
                     daemon=True).start()


def _exit_with_parent(parent_pid: int, every_s: float = 1.0) -> None:
    while os.getppid() == parent_pid:
        time.sleep(every_s)
    os._exit(0)  # the parent is gone: nobody is left to hand the result to


READ_STARVED_AFTER_S = 0.5


@contextlib.contextmanager
def _reading(starved_after_s: float = READ_STARVED_AFTER_S) -> Iterator[None]:
    """Read the figures in the idle class, as the drawing — on a 2-vCPU machine chat's tail felt a read at
    nice 19 in the normal class (docs/performance.md) — but never starved: a read transaction keeps its
    database snapshot (SQLite: the web process's WAL cannot be reset past it), so once the read has waited
    ``starved_after_s`` every thread of the process (the database driver's too) reads on in the normal class
    at its nice level, out of the idle cgroup, and goes back to both after."""
    try:
        idle = os.sched_getscheduler(0) == os.SCHED_IDLE
    except (OSError, AttributeError):
        idle = False
    if not idle:  # normal priority (``reports_render_idle`` off): nothing to guard
        yield
        return
    done = threading.Event()
    escalated = threading.Event()

    def _escalate() -> None:
        if not done.wait(starved_after_s):
            left = _idle_group.leave()
            if _set_policy_of_all_threads(os.SCHED_OTHER) or left:
                escalated.set()

    watcher = threading.Thread(target=_escalate, name="gasdesk-render-read-guard", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        if escalated.is_set():
            _set_policy_of_all_threads(os.SCHED_IDLE)
            _idle_group.rejoin()


def _set_policy_of_all_threads(policy: int) -> bool:
    """Put every thread of this process in scheduling ``policy`` — the database driver's thread too, which
    runs the queries and keeps whatever policy it was started with; False where Linux's policies are missing."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    changed = False
    for tid in threads:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(tid, policy, os.sched_param(0))
            changed = True
    return changed


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the web process has threads and an event loop that a forked child must not inherit.
            _pool = ProcessPoolExecutor(max_workers=get_settings().reports_render_processes,
                                        mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_render_process,
                                        initargs=(get_settings().reports_render_idle,
                                                  get_settings().render_cpu_share, os.getpid()))
        return _pool


def shutdown_pool() -> None:
    """Stop the render processes (app shutdown, tests); the next render starts a new pool."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


async def _in_pool(fn: Callable[..., T], *args: Any) -> T:
    try:
        return await asyncio.get_running_loop().run_in_executor(_executor(), fn, *args)
    except BrokenProcessPool:
        log.exception("report render process died")
        shutdown_pool()
        raise ServiceUnavailable("报表生成进程异常退出，请稍后重试", code="report_render_failed") from None


async def render_report(report: Report, fmt: str) -> bytes:
    """Render ``report`` off the event loop: in the render processes, or in a thread when they are off."""
    if get_settings().reports_render_processes == 0:
        return await asyncio.to_thread(render, report, fmt)
    return await _in_pool(render, report, fmt)


async def build_and_render_report(session: AsyncSession, key: str, period: Period, filters: dict[str, str],
                                  formats: list[str], generated_at: datetime) -> tuple[Report, dict[str, bytes]]:
    """Report ``key`` for ``period`` and ``filters``, and its files in ``formats``. In the render process,
    figures and files both (its own connection, its low priority): ``session``'s transaction is committed
    first, so its connection (SQLite has one) is free meanwhile, and the committed data is what it reads.
    With render processes off: built with ``session``, committed, then rendered in a thread. The key and
    filters are checked by the caller (``builders.check_report_query``): errors in the render process are not typed."""
    settings = get_settings()
    in_memory = settings.is_sqlite and ":memory:" in settings.database_url  # no other process can open it
    if settings.reports_render_processes == 0 or in_memory:
        report = replace(await build_report(session, key, period, filters=filters), generated_at=generated_at)
        await commit(session)
        return report, {fmt: await asyncio.to_thread(render, report, fmt) for fmt in formats}
    await commit(session)
    return await _in_pool(build_and_render, settings.database_url, key, period, filters, formats,
                          generated_at)
