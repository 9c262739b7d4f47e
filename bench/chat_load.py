"""Chat load benchmark: N residents and M agents over WebSockets against a real gasdesk server, and the same
client pattern against a bare ``websockets`` relay on this machine, with the ratio.

Run: .venv/bin/python bench/chat_load.py                       # defaults: 1000 residents, 50 agents, 30 s
     .venv/bin/python bench/chat_load.py -n 100 -m 10 --duration 10 --saturate
     .venv/bin/python bench/chat_load.py --json                 # machine-readable figures on stdout

What it does, per target (gasdesk, then the bare relay):
1. gasdesk only: a fresh SQLite database in a temp dir (or ``--database-url``), migrations, M agent users
   with every skill group and ``max_concurrent = ceil(N/M) + 5``; the server is ``uvicorn`` in a subprocess.
2. Agents log in (``POST /login``), go online (``PUT /api/v1/agent/presence``) and open ``/ws/agent``.
   Residents get a visitor token, open ``/ws/webchat``, send ``hello`` then ``handoff``, and wait until
   their conversation is ``assigned``. Connections are ramped up in batches; set-up time is reported apart.
3. Fixed-rate phase: every resident sends ``--rate`` text messages/s (jittered) for ``--warmup`` +
   ``--duration`` seconds. Latency = time the agent's socket receives the ``message`` frame − time the
   resident sent it (one process, one clock). Lost = sent in the phase and acked-or-not, never seen by the
   agent within ``--grace`` seconds after the end.
4. ``--saturate``: every resident keeps ``--window`` messages in flight (the next one goes when an ack comes
   back), capped at ``--saturate-max-rate`` per resident (below the server's 5 msg/s per-socket limit), so
   the figure is the maximum sustained throughput rather than the offered rate.

The bare relay (``--_relay-server``) speaks the same frames with no framework and no database: ``hello`` →
``welcome``; ``handoff`` → assign to the least-loaded agent socket, ``state assigned``; ``message`` → ``ack``
and the message object to the resident and its agent. Client and servers share this machine's cores, so the
script also reports the CPU seconds each server process used per 1,000 messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AGENT_PASSWORD = "bench-agent-password-1"
TEXT = "您好，我家燃气表显示余额不足，请问怎么在线缴费？"
SERVER_RATE_LIMIT = 5.0  # gasdesk's per-visitor message limit (security/limits.py "message.visitor"): 50 per 10 s
# Every simulated resident connects from 127.0.0.1: the server exempts that address from its per-IP limits
# (which exist for the real internet, where residents come from many addresses).
SERVER_ENV = {"GASDESK_LIMIT_EXEMPT_IPS": '["127.0.0.1"]'}
ATTACK_TEXT = "慢" * 2000  # the longest allowed message: fills a non-reading socket's buffers fastest


# ---------------------------------------------------------------- small helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its direct children (uvicorn --workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == pid:
                        pids.append(int(entry))
    for p in pids:
        with contextlib.suppress(OSError), open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def log(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- server processes


class ServerProcess:
    """A server subprocess in its own process group; stopped (TERM, then KILL) however the run ends."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.profiler: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.profiler is not None and self.profiler.poll() is None:
            self.profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.profiler.wait(timeout=30)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


