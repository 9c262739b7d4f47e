"""Load the embedded SIP endpoint with N concurrent calls on loopback; print RTP jitter, loss and CPU.

Run: .venv/bin/python bench/sip_calls.py [--calls 50] [--seconds 20]

The endpoint runs in a child process (its own event loop, its own CPU accounting); the callers — gasdesk's
minimal UAC (``telephony/sip/uac.py``), each sending a 440 Hz tone — run in this process. Every call does
what an IVR call does: answer, record both directions to a stereo WAV, play a prompt (looped). Jitter is the
RFC 3550 interarrival jitter of the endpoint's RTP as the callers receive it, sampled at every packet during
the measuring window (after all calls are up); the callers share the 2 cores, so it is an upper bound on
what the endpoint itself adds. The endpoint also reports the jitter of the callers' RTP as it received it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gasdesk.telephony.media import CallHungUp, Prompt  # noqa: E402
from gasdesk.telephony.sip.rtp import MediaClock  # noqa: E402
from gasdesk.telephony.sip.session import SipMediaSession  # noqa: E402
from gasdesk.telephony.sip.ua import SipEndpoint  # noqa: E402
from gasdesk.telephony.sip.uac import SipCaller, tone_frames  # noqa: E402


def write_prompt(path: Path, seconds: float = 5.0) -> Path:
    import wave  # noqa: PLC0415 - bench helper

    t = np.arange(int(8000 * seconds)) / 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((8000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes())
    return path


def proc_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(conn: Connection, max_calls: int, workdir: str) -> None:
    """Child process: run the endpoint until told to stop, then report CPU and receive statistics."""

    async def main() -> None:
        prompt = Prompt(write_prompt(Path(workdir) / "prompt.wav"))

        async def on_call(session: SipMediaSession) -> None:
            await session.answer()
            await session.start_recording(Path(workdir) / f"{session.info.call_ref[:16]}.wav")
            try:
                while True:
                    await session.play(prompt, barge_in=False)
            except CallHungUp:
                pass

        ep = SipEndpoint(on_call, host="127.0.0.1", port=0, rtp_port_min=30000, rtp_port_max=30999,
                         max_calls=max_calls)
        await ep.start()
        conn.send(ep.port)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "measure"
        cpu0, wall0 = time.process_time(), time.monotonic()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        active = ep.active_calls
        rx_jitter = [c.stream.stats.jitter_ms for c in ep.calls.values()]
        late_max, late_mean = ep.clock.late_max, ep.clock.late_sum / max(1, ep.clock.ticks)
        await ep.stop()
        conn.send({"cpu_s": cpu, "wall_s": wall, "active": active, "counters": ep.counters,
                   "rx_jitter_ms": rx_jitter,
                   "late_max_ms": 1000 * late_max, "late_mean_ms": 1000 * late_mean})

    asyncio.run(main())


async def run(calls: int, seconds: float) -> None:
    workdir = tempfile.mkdtemp(prefix="gd-sipbench-")
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(child, calls + 10, workdir), daemon=True)
    proc.start()
    port = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    clock = MediaClock()  # the callers share one sending schedule, like the endpoint's calls
    callers = [SipCaller(("127.0.0.1", port), source=tone_frames(440), clock=clock) for _ in range(calls)]
    setup0 = time.monotonic()
    for c in callers:
        await c.open()
        c.keep_audio = False
    results = await asyncio.gather(*(c.call(timeout=10) for c in callers))
    setup = time.monotonic() - setup0
    failed = sum(1 for r in results if r.status != 200)
    await asyncio.sleep(1.0)  # let every stream settle
    for c in callers:
        assert c.rtp is not None
        c.rtp.stats.samples.clear()
    parent.send("measure")
    cpu0, wall0, child0 = time.process_time(), time.monotonic(), proc_cpu_s(proc.pid)
    start_packets = [c.rtp.stats.packets for c in callers if c.rtp]
    start_expected = [c.rtp.stats.expected for c in callers if c.rtp]
    await asyncio.sleep(seconds)
    client_cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    child_cpu = (proc_cpu_s(proc.pid) - child0) / (time.monotonic() - wall0)
    parent.send("stop")
    samples = np.array([s for c in callers if c.rtp for s in c.rtp.stats.samples])
    got = sum(c.rtp.stats.packets for c in callers if c.rtp) - sum(start_packets)
    expected = sum(c.rtp.stats.expected for c in callers if c.rtp) - sum(start_expected)
    for c in callers:
        c.close()
    report = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    proc.join(5)
    rx = np.array(report["rx_jitter_ms"] or [0.0])
    print(f"calls: {calls} requested, {calls - failed} answered in {setup:.2f} s; "
          f"{report['active']} active at the end of a {seconds:.0f} s window")
    print(f"endpoint → callers RTP jitter (RFC 3550, per packet, {len(samples)} samples): "
          f"mean {samples.mean():.2f} ms, p99 {np.percentile(samples, 99):.2f} ms, max {samples.max():.2f} ms")
    print(f"packets: {got} received / {expected} expected ({100 * (1 - got / max(expected, 1)):.2f} % lost)")
    print(f"callers → endpoint jitter (as the endpoint received it) at the end: mean {rx.mean():.2f} ms, max {rx.max():.2f} ms")
    print(f"endpoint send lateness vs the 20 ms schedule: mean {report['late_mean_ms']:.2f} ms, "
          f"max {report['late_max_ms']:.2f} ms")
    print(f"endpoint CPU: {100 * report['cpu_s'] / report['wall_s']:.1f} % of one core; "
          f"(from /proc: {100 * child_cpu:.1f} %); callers' CPU: {100 * client_cpu:.1f} %; "
          f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.seconds))


if __name__ == "__main__":
    main()
