"""The render process's CPU cap (``render.cpu_share``): drawing pauses in proportion to the CPU it used."""

from __future__ import annotations

import signal
import threading
import time

from gasdesk.config import Settings
from gasdesk.reports import render


def _burn(cpu_s: float) -> tuple[float, float]:
    """Spin until this process has used ``cpu_s`` of CPU; returns (CPU used, wall time taken)."""
    cpu0, wall0 = time.process_time(), time.monotonic()
    while time.process_time() - cpu0 < cpu_s:
        sum(range(2000))
    return time.process_time() - cpu0, time.monotonic() - wall0


def test_a_quarter_share_takes_at_least_four_times_the_cpu_it_used() -> None:
    with render.cpu_share(0.25):
        cpu, wall = _burn(0.2)
    # 10 ms of CPU, then a 30 ms sleep: the sleeps are a lower bound whatever the machine's load (a final
    # partial slice has no pause yet, hence the margin).
    assert wall >= 3 * cpu, (cpu, wall)


def _timer_and_handler() -> tuple[tuple[float, float], object]:
    return signal.getitimer(signal.ITIMER_PROF), signal.getsignal(signal.SIGPROF)


def test_the_cap_is_lifted_after_the_block_and_at_a_full_share() -> None:
    before = _timer_and_handler()
    with render.cpu_share(0.25):
        assert signal.getitimer(signal.ITIMER_PROF)[1] > 0  # pausing inside
    assert _timer_and_handler() == before  # no timer or handler left behind
    with render.cpu_share(1.0):
        assert _timer_and_handler() == before


def test_outside_the_main_thread_nothing_is_paused() -> None:
    # a thread of the web process (render processes off) must never arm a process-wide pause
    seen: list[tuple[tuple[float, float], object]] = []

    def in_thread() -> None:
        with render.cpu_share(0.1):
            seen.append(_timer_and_handler())

    before = _timer_and_handler()
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [before]


def test_the_default_share_leaves_small_machines_their_cores_for_chat(monkeypatch) -> None:
    monkeypatch.delenv("GASDESK_REPORTS_RENDER_CPU_SHARE", raising=False)
    shares = {}
    for cores in (1, 2, 3, 4, 5, 16):
        monkeypatch.setattr("os.sched_getaffinity", lambda pid, n=cores: set(range(n)))
        shares[cores] = Settings().render_cpu_share
    assert shares == {1: 0.25, 2: 0.25, 3: 0.5, 4: 0.75, 5: 1.0, 16: 1.0}
    assert Settings(reports_render_cpu_share=0.6).render_cpu_share == 0.6  # an explicit setting wins