async def wait_ready(server: ServerProcess, url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not server.alive():
                raise RuntimeError(f"{server.name} exited during start-up:\n{server.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s:\n{server.tail()}")


def prepare_gasdesk_db(env: dict[str, str], agents: int, max_concurrent: int) -> None:
    """Migrate a fresh database and create the agents, in a child process (settings are read once per process)."""
    code = (
        "import asyncio, sys\n"
        "from gasdesk.migrations.runner import upgrade\n"
        "upgrade()\n"
        "from gasdesk.audit.service import Actor\n"
        "from gasdesk.auth.service import do_create_user\n"
        "from gasdesk.db import dispose_engine, transaction\n"
        "from gasdesk.routing.service import do_set_skills\n"
        "from gasdesk.routing.models import SkillGroup\n"
        "from sqlalchemy import select\n"
        "async def main(n, cap):\n"
        "    async with transaction() as s:\n"
        "        groups = list(await s.scalars(select(SkillGroup.id)))\n"
        "        for i in range(n):\n"
        f"            u = await do_create_user(s, Actor.system('bench'), username=f'bench-agent-{{i}}',"
        f" password={AGENT_PASSWORD!r}, role='agent', display_name=f'坐席{{i}}')\n"
        "            await do_set_skills(s, u, groups, max_concurrent=cap)\n"
        "    await dispose_engine()\n"
        "asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(agents), str(max_concurrent)], env=env, cwd=ROOT, check=True)


# ---------------------------------------------------------------- statistics


@dataclass
class PhaseStats:
    sent: int = 0
    acked: int = 0
    delivered: int = 0
    duplicates: int = 0
    late: int = 0  # delivered after the grace period had ended (counted as lost as well)
    unexpected: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    pending: dict[str, tuple[float, bool]] = field(default_factory=dict)  # id -> (sent at, in measured window)
    unacked: dict[str, float] = field(default_factory=dict)
    measured_sent: int = 0
    measured_delivered: int = 0
    window_delivered: int = 0  # received by an agent inside the measured window, whenever sent
    replies_sent: int = 0
    replies_acked: int = 0


class Client:
    """Residents and agents of one target, all in this process."""

    def __init__(self, args: argparse.Namespace, base_http: str, base_ws: str, *, gasdesk: bool) -> None:
        self.args = args
        self.base_http = base_http
        self.base_ws = base_ws
        self.gasdesk = gasdesk
        self.stats = PhaseStats()
        self.residents: list[Resident] = []
        self.agents: list[Agent] = []
        self.close_reasons: Counter = Counter()
        self.setup_errors: Counter = Counter()
        self.seen: set[str] = set()
        self.window_open = False
        self.measure_window = (0.0, 0.0)
        # --cluster: residents reconnect through nginx when their process dies and resend what was not acked
        self.resilient = False
        self.acked_ids: set[str] = set()
        self.server_pids: list[int] = []
        # (sent, delivered) of every measured message on perf_counter's clock, when a bench traces them
        self.trace: list[tuple[float, float]] | None = None

    def ws_kwargs(self) -> dict[str, Any]:
        return {"compression": None if self.args.no_deflate else "deflate", "ping_interval": None,
                "open_timeout": 60, "close_timeout": 2, "max_queue": None}

    # ------------------------------------------------------------ frames seen by agents and residents

    def on_agent_message(self, message: dict[str, Any], received: float) -> Agent | None:
        cmid = message.get("client_msg_id")
        if message.get("sender") != "resident" or not cmid or cmid.startswith("x"):  # x…: the attacker's
            return None
        st = self.stats
        entry = st.pending.pop(cmid, None)
        if entry is None:
            if cmid in self.seen:
                st.duplicates += 1
            else:
                st.unexpected += 1
            return None
        self.seen.add(cmid)
        sent_at, measured = entry
        st.delivered += 1
        if self.measure_window[0] <= received <= self.measure_window[1]:
            st.window_delivered += 1
        if measured:
            st.measured_delivered += 1
            st.latencies_ms.append((received - sent_at) * 1000)
            if self.trace is not None:
                self.trace.append((sent_at, received))
        return None

    def on_ack(self, cmid: str | None, received: float) -> None:
        sent_at = self.stats.unacked.pop(cmid or "", None)
        if self.resilient and cmid:
            self.acked_ids.add(cmid)
        if sent_at is not None:
            self.stats.acked += 1
            self.stats.ack_ms.append((received - sent_at) * 1000)

    def on_error(self, frame: dict[str, Any]) -> None:
        self.stats.errors[frame.get("code") or "unknown"] += 1
        cmid = frame.get("client_msg_id")
        if cmid and cmid in self.stats.pending:  # refused, so it will never reach the agent: an error, not a loss
            self.stats.pending.pop(cmid, None)
            self.stats.unacked.pop(cmid, None)

    # ------------------------------------------------------------ set-up

    async def setup(self, quiet: bool) -> dict[str, Any]:
        import httpx

        args = self.args
        started = time.perf_counter()
        limits = httpx.Limits(max_connections=args.batch, max_keepalive_connections=args.batch)
        async with httpx.AsyncClient(base_url=self.base_http, timeout=60, limits=limits) as http:
            for i in range(args.agents):
                self.agents.append(Agent(self, i))
            for chunk in range(0, args.agents, args.batch):
                await asyncio.gather(*(a.connect(http) for a in self.agents[chunk:chunk + args.batch]))
            agents_done = time.perf_counter()
            log(f"  {len(self.agents)} agents online in {agents_done - started:.1f} s", quiet=quiet)
            for i in range(args.residents):
                self.residents.append(Resident(self, i))
            per_resident: list[float] = []
            for chunk in range(0, args.residents, args.batch):
                batch = self.residents[chunk:chunk + args.batch]
                results = await asyncio.gather(*(r.connect(http) for r in batch), return_exceptions=True)
                for r, result in zip(batch, results, strict=True):
                    if isinstance(result, BaseException):
                        self.setup_errors[type(result).__name__ + ": " + str(result)[:80]] += 1
                        r.failed = True
                    else:
                        per_resident.append(result)
                if chunk // args.batch % 5 == 4:
                    log(f"  {chunk + len(batch)} residents connected", quiet=quiet)
        done = time.perf_counter()
        ready = [r for r in self.residents if not r.failed]
        self.residents = ready
        log(f"  {len(ready)} residents assigned in {done - agents_done:.1f} s", quiet=quiet)
        load = Counter(r.agent_id for r in ready)
        return {
            "agents_s": round(agents_done - started, 2), "residents_s": round(done - agents_done, 2),
            "residents_ready": len(ready), "resident_setup_p50_ms": _r(percentile(per_resident, 50)),
            "resident_setup_p99_ms": _r(percentile(per_resident, 99)), "setup_errors": dict(self.setup_errors),
            "max_conversations_per_agent": max(load.values()) if load else 0,
        }

    # ------------------------------------------------------------ phases

    async def phase(self, *, saturate: bool, duration: float, quiet: bool) -> dict[str, Any]:
        args = self.args
        self.stats = st = PhaseStats()
        self.seen = set()
        for r in self.residents:
            r.window = asyncio.Semaphore(args.window)
            r.in_window.clear()
        closed_before = sum(self.close_reasons.values())
        loop_start = time.perf_counter()
        measure_from = loop_start + args.warmup
        stop_at = measure_from + duration
        self.measure_window = (measure_from, stop_at)
        live = [r for r in self.residents if r.reader is not None and not r.reader.done()]  # dropped earlier: skip
        senders = [asyncio.create_task(r.send_loop(saturate, measure_from, stop_at)) for r in live]
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_measure_0 = (self.server_cpu(), self_cpu_seconds())
        await asyncio.gather(*senders, return_exceptions=True)
        cpu_measure_1 = (self.server_cpu(), self_cpu_seconds())
        measured_elapsed = time.perf_counter() - measure_from
        grace_end = time.perf_counter() + args.grace
        while (st.pending or st.unacked) and time.perf_counter() < grace_end:
            await asyncio.sleep(0.05)
        lost = len(st.pending)
        measured_lost = sum(1 for _, measured in st.pending.values() if measured)
        unacked = len(st.unacked)
        delivered_in_grace = st.delivered
        drain_end = time.perf_counter() + args.drain  # let a backlog finish so the next phase starts clean
        while (st.pending or st.unacked) and time.perf_counter() < drain_end and self.live_sockets():
            await asyncio.sleep(0.1)
        st.late = st.delivered - delivered_in_grace
        server_cpu = cpu_measure_1[0] - cpu_measure_0[0]
        client_cpu = cpu_measure_1[1] - cpu_measure_0[1]
        delivered_rate = st.window_delivered / duration
        result = {
            "mode": "saturate" if saturate else "fixed",
            "offered_rate_per_resident": None if saturate else args.rate,
            "residents": len(live), "agents": len(self.agents),
            "duration_s": round(measured_elapsed, 2),
            "sent": st.sent, "measured_sent": st.measured_sent, "acked": st.acked,
            "delivered": st.delivered, "measured_delivered": st.measured_delivered,
            "msgs_per_s": round(delivered_rate, 1),
            "p50_ms": _r(percentile(st.latencies_ms, 50)), "p90_ms": _r(percentile(st.latencies_ms, 90)),
            "p99_ms": _r(percentile(st.latencies_ms, 99)), "max_ms": _r(max(st.latencies_ms, default=None)),
            "ack_p50_ms": _r(percentile(st.ack_ms, 50)), "ack_p99_ms": _r(percentile(st.ack_ms, 99)),
            "errors": sum(st.errors.values()), "error_codes": dict(st.errors),
            "lost": lost, "measured_lost": measured_lost, "unacked": unacked, "late": st.late,
            "never_delivered": len(st.pending), "never_acked": len(st.unacked),
            "duplicates": st.duplicates, "unexpected": st.unexpected,
            "sockets_closed": sum(self.close_reasons.values()) - closed_before,
            "close_reasons": dict(self.close_reasons),
            "replies_sent": st.replies_sent, "replies_acked": st.replies_acked,
            "server_cpu_s": round(server_cpu, 2), "client_cpu_s": round(client_cpu, 2),
            "server_cpu_ms_per_msg": _r(server_cpu * 1000 / st.window_delivered) if st.window_delivered else None,
        }
        if saturate:
            cap = len(self.residents) * args.saturate_max_rate
            result["client_cap_msgs_per_s"] = round(cap, 1)
            result["hit_client_cap"] = delivered_rate >= 0.95 * cap
        result["residents_dropped_so_far"] = len(self.residents) - len(live) + result["sockets_closed"]
        log(f"  {result['mode']}: {result['msgs_per_s']} msg/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms,"
            f" errors {result['errors']}, lost {lost}", quiet=quiet)
        return result

    server_pid: int | None = None

    def live_sockets(self) -> int:
        return sum(1 for p in [*self.residents, *self.agents] if p.reader is not None and not p.reader.done())

    def server_cpu(self) -> float:
        pids = self.server_pids or ([self.server_pid] if self.server_pid else [])
        return sum(cpu_seconds(pid) for pid in pids)

    async def close(self) -> None:
        for peer in [*self.residents, *self.agents]:
            if peer.reader is not None:
                peer.reader.cancel()
        await asyncio.gather(*(p.ws.close() for p in [*self.residents, *self.agents] if p.ws is not None),
                             return_exceptions=True)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class Agent:
    def __init__(self, client: Client, index: int) -> None:
        self.client = client
        self.index = index
        self.ws: Any = None
        self.reader: asyncio.Task | None = None
        self.ids = count()
        self.cookie = ""

    async def connect(self, http: Any) -> None:
        from websockets.asyncio.client import connect

        headers = {}
        if self.client.gasdesk:
            response = await http.post("/login", data={"username": f"bench-agent-{self.index}",
                                                       "password": AGENT_PASSWORD, "next": "/"})
            cookie = response.cookies.get("gasdesk_session")
            if response.status_code != 303 or not cookie:
                raise RuntimeError(f"agent login failed: HTTP {response.status_code}")
            headers["Cookie"] = self.cookie = f"gasdesk_session={cookie}"
            # Like the console page: state-changing calls carry the session's CSRF token from the page.
            page = await http.get("/", headers={**headers, "Accept": "text/html"})
            token = re.search(r'<meta name="csrf-token" content="([^"]*)">', page.text)
            presence = await http.put("/api/v1/agent/presence", json={"presence": "online"},
                                      headers={**headers, "X-CSRF-Token": token.group(1) if token else ""})
            presence.raise_for_status()
        self.ws = await connect(f"{self.client.base_ws}/ws/agent", additional_headers=headers,
                                **self.client.ws_kwargs())
        hello = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        if hello.get("type") != "hello":
            raise RuntimeError(f"unexpected first agent frame: {hello}")
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        client = self.client
        try:
            async for raw in self.ws:
                received = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    message = frame["message"]
                    client.on_agent_message(message, received)
                    if (client.args.reply_fraction and message.get("sender") == "resident"
                            and random.random() < client.args.reply_fraction and client.window_open):
                        await self.reply(message["conversation_id"])
                elif kind == "ack":
                    client.stats.replies_acked += 1
                elif kind == "error":
                    client.stats.errors["agent:" + str(frame.get("code"))] += 1
        except Exception as exc:  # noqa: BLE001 - a dropped socket is counted, the run goes on
            client.close_reasons[f"{'agent' if isinstance(self, Agent) else 'resident'}: {str(exc)[:60]}"] += 1
        if client.resilient:
            asyncio.get_running_loop().create_task(self.reconnect())

    async def reconnect(self) -> None:
        """--cluster: the console's process died; open the socket again through nginx (same session)."""
        from websockets.asyncio.client import connect

        started = time.perf_counter()
        while time.perf_counter() - started < 60:
            try:
                ws = await connect(f"{self.client.base_ws}/ws/agent", additional_headers={"Cookie": self.cookie},
                                   **self.client.ws_kwargs())
                await asyncio.wait_for(ws.recv(), 10)  # hello
            except Exception:  # noqa: BLE001 - nginx may still try the dead process: again shortly
                await asyncio.sleep(0.2 + random.random() * 0.3)
                continue
            self.ws = ws
            self.reader = asyncio.create_task(self.read())
            return

    async def reply(self, conversation_id: int) -> None:
        self.client.stats.replies_sent += 1
        await self.ws.send(json.dumps({"type": "message", "conversation_id": conversation_id,
                                       "client_msg_id": f"a{self.index}.{next(self.ids)}",
                                       "text": "好的，正在为您查询，请稍等片刻。"}, ensure_ascii=False))


class Resident:
    def __init__(self, client: Client, index: int) -> None:
        self.client = client
        self.index = index
        self.ws: Any = None
        self.reader: asyncio.Task | None = None
        self.conversation_id: int | None = None
        self.agent_id: int | None = None
        self.assigned = asyncio.Event()
        self.welcomed = asyncio.Event()
        self.failed = False
        self.window = asyncio.Semaphore(1)
        self.in_window: set[str] = set()
        self.ids = count()
        self.token = "bench"
        self.down = False  # resilient mode: the socket died, a reconnect is under way
        self.reconnects = 0
        self.reconnect_s: list[float] = []

    async def reconnect(self) -> None:
        """As the chat client does after a drop (docs/chat-protocol.md): reconnect (through nginx, to whichever
        process is alive), hello with the conversation, then resend every unacknowledged message, same ids."""
        from websockets.asyncio.client import connect

        started = time.perf_counter()
        prefix = f"r{self.index}."
        while time.perf_counter() - started < 60:
            try:
                ws = await connect(f"{self.client.base_ws}/ws/webchat", **self.client.ws_kwargs())
                await ws.send(json.dumps({"type": "hello", "token": self.token,
                                          "conversation_id": self.conversation_id}))
                while json.loads(await asyncio.wait_for(ws.recv(), 10)).get("type") != "welcome":
                    pass
            except Exception:  # noqa: BLE001 - the dead process, nginx still trying it: again shortly
                await asyncio.sleep(0.2 + random.random() * 0.3)
                continue
            self.ws = ws
            self.down = False
            self.reconnects += 1
            self.reconnect_s.append(time.perf_counter() - started)
            self.reader = asyncio.create_task(self.read())
            for cmid in [c for c in self.client.stats.unacked if c.startswith(prefix)]:
                with contextlib.suppress(Exception):
                    await ws.send(json.dumps({"type": "message", "client_msg_id": cmid, "text": TEXT},
                                             ensure_ascii=False))
            return

    async def connect(self, http: Any) -> float:
        from websockets.asyncio.client import connect

        started = time.perf_counter()
        token = "bench"
        if self.client.gasdesk:
            response = await http.post("/api/v1/webchat/visitors")
            response.raise_for_status()
            token = self.token = response.json()["token"]
        self.ws = await connect(f"{self.client.base_ws}/ws/webchat", **self.client.ws_kwargs())
        self.reader = asyncio.create_task(self.read())
        await self.ws.send(json.dumps({"type": "hello", "token": token}))
        await asyncio.wait_for(self.welcomed.wait(), 60)
        await self.ws.send(json.dumps({"type": "handoff"}))
        await asyncio.wait_for(self.assigned.wait(), 60)
        return (time.perf_counter() - started) * 1000

    async def read(self) -> None:
        client = self.client
        try:
            async for raw in self.ws:
                received = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "ack":
                    cmid = frame.get("client_msg_id")
                    client.on_ack(cmid, received)
                    self._release(cmid)
                elif kind == "error":
                    client.on_error(frame)
                    self._release(frame.get("client_msg_id"))
                elif kind == "welcome":
                    conversation = frame["conversation"]
                    self.conversation_id = conversation["id"]
                    self._state(conversation.get("state"), conversation.get("agent_id"))
                    self.welcomed.set()
                elif kind == "state":
                    if frame.get("conversation_id") == self.conversation_id:
                        self._state(frame.get("state"), frame.get("agent_id"))
        except Exception as exc:  # noqa: BLE001 - a dropped socket is counted, the run goes on
            client.close_reasons[f"{'agent' if isinstance(self, Agent) else 'resident'}: {str(exc)[:60]}"] += 1
        finally:
            self.welcomed.set()  # never leave set-up waiting on a dead socket
            if client.resilient and not self.down and self.conversation_id is not None:
                self.down = True
                asyncio.get_running_loop().create_task(self.reconnect())

    def _state(self, state: str | None, agent_id: int | None) -> None:
        if state == "assigned":
            self.agent_id = agent_id
            self.assigned.set()

    def _release(self, cmid: str | None) -> None:
        if cmid and cmid in self.in_window:
            self.in_window.discard(cmid)
            self.window.release()

    async def send_one(self, measured: bool) -> None:
        now = time.perf_counter()
        cmid = f"r{self.index}.{next(self.ids)}.{int(now * 1e6)}"  # the send time is in the id, too
        st = self.client.stats
        st.pending[cmid] = (now, measured)
        st.unacked[cmid] = now
        st.sent += 1
        if measured:
            st.measured_sent += 1
        self.in_window.add(cmid)
        if self.client.resilient and self.down:
            return  # kept in the outbox: sent when the socket is back
        try:
            await self.ws.send(json.dumps({"type": "message", "client_msg_id": cmid, "text": TEXT},
                                          ensure_ascii=False))
        except Exception:  # the socket died: not sent, so not lost (the drop itself is counted)
            if self.client.resilient:
                return  # the reader notices the drop and reconnects; the outbox resends this one
            st.pending.pop(cmid, None)
            st.unacked.pop(cmid, None)
            st.sent -= 1
            st.measured_sent -= measured
            raise

    async def send_loop(self, saturate: bool, measure_from: float, stop_at: float) -> None:
        args = self.client.args
        try:
            if saturate:
                interval = 1.0 / args.saturate_max_rate
                next_at = time.perf_counter() + random.uniform(0, interval)
                while True:
                    remaining = stop_at - time.perf_counter()
                    if remaining <= 0:
                        return
                    try:
                        await asyncio.wait_for(self.window.acquire(), remaining)
                    except TimeoutError:
                        return
                    now = time.perf_counter()
                    if next_at > now:  # client-side pacing so the server's rate limit never fires
                        await asyncio.sleep(next_at - now)
                    now = time.perf_counter()
                    if now >= stop_at:
                        return
                    next_at = max(next_at + interval, now)
                    await self.send_one(now >= measure_from)
            else:
                period = 1.0 / args.rate
                next_at = time.perf_counter() + random.uniform(0, period)
                while next_at < stop_at:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await self.send_one(time.perf_counter() >= measure_from)
                    next_at += period * random.uniform(0.5, 1.5)
        except Exception:  # noqa: BLE001 - counted as a dropped socket by the reader
            return


class SlowReaderAttack:
    """Finding 1 of issue 8, as an attacker runs it: one visitor opens ``sockets`` extra sockets on its own
    conversation that never read (tiny receive buffers), then floods the conversation with the longest
    messages at ``rate`` per second (each after the last one's acknowledgement); one agent's console has a
    second socket that never reads either. gasdesk must drop the stuck sockets without slowing anyone else
    down. The rate is well above the per-visitor limit (5/s), which a run may lift to strain the slow-reader
    defence alone; it stays bounded so the run measures slow readers, not a CPU flood (that is what the
    per-visitor and per-IP limits are for).

    With ``reading`` (``--attack-control``) the same sockets are opened and the same flood is sent, but every
    socket reads: the control run. It carries exactly the attack's traffic, so comparing the two measures
    what the *slow readers* cost the other residents, apart from the CPU the extra messages cost anyway."""

    def __init__(self, client: Client, sockets: int, rate: float = 50.0, *, reading: bool = False) -> None:
        self.client = client
        self.sockets = sockets
        self.rate = rate
        self.reading = reading
        self.readers: list[asyncio.Task] = []
        self.stuck: list[Any] = []
        self.sender: Any = None
        self.sent = 0
        self.acked = 0
        self.task: asyncio.Task | None = None

    async def _stuck_socket(self, url: str, **kwargs: Any) -> Any:
        from websockets.asyncio.client import connect

        if self.reading:
            ws = await connect(url, **self.client.ws_kwargs(), **kwargs)
            self.readers.append(asyncio.create_task(self._read_all(ws)))
            return ws
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])))
        return await connect(url, sock=sock, **{**self.client.ws_kwargs(), "max_queue": 1}, **kwargs)

    @staticmethod
    async def _read_all(ws: Any) -> None:
        try:
            async for _ in ws:
                pass
        except Exception:  # noqa: BLE001 - closed at the end of the run
            return

    async def start(self, http: Any) -> None:
        from websockets.asyncio.client import connect

        token = (await http.post("/api/v1/webchat/visitors")).json()["token"]
        self.sender = await connect(f"{self.client.base_ws}/ws/webchat", **self.client.ws_kwargs())
        await self.sender.send(json.dumps({"type": "hello", "token": token}))
        conversation_id = None
        while conversation_id is None:
            frame = json.loads(await asyncio.wait_for(self.sender.recv(), 30))
            if frame.get("type") == "welcome":
                conversation_id = frame["conversation"]["id"]
        await self.sender.send(json.dumps({"type": "handoff"}))
        for _ in range(self.sockets):
            ws = await self._stuck_socket(f"{self.client.base_ws}/ws/webchat")
            await ws.send(json.dumps({"type": "hello", "token": token, "conversation_id": conversation_id}))
            self.stuck.append(ws)
        agent = self.client.agents[0]
        self.stuck.append(await self._stuck_socket(f"{self.client.base_ws}/ws/agent",
                                                   additional_headers={"Cookie": agent.cookie}))
        self.task = asyncio.create_task(self._flood())

    async def _flood(self) -> None:
        ids = count()
        next_at = time.perf_counter()
        try:
            while True:
                next_at += 1 / self.rate
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                await self.sender.send(json.dumps({"type": "message", "client_msg_id": f"x{next(ids)}",
                                                   "text": ATTACK_TEXT}, ensure_ascii=False))
                self.sent += 1
                while True:  # the next one when this one is answered (ack or rate_limited)
                    frame = json.loads(await self.sender.recv())
                    if frame.get("type") == "ack":
                        self.acked += 1
                        break
                    if frame.get("type") == "error":
                        await asyncio.sleep(float(frame.get("retry_after_s") or 0.5))
                        break
        except Exception:  # noqa: BLE001 - the attacker's own socket may be closed; the run goes on
            return

    async def stop(self) -> dict[str, Any]:
        if self.task is not None:
            self.task.cancel()
        for reader in self.readers:
            reader.cancel()
        dropped = 0
        for ws in self.stuck:
            if ws.transport.is_closing() or ws.state.name != "OPEN":
                dropped += 1
            ws.transport.abort()
        if self.sender is not None:
            self.sender.transport.abort()
        return {"attack_sockets": len(self.stuck), "attack_sockets_dropped_by_server": dropped,
                "attack_messages_sent": self.sent, "attack_messages_acked": self.acked}


# ---------------------------------------------------------------- the bare relay server


def relay_server_main(port: int) -> None:
    """Same frames as gasdesk's chat sockets, no framework and no database."""
    from websockets.asyncio.server import serve

    agents: dict[int, Any] = {}
    load: Counter = Counter()
    conversations: dict[int, dict[str, Any]] = {}
    ids = count(1)
    message_ids = count(1)

    async def send(ws: Any, data: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await ws.send(json.dumps(data, ensure_ascii=False, default=str))

    def message_wire(conversation: dict[str, Any], sender: str, frame: dict[str, Any]) -> dict[str, Any]:
        conversation["last_seq"] += 1
        return {"id": next(message_ids), "conversation_id": conversation["id"], "seq": conversation["last_seq"],
                "sender": sender, "sender_name": None, "type": "text", "text": frame.get("text"), "payload": None,
                "client_msg_id": frame.get("client_msg_id"),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}

    async def agent(ws: Any) -> None:
        user_id = next(ids)
        agents[user_id] = ws
        load[user_id] += 0
        await send(ws, {"type": "hello", "user_id": user_id, "name": f"agent{user_id}", "role": "agent"})
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    conversation = conversations.get(int(frame.get("conversation_id") or 0))
                    if conversation is None:
                        await send(ws, {"type": "error", "code": "not_found", "message": "no conversation"})
                        continue
                    message = message_wire(conversation, "agent", frame)
                    await send(ws, {"type": "ack", "client_msg_id": frame.get("client_msg_id"),
                                    "conversation_id": conversation["id"], "seq": message["seq"],
                                    "message_id": message["id"], "duplicate": False})
                    await asyncio.gather(send(conversation["resident"], {"type": "message", "message": message}),
                                         send(ws, {"type": "message", "message": message}))
        finally:
            agents.pop(user_id, None)
            load.pop(user_id, None)

    async def resident(ws: Any) -> None:
        conversation: dict[str, Any] | None = None
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "hello":
                conversation = {"id": next(ids), "state": "bot", "agent_id": None, "last_seq": 0, "resident": ws}
                conversations[conversation["id"]] = conversation
                await send(ws, {"type": "welcome", "visitor_id": "v", "conversation": {
                    k: v for k, v in conversation.items() if k != "resident"}})
            elif conversation is None:
                await send(ws, {"type": "error", "code": "no_conversation", "message": "hello first"})
            elif kind == "handoff":
                agent_id = min(load, key=load.__getitem__)
                load[agent_id] += 1
                conversation.update(state="assigned", agent_id=agent_id)
                state = {"type": "state", "conversation_id": conversation["id"], "state": "assigned",
                         "agent_id": agent_id, "previous_agent_id": None, "accepted": False}
                await asyncio.gather(send(ws, state), send(agents[agent_id], {
                    "type": "assigned", "conversation_id": conversation["id"], "agent_id": agent_id}))
            elif kind == "message":
                message = message_wire(conversation, "resident", frame)
                await send(ws, {"type": "ack", "client_msg_id": frame.get("client_msg_id"), "seq": message["seq"],
                                "message_id": message["id"], "duplicate": False})
                targets = [ws]
                if conversation["agent_id"] in agents:
                    targets.append(agents[conversation["agent_id"]])
                await asyncio.gather(*(send(t, {"type": "message", "message": message}) for t in targets))

    async def handler(ws: Any) -> None:
        with contextlib.suppress(Exception):
            await (agent(ws) if ws.request.path.startswith("/ws/agent") else resident(ws))

    def health(connection: Any, request: Any) -> Any:
        if request.path == "/healthz":
            return connection.respond(200, "ok\n")
        return None

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, process_request=health, max_queue=None,
                         ping_interval=20, ping_timeout=20) as server:
            await server.serve_forever()

    try:
        import uvloop  # same event loop as uvicorn uses when it is installed

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------- one target


async def run_target(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    quiet = args.json
    port = free_port()
    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure: reported
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    gasdesk = name == "gasdesk"
    if gasdesk:
        db_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        env.update(GASDESK_DATABASE_URL=db_url, GASDESK_ENV="development", GASDESK_UPLOAD_DIR=str(workdir / "up"),
                   GASDESK_VAR_DIR=str(workdir / "var"))
        env.pop("GASDESK_REDIS_URL", None)  # one process: the in-process event bus
        env.update(SERVER_ENV)
        if args.lift_visitor_limit:
            env["GASDESK_RATE_LIMITS"] = '{"message.visitor": "100000/10"}'
        cap = math.ceil(args.residents / args.agents) + 5
        t0 = time.perf_counter()
        prepare_gasdesk_db(env, args.agents, cap)
        log(f"[gasdesk] database ready in {time.perf_counter() - t0:.1f} s ({db_url.split('://')[0]})", quiet=quiet)
        runner = [str(Path(args.server_wrapper).resolve())] if args.server_wrapper else ["-m", "uvicorn"]
        argv = [sys.executable, *runner, "gasdesk.web.app:create_app", "--factory", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning", "--workers", str(args.workers)]
        if args.no_deflate:
            argv.append("--ws-per-message-deflate=false")
    else:
        argv = [sys.executable, str(Path(__file__).resolve()), "--_relay-server", str(port)]
    server = ServerProcess(name, argv, env, ROOT, workdir / f"{name}.log")
    try:
        await wait_ready(server, f"http://127.0.0.1:{port}/healthz")
        client = Client(args, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", gasdesk=gasdesk)
        client.server_pid = server.pid
        log(f"[{name}] connecting {args.agents} agents and {args.residents} residents", quiet=quiet)
        try:
            setup = await client.setup(quiet)
            if args.profile and gasdesk:  # after set-up: the profile shows the measured phases only
                spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                out = Path(args.profile).resolve()
                server.profiler = subprocess.Popen([spy, "record", "-p", str(server.pid), "-o", str(out), "-f",
                                                    args.profile_format, "-r", "100", "--subprocesses", "--threads",
                                                    "--nonblocking"]  # pausing the server would skew its figures
                                                   + (["--idle"] if args.profile_idle else []),
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                log(f"[gasdesk] py-spy recording to {out}", quiet=quiet)
            result: dict[str, Any] = {"setup": setup}
            client.window_open = True
            attack = None
            if args.attack_slow_readers and gasdesk and args.attack_with_control:
                # The control run first, on the same server and residents (one set-up for both runs): the
                # same sockets and flood, every socket reading; its sockets go before the attack starts.
                import httpx

                control = SlowReaderAttack(client, args.attack_slow_readers, args.attack_rate, reading=True)
                async with httpx.AsyncClient(base_url=client.base_http, timeout=30) as http:
                    await control.start(http)
                log(f"[{name}] control: {args.attack_slow_readers} reading resident sockets + 1 reading console",
                    quiet=quiet)
                log(f"[{name}] fixed rate {args.rate}/s per resident for {args.warmup:g}+{args.duration:g} s",
                    quiet=quiet)
                control_fixed = await client.phase(saturate=False, duration=args.duration, quiet=quiet)
                result["control"] = {"fixed": control_fixed, "attack": await control.stop()}
            if args.attack_slow_readers and gasdesk:
                import httpx

                attack = SlowReaderAttack(client, args.attack_slow_readers, args.attack_rate,
                                          reading=args.attack_control)
                async with httpx.AsyncClient(base_url=client.base_http, timeout=30) as http:
                    await attack.start(http)
                log(f"[{name}] attack: {args.attack_slow_readers} "
                    + ("reading (control run)" if args.attack_control else "non-reading")
                    + " resident sockets + 1 " + ("reading" if args.attack_control else "frozen") + " console",
                    quiet=quiet)
            log(f"[{name}] fixed rate {args.rate}/s per resident for {args.warmup:g}+{args.duration:g} s", quiet=quiet)
            result["fixed"] = await client.phase(saturate=False, duration=args.duration, quiet=quiet)
            if args.saturate:
                log(f"[{name}] saturate (window {args.window}) for {args.warmup:g}+{args.duration:g} s", quiet=quiet)
                result["saturate"] = await client.phase(saturate=True, duration=args.duration, quiet=quiet)
            client.window_open = False
            if attack is not None:
                result["attack"] = await attack.stop()
        finally:
            await client.close()
        if not server.alive():
            raise RuntimeError(f"{name} died during the run:\n{server.tail()}")
        tail = server.tail(200)
        result["loadavg_1m_before_after"] = [load_before, round(os.getloadavg()[0], 2)]
        result["server_log_errors"] = sum(1 for line in tail.splitlines() if "Traceback" in line or "ERROR" in line)
        return result
    finally:
        server.stop()


# ---------------------------------------------------------------- --cluster: 1 and 2 processes behind nginx


async def run_cluster_target(apps: int, args: argparse.Namespace, workdir: Path, *,
                             kill: bool) -> dict[str, Any]:
    """A fresh local cluster (gasdesk/system/cluster.py: PostgreSQL, Redis, ``apps`` web processes, one worker,
    nginx), the fixed-rate and saturation phases through nginx; with ``kill``, then a fixed-rate phase during
    which the last web process is killed with SIGKILL: its residents reconnect through nginx and resend, and
    the database is read back for lost and duplicated messages."""
    sys.path.insert(0, str(ROOT))
    from gasdesk.system.cluster import LocalCluster

    quiet = args.json
    name = f"{apps}-proc"
    env = dict(SERVER_ENV)
    if args.lift_visitor_limit:
        env["GASDESK_RATE_LIMITS"] = '{"message.visitor": "100000/10"}'
    run_dir = workdir / name
    # No reports process: this measures chat across web processes, and nothing here asks for a report.
    cluster = LocalCluster(run_dir, apps_count=apps, worker=True, access_log=False, reports_process=False,
                           env={**env, "GASDESK_ENV": "development", "GASDESK_UPLOAD_DIR": str(run_dir / "up"),
                                "GASDESK_VAR_DIR": str(workdir / "var")})
    load_before = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    cluster.start()
    try:
        prepare_gasdesk_db(cluster.gasdesk_env(), args.agents, math.ceil(args.residents / args.agents) + 5)
        log(f"[{name}] PostgreSQL + Redis + {apps} web process(es) + worker + nginx ready in "
            f"{time.perf_counter() - t0:.1f} s", quiet=quiet)
        base = cluster.url
        client = Client(args, base, base.replace("http://", "ws://"), gasdesk=True)
        client.server_pids = [app.pid for app in cluster.apps]
        try:
            result: dict[str, Any] = {"setup": await client.setup(quiet)}
            # The set-up's hand-offs leave each process a backlog of queue-change events (each re-reads the
            # queue positions from the database): measure the phases once it is worked off, and report how long.
            result["setup"]["settle_s"] = await settle(client, quiet)
            log(f"[{name}] fixed rate {args.rate}/s per resident for {args.warmup:g}+{args.duration:g} s", quiet=quiet)
            result["fixed"] = await client.phase(saturate=False, duration=args.duration, quiet=quiet)
            if args.saturate:
                log(f"[{name}] saturate for {args.warmup:g}+{args.duration:g} s", quiet=quiet)
                result["saturate"] = await client.phase(saturate=True, duration=args.duration, quiet=quiet)
            if kill:
                result["kill"] = await kill_phase(client, cluster, args, name, quiet)
        finally:
            client.resilient = False  # closing our own sockets is no drop to recover from
            await client.close()
        result["loadavg_1m_before_after"] = [load_before, round(os.getloadavg()[0], 2)]
        result["server_log_errors"] = {app.name: sum(1 for line in app.tail(2000).splitlines() if "Traceback" in line)
                                       for app in cluster.apps}
        return result
    finally:
        cluster.stop()


async def settle(client: Client, quiet: bool, idle_share: float = 0.15, limit_s: float = 180.0) -> float:
    """Seconds until the web processes use less than ``idle_share`` of a core over a second (``limit_s`` at most)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        before = client.server_cpu()
        await asyncio.sleep(1.0)
        if client.server_cpu() - before < idle_share * len(client.server_pids):
            break
    took = round(time.perf_counter() - started, 1)
    log(f"  servers idle again {took} s after set-up", quiet=quiet)
    return took


async def kill_phase(client: Client, cluster: Any, args: argparse.Namespace, name: str, quiet: bool) -> dict[str, Any]:
    """Fixed rate for ``--duration`` s; after a third of it the last web process gets SIGKILL. Counts what the
    database holds afterwards: every acknowledged message must be there exactly once."""
    client.resilient = True
    client.acked_ids = set()
    client.seen = set()
    client.stats = st = PhaseStats()
    victim = cluster.apps[-1]
    live = [r for r in client.residents if r.reader is not None and not r.reader.done()]
    start = time.perf_counter()
    stop_at = start + args.duration
    log(f"[{name}] kill phase: {args.kill_rate}/s per resident for {args.duration:g} s, SIGKILL {victim.name} "
        f"after {args.duration / 3:.0f} s", quiet=quiet)
    rate, args.rate = args.rate, args.kill_rate  # send_loop paces by args.rate
    try:
        senders = [asyncio.create_task(r.send_loop(False, start, stop_at)) for r in live]
        await asyncio.sleep(args.duration / 3)
        victim.kill()
        killed_at = time.perf_counter()
        client.server_pids = [app.pid for app in cluster.apps if app.alive()]
        await asyncio.gather(*senders, return_exceptions=True)
    finally:
        args.rate = rate
    deadline = time.perf_counter() + 60  # reconnects and resends settle
    while st.unacked and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    reconnect_s = [t for r in live for t in r.reconnect_s]
    stored = stored_resident_messages(cluster)
    sent_ids = set(st.pending) | client.seen  # every id sent in the phase (delivered or not)
    sent_ids |= client.acked_ids | set(st.unacked)
    lost = sorted(cmid for cmid in client.acked_ids if stored.get(cmid, 0) == 0)
    duplicates = sum(n - 1 for cmid, n in stored.items() if cmid in sent_ids and n > 1)
    result = {
        "sent": st.sent, "acked": len(client.acked_ids), "stored": sum(1 for c in sent_ids if stored.get(c)),
        "never_acked": len(st.unacked), "lost_acked": len(lost), "duplicates": duplicates,
        "residents_reconnected": sum(1 for r in live if r.reconnects), "residents": len(live),
        "reconnect_p50_s": _r(percentile(reconnect_s, 50)), "reconnect_max_s": _r(max(reconnect_s, default=None)),
        "killed_after_s": round(killed_at - start, 1), "delivered_to_agents": st.delivered,
        "delivered_twice_to_agents": st.duplicates,
        "p50_ms": _r(percentile(st.latencies_ms, 50)), "p99_ms": _r(percentile(st.latencies_ms, 99)),
    }
    log(f"  kill: sent {result['sent']}, acked {result['acked']}, stored {result['stored']}, lost (acked, not "
        f"stored) {result['lost_acked']}, never acked {result['never_acked']}, duplicates {duplicates}, "
        f"{result['residents_reconnected']}/{len(live)} residents reconnected (max {result['reconnect_max_s']} s)",
        quiet=quiet)
    return result


def stored_resident_messages(cluster: Any) -> dict[str, int]:
    """client_msg_id → rows stored, for the residents' messages (read with psql on the cluster's socket)."""
    pg = cluster.postgres
    out = subprocess.run([str(pg.bin / "psql"), "-h", str(pg.socket_dir), "-U", "gasdesk", "-d", pg.database, "-tA",
                          "-F", "\t", "-c", "SELECT client_msg_id, count(*) FROM messages WHERE sender_type = 'resident'"
                          " AND client_msg_id IS NOT NULL GROUP BY client_msg_id"],
                         capture_output=True, text=True, check=True).stdout
    return {cmid: int(n) for cmid, n in (line.split("\t") for line in out.splitlines() if line)}


async def run_cluster(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items() if k not in ("relay_server", "json", "keep")},
        "machine": machine(), "cluster": {},
    }
    for apps in (1, 2):
        report["cluster"][apps] = await run_cluster_target(apps, args, workdir, kill=apps == 2)
    c = report["cluster"]
    mode = "saturate" if args.saturate else "fixed"
    one, two = c[1][mode]["msgs_per_s"], c[2][mode]["msgs_per_s"]
    report["scaling"] = {"mode": mode, "one_process_msgs_per_s": one, "two_processes_msgs_per_s": two,
                         "ratio": round(two / one, 2) if one else None}
    kill = c[2]["kill"]
    report["targets_met"] = {"0 lost across a process kill": kill["lost_acked"] == 0 and kill["never_acked"] == 0,
                             "0 stored twice": kill["duplicates"] == 0}
    return report


def print_cluster(report: dict[str, Any]) -> None:
    cfg, m = report["config"], report["machine"]
    print(f"\nchat load, cluster (nginx → gasdesk serve × N, PostgreSQL, Redis, 1 worker): {cfg['residents']} "
          f"residents, {cfg['agents']} agents, {cfg['duration']:g} s per phase; {m['cpus']} CPUs ({m['cpu']})")
    header = f"{'run':<22}{'msg/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'lost':>6}{'srv cpu s':>11}"
    print(header + "\n" + "-" * len(header))
    for apps, res in report["cluster"].items():
        for mode in ("fixed", "saturate"):
            if mode in res:
                r = res[mode]
                print(f"{f'{apps} process(es) {mode}':<22}{r['msgs_per_s']:>9}{_f(r['p50_ms']):>9}{_f(r['p90_ms']):>9}"
                      f"{_f(r['p99_ms']):>9}{_f(r['max_ms']):>9}{r['errors']:>8}{r['lost']:>6}{r['server_cpu_s']:>11}")
        print(f"  set-up {apps}: {res['setup']['residents_s']} s, then {res['setup'].get('settle_s')} s until the servers "
              f"were idle; load avg before/after {res['loadavg_1m_before_after']}")
    s = report["scaling"]
    print(f"\n2 processes / 1 process ({s['mode']}): {s['two_processes_msgs_per_s']} / {s['one_process_msgs_per_s']} = "
          f"{s['ratio']}x")
    k = report["cluster"][2]["kill"]
    print(f"kill phase (SIGKILL one of 2 processes after {k['killed_after_s']} s): sent {k['sent']}, acked {k['acked']}, "
          f"stored {k['stored']}, lost {k['lost_acked']}, never acked {k['never_acked']}, stored twice {k['duplicates']}, "
          f"delivered twice to agents {k['delivered_twice_to_agents']}, "
          f"{k['residents_reconnected']}/{k['residents']} residents reconnected (p50 {k['reconnect_p50_s']} s, "
          f"max {k['reconnect_max_s']} s)")
    print("\ntargets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in report["targets_met"].items()))


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gib = round(mem_kb / 1024 / 1024, 1)
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_gib": mem_gib, "python": platform.python_version(),
            "platform": platform.platform()}


def ratios(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    return {"throughput": div(ours["msgs_per_s"], base["msgs_per_s"]), "p50": div(ours["p50_ms"], base["p50_ms"]),
            "p99": div(ours["p99_ms"], base["p99_ms"]),
            "server_cpu_per_msg": div(ours["server_cpu_ms_per_msg"], base["server_cpu_ms_per_msg"])}


def print_table(report: dict[str, Any]) -> None:
    cfg = report["config"]
    m = report["machine"]
    print(f"\nchat load: {cfg['residents']} residents, {cfg['agents']} agents, {cfg['duration']:g} s measured "
          f"(+{cfg['warmup']:g} s warm-up), {cfg['rate']:g} msg/s per resident; {m['cpus']} CPUs ({m['cpu']})")
    for name, res in report["targets"].items():
        s = res["setup"]
        print(f"  set-up {name:<8} agents {s['agents_s']} s, residents {s['residents_s']} s "
              f"(p50 {s['resident_setup_p50_ms']} ms, p99 {s['resident_setup_p99_ms']} ms per resident), "
              f"ready {s['residents_ready']}/{cfg['residents']}, errors {sum(s['setup_errors'].values())}; "
              f"load avg before/after {res['loadavg_1m_before_after']}")
    header = (f"{'run':<20}{'msg/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'ack p99':>9}"
              f"{'errors':>8}{'lost':>6}{'srv cpu ms/msg':>16}")
    print("\n" + header)
    print("-" * len(header))
    for mode in ("fixed", "saturate"):
        for name, res in report["targets"].items():
            if mode not in res:
                continue
            r = res[mode]
            print(f"{name + ' ' + mode:<20}{r['msgs_per_s']:>9}{_f(r['p50_ms']):>9}{_f(r['p90_ms']):>9}"
                  f"{_f(r['p99_ms']):>9}{_f(r['max_ms']):>9}{_f(r['ack_p99_ms']):>9}{r['errors']:>8}"
                  f"{r['lost']:>6}{_f(r['server_cpu_ms_per_msg']):>16}")
        if mode in report["ratios"]:
            ra = report["ratios"][mode]
            print(f"{'  ratio gasdesk/bare':<20}{_pct(ra['throughput']):>9}{_x(ra['p50']):>9}{'':>9}"
                  f"{_x(ra['p99']):>9}{'':>43}{_x(ra['server_cpu_per_msg']):>16}")
    for name, res in report["targets"].items():
        for mode in ("fixed", "saturate"):
            r = res.get(mode)
            if r and (r["error_codes"] or r["unacked"] or r["duplicates"] or r["sockets_closed"] or r["late"]):
                print(f"  {name} {mode}: error codes {r['error_codes']}, unacked after grace {r['unacked']}, "
                      f"delivered late {r['late']}, never delivered {r['never_delivered']}, duplicates "
                      f"{r['duplicates']}, sockets closed {r['sockets_closed']} {r['close_reasons'] or ''}")
            if r and mode == "saturate" and r.get("hit_client_cap"):
                print(f"  {name} saturate reached the client pacing cap ({r['client_cap_msgs_per_s']} msg/s): "
                      "a lower bound")
    if report.get("targets_met"):
        print("\ntargets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in report["targets_met"].items()))


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}x"


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("-n", "--residents", type=int, default=1000, help="concurrent resident sockets")
    p.add_argument("-m", "--agents", type=int, default=50, help="agent sockets (max_concurrent = ceil(N/M)+5 ≤ 50)")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of traffic before measuring, per phase")
    p.add_argument("--rate", type=float, default=0.1,
                   help="messages/s per resident in the fixed-rate phase (0.1 = one message every 10 s per resident)")
    p.add_argument("--grace", type=float, default=5.0, help="seconds to wait for in-flight messages after a phase")
    p.add_argument("--drain", type=float, default=120.0,
                   help="after the grace period, wait up to this long for a backlog (reported as late)")
    p.add_argument("--batch", type=int, default=50, help="connections opened concurrently during ramp-up")
    p.add_argument("--reply-fraction", type=float, default=0.0, help="agents answer this share of messages")
    p.add_argument("--saturate", action="store_true", help="also measure max sustained throughput")
    p.add_argument("--window", type=int, default=1, help="saturate: unacked messages in flight per resident")
    p.add_argument("--saturate-max-rate", type=float, default=4.5,
                   help=f"saturate: client-side cap per resident (server limit is {SERVER_RATE_LIMIT:g}/s)")
    p.add_argument("--attack-slow-readers", type=int, default=0, metavar="K",
                   help="during the run, one attacker holds K non-reading sockets on its conversation and floods it;"
                        " one agent console freezes too (issue 8, finding 1)")
    p.add_argument("--attack-rate", type=float, default=50.0, metavar="R",
                   help="the slow-reader attack's flood: longest messages per second from the attacking visitor")
    p.add_argument("--attack-control", action="store_true",
                   help="the attack's control run: the same sockets and flood, but every socket reads")
    p.add_argument("--attack-with-control", action="store_true",
                   help="run the attack's control run first on the same server and residents (figures under"
                        " 'control'), then the attack: one set-up for both")
    p.add_argument("--target", choices=["both", "gasdesk", "bare"], default="both")
    p.add_argument("--database-url", help="e.g. postgresql+asyncpg://… (must be an empty database)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers (more than 1 needs PostgreSQL + Redis)")
    p.add_argument("--kill-rate", type=float, default=1.0,
                   help="--cluster: messages/s per resident while one of the two processes is killed")
    p.add_argument("--cluster", action="store_true",
                   help="scale-out: PostgreSQL + Redis + nginx with 1, then 2 `gasdesk serve` processes (throughput, "
                        "p99), then a process killed mid-run (lost and duplicated messages); no bare relay")
    p.add_argument("--server-wrapper", metavar="FILE",
                   help="start gasdesk as `python FILE <uvicorn args>` (try a server-side change without editing)")
    p.add_argument("--deflate", dest="no_deflate", action="store_false",
                   help="enable permessage-deflate on both ends (gasdesk serve runs without it)")
    p.add_argument("--no-deflate", dest="no_deflate", action="store_true",
                   help="disable permessage-deflate on both ends (the default, as in gasdesk serve)")
    p.set_defaults(no_deflate=True)
    p.add_argument("--profile", metavar="FILE", help="record the gasdesk server with py-spy (pip install .[bench]) into FILE")
    p.add_argument("--profile-format", default="speedscope", choices=["speedscope", "flamegraph", "raw"])
    p.add_argument("--profile-idle", action="store_true", help="py-spy: include idle/waiting threads")
    p.add_argument("--json", action="store_true", help="print the figures as JSON on stdout (progress on stderr)")
    p.add_argument("--lift-visitor-limit", action="store_true",
                   help="raise gasdesk's per-visitor message limit so a few hundred residents can saturate the server "
                        "(a quicker profiling loop; the reference figures keep the limit)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (database, server logs)")
    p.add_argument("--_relay-server", type=int, dest="relay_server", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.relay_server is None:
        if (args.residents < 1 or args.agents < 1 or args.rate <= 0 or args.duration <= 0 or args.batch < 1
                or args.attack_rate <= 0):
            p.error("residents, agents, batch, rate, attack rate and duration must be positive")
        if (args.attack_control or args.attack_with_control) and not args.attack_slow_readers:
            p.error("--attack-control and --attack-with-control need --attack-slow-readers K")
        if args.attack_control and args.attack_with_control:
            p.error("--attack-with-control runs the control run itself: not with --attack-control")
        if math.ceil(args.residents / args.agents) + 5 > 50:
            p.error("ceil(residents/agents)+5 exceeds gasdesk's max_concurrent limit of 50: raise --agents")
        if args.saturate_max_rate >= SERVER_RATE_LIMIT and args.target != "bare" and not args.lift_visitor_limit:
            p.error(f"--saturate-max-rate must stay below the server's {SERVER_RATE_LIMIT:g}/s limit "
                    "(only the bare relay, --target bare, can be driven harder)")
        if args.rate > SERVER_RATE_LIMIT:
            p.error(f"--rate above {SERVER_RATE_LIMIT:g}/s would hit the server's per-socket rate limit")
    return args


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items() if k not in ("relay_server", "json", "keep")},
        "machine": machine(), "targets": {}, "ratios": {},
    }
    names = {"both": ["gasdesk", "bare"], "gasdesk": ["gasdesk"], "bare": ["bare"]}[args.target]
    for name in names:
        report["targets"][name] = await run_target(name, args, workdir)
    t = report["targets"]
    if "gasdesk" in t and "bare" in t:
        for mode in ("fixed", "saturate"):
            if mode in t["gasdesk"] and mode in t["bare"]:
                report["ratios"][mode] = ratios(t["gasdesk"][mode], t["bare"][mode])
    if "gasdesk" in t:
        fixed = t["gasdesk"]["fixed"]
        met = {"p99 < 100 ms": fixed["p99_ms"] is not None and fixed["p99_ms"] < 100,
               "0 lost": fixed["lost"] == 0 and t["gasdesk"]["setup"]["residents_ready"] == args.residents}
        basis = "saturate" if "saturate" in report["ratios"] else "fixed"
        if basis in report["ratios"]:
            met[f"throughput >= 30% of bare ({basis})"] = (report["ratios"][basis]["throughput"] or 0) >= 0.3
        report["targets_met"] = met
    return report


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.relay_server is not None:
        relay_server_main(args.relay_server)
        return 0
    fds = raise_nofile(4 * (args.residents + args.agents) + 256)
    if fds < 2 * (args.residents + args.agents) + 100:
        print(f"open-file limit {fds} is too low for {args.residents + args.agents} sockets", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="gasdesk-chat-load-"))
    if args.cluster and os.geteuid() == 0:
        workdir.chmod(0o711)  # PostgreSQL runs as "postgres" under root and must reach its directory in here
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        report = runner(run_cluster(args, workdir) if args.cluster else run(args, workdir))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    elif args.cluster:
        print_cluster(report)
    else:
        print_table(report)
    return 0 if all(report.get("targets_met", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
