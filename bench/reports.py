"""Reports benchmark: report pages and API answering from the roll-ups over a big history, and the chat path
while a yearly export renders.

Run: .venv/bin/python bench/reports.py                      # 100,000 conversations, 1,000,000 messages, SQLite
     .venv/bin/python bench/reports.py --conversations 10000 --messages 100000 --chat-duration 10
     .venv/bin/python bench/reports.py --database-url postgresql+asyncpg://…   # an empty database
     .venv/bin/python bench/reports.py --json                  # figures as JSON on stdout
     .venv/bin/python bench/reports.py --reuse DIR --skip-routes --rounds 7 --trace t.json   # then:
     .venv/bin/python bench/trace_exports.py t.json           # where the slow chat messages fall around the exports
     .venv/bin/python bench/reports.py --separate-worker --reports-process --rounds 7   # production's layout:
         # a worker process, and the report routes in a web process of their own (docs/production-checklist.md)

What it does:
1. A fresh database (temp SQLite, or ``--database-url``), the real migrations and the chat bench's agents
   (bench/chat_load.py ``prepare_gasdesk_db``).
2. Seeds, in a child process, with bulk Core inserts in batches: ``--conversations`` closed conversations
   spread over the last year (channels, districts, agents, intents), ``--messages`` messages among them,
   and the analytics facts those conversations would have produced (contact started, bot turns, knowledge
   hits and misses, hand-off, queued, accepted, handled, closed, rated, tickets, 回访), then the hourly
   buckets from those facts with the roll-up's own ``rebuild_all``.
3. Starts the server (uvicorn, one process, as production's default) and times every report page and JSON
   route the app declares (found in /openapi.json: GET routes under /reports and /api/v1/reports with a
   ``{key}``) for every report key and grain: ``--repeat`` requests each after one warm-up, p50/p95.
   Target: p95 < 200 ms.
4. Chat: the chat bench's residents and agents (``--residents``, ``--agents``, fixed rate) for
   ``--chat-duration`` seconds, twice: alone, then while a loop exports the yearly overview report
   (PDF and xlsx in turn) through ``/api/v1/reports/overview/export`` — from a process of its own, as a
   supervisor's browser would. ``--rounds`` alternates the two phases and compares the p99 of each phase
   kind's pooled latencies (and prints the median of the rounds' own p99s beside it). Target: p99 moves ≤ 20 %.
   ``--reports-process`` sends the exports to a second web process on the same database at the background CPU
   priority, as nginx does in production; without it chat's own web process takes them (``make run``).

The machine's load average is printed with the figures: other work on the machine moves every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's gasdesk (the seeding child)
import chat_load  # noqa: E402 - the chat bench's server, client and statistics, reused as they are

ROOT = Path(__file__).resolve().parent.parent
REPORT_KEYS = ("overview", "channels", "ai", "kb", "tickets", "satisfaction", "agents", "peaks", "topics", "quality")
GRAINS = ("day", "week", "month", "year")
CHANNELS = ("webchat", "wechat", "sms", "voice")
DISTRICTS = ("和平区", "河西区", "南开区", "河东区", "红桥区", "河北区")
INTENTS = ("bill_query", "payment", "repair", "gas_leak", "outage", "meter", "complaint", "heating")
TICKET_TYPES = ("repair", "complaint", "inquiry")
BATCH = 20_000
# Every fact row has every key: an executemany takes its columns from the first row.
FACT_OPTIONAL = {"agent_id": None, "team_id": None, "skill_group_id": None, "ticket_type": None, "detail": None}
TARGET_P95_MS = 200.0
TARGET_P99_MOVE = 0.20
SUPERVISOR = "bench-supervisor"
PING_EVERY_S = 0.4  # --export-formats ping: the pace of the exports' requests (~2.5 a second)


def log(message: str, *, quiet: bool = False) -> None:
    chat_load.log(message, quiet=quiet)


# ---------------------------------------------------------------- seeding (child process)


def seed_main(conversations: int, messages: int, seed: int) -> None:
    """In a child process, whose Settings read the bench's environment: bulk rows, facts, buckets, and a
    supervisor's API token (printed as JSON on the last line of stdout)."""
    # Imported here, not at the top: this script's parent process must not read Settings (its environment
    # is the child's, set by the parent), and the parent never needs these modules.
    from sqlalchemy import select, text  # noqa: PLC0415

    from gasdesk.analytics.models import AnalyticsFact  # noqa: PLC0415
    from gasdesk.analytics.rollup import rebuild_all  # noqa: PLC0415
    from gasdesk.audit.service import Actor  # noqa: PLC0415
    from gasdesk.auth.models import User  # noqa: PLC0415
    from gasdesk.auth.service import do_create_user, do_issue_api_token  # noqa: PLC0415
    from gasdesk.conversations.models import Conversation, Message  # noqa: PLC0415
    from gasdesk.db import dispose_engine, table_of, transaction  # noqa: PLC0415

    rng = random.Random(seed)

    async def main() -> dict[str, Any]:
        timings: dict[str, float] = {}
        async with transaction() as s:
            agent_ids = list(await s.scalars(select(User.id).where(User.role == "agent")))
        seeded_at = datetime.now(UTC)
        now = seeded_at.replace(minute=0, second=0, microsecond=0)
        start = now - timedelta(days=365)
        per_conversation = max(1, messages // conversations)
        t0 = time.perf_counter()
        conv_rows: list[dict[str, Any]] = []
        facts: list[dict[str, Any]] = []
        message_count = 0
        conv_table, msg_table, fact_table = table_of(Conversation), table_of(Message), table_of(AnalyticsFact)

        async def flush(force: bool = False) -> None:
            nonlocal conv_rows, facts
            if conv_rows and (force or len(conv_rows) >= BATCH // 10):
                async with transaction() as s:
                    await s.execute(conv_table.insert(), conv_rows)
                conv_rows = []
            if facts and (force or len(facts) >= BATCH):
                async with transaction() as s:
                    await s.execute(fact_table.insert(), facts)
                facts = []

        body = "您好，我家燃气表显示余额不足，请问怎么在线缴费？"
        msg_rows: list[dict[str, Any]] = []
        for cid in range(1, conversations + 1):
            # Busier in the daytime and on weekdays, as the centre is.
            created = start + timedelta(seconds=rng.random() * 365 * 86400)
            created = created.replace(hour=rng.choices(range(24), weights=chat_load_hours())[0])
            channel = rng.choice(CHANNELS)
            district = rng.choice(DISTRICTS)
            intent = rng.choice(INTENTS)
            handed = rng.random() < 0.35
            agent_id = rng.choice(agent_ids) if handed and agent_ids else None
            wait_s = rng.expovariate(1 / 40) if handed else None
            handle_s = rng.expovariate(1 / 300) if handed else None
            closed = created + timedelta(seconds=60 + (wait_s or 0) + (handle_s or 0))
            conv_rows.append({"id": cid, "channel": channel, "state": "closed", "visitor_id": f"bench-{cid}",
                              "priority": 0, "agent_id": agent_id, "last_seq": per_conversation,
                              "agent_read_seq": 0, "bot_misses": 0, "created_at": created, "closed_at": closed,
                              "closed_by": "agent" if handed else "bot", "handoff_reason": "request" if handed else None})
            dims = {"channel": channel, "district": district, "intent": intent, "conversation_id": cid}
            fact = FactWriter(facts, cid, dims, seeded_at)

            fact("contact.started", created)
            for n in range(3):
                fact("bot.turn", created + timedelta(seconds=5 * n), n)
            fact("kb.hit" if rng.random() < 0.7 else "kb.miss", created + timedelta(seconds=5))
            if rng.random() < 0.1:
                fact("kb.not_helpful" if rng.random() < 0.3 else "kb.helpful", created + timedelta(seconds=8))
            if handed:
                fact("conversation.handoff", created + timedelta(seconds=20), detail="request")
                fact("conversation.queued", created + timedelta(seconds=20))
                fact("conversation.accepted", created + timedelta(seconds=20 + (wait_s or 0)), value=wait_s or 0,
                     agent_id=agent_id)
                fact("conversation.handled", closed, value=handle_s or 0, agent_id=agent_id)
            else:
                fact("conversation.bot_only", closed)
            fact("conversation.closed", closed, detail="resolved")
            if rng.random() < 0.3:
                fact("conversation.rated", closed, value=rng.choice((3, 4, 5, 5, 5)), agent_id=agent_id)
            if rng.random() < 0.1:
                ticket_type = rng.choice(TICKET_TYPES)
                fact("ticket.created", closed, ticket_type=ticket_type)
                resolved = closed + timedelta(hours=rng.expovariate(1 / 20))
                fact("ticket.resolved", resolved, value=(resolved - closed).total_seconds(), ticket_type=ticket_type)
                if rng.random() < 0.9:
                    fact("ticket.resolved_in_sla", resolved, ticket_type=ticket_type)
                if rng.random() < 0.5:
                    fact("followup.answered", resolved + timedelta(days=1), value=rng.choice((3, 4, 5)))
            # The messages: spread per conversation so the total is exactly ``messages``.
            count = per_conversation if cid < conversations else messages - message_count
            for seq in range(1, count + 1):
                msg_rows.append({"conversation_id": cid, "seq": seq, "sender_type": "resident" if seq % 2 else "bot",
                                 "content_type": "text", "text": body, "created_at": created + timedelta(seconds=seq)})
            message_count += count
            await flush()
            if len(msg_rows) >= BATCH:
                await flush(force=True)  # conversations first: messages refer to them
                async with transaction() as s:
                    await s.execute(msg_table.insert(), msg_rows)
                msg_rows = []
        await flush(force=True)
        if msg_rows:
            async with transaction() as s:
                await s.execute(msg_table.insert(), msg_rows)
        timings["rows_s"] = round(time.perf_counter() - t0, 1)
        async with transaction() as s:
            if s.bind.dialect.name == "postgresql":  # ids were given explicitly: move the sequence past them
                await s.execute(text("SELECT setval(pg_get_serial_sequence('conversations', 'id'), "
                                     "(SELECT max(id) FROM conversations))"))
        t1 = time.perf_counter()
        async with transaction() as s:
            hours = await rebuild_all(s)
        timings["buckets_s"] = round(time.perf_counter() - t1, 1)
        async with transaction() as s:
            user = await do_create_user(s, Actor.system("bench"), username=SUPERVISOR,
                                        password="bench-supervisor-pw-1", role="supervisor")
            token, _ = await do_issue_api_token(s, user)
        await dispose_engine()
        return {"token": token, "messages": message_count, "conversations": conversations, "hours": hours, **timings}

    print(json.dumps(asyncio.run(main())))


def reuse_main() -> None:
    """In a child process: make a kept bench database ready for another run — close the conversations an
    earlier run's residents left open (they would hold the agents' capacity) and issue a new API token for
    the bench supervisor (printed as JSON on the last line of stdout)."""
    from sqlalchemy import select, update  # noqa: PLC0415 - as in seed_main: the child's modules only

    from gasdesk.auth.models import User  # noqa: PLC0415
    from gasdesk.auth.service import do_issue_api_token  # noqa: PLC0415
    from gasdesk.clock import utcnow  # noqa: PLC0415
    from gasdesk.conversations.models import Conversation  # noqa: PLC0415
    from gasdesk.db import dispose_engine, transaction  # noqa: PLC0415

    async def main() -> dict[str, Any]:
        async with transaction() as s:
            closed = (await s.execute(update(Conversation).where(Conversation.state != "closed")
                                      .values(state="closed", closed_at=utcnow()))).rowcount
            user = await s.scalar(select(User).where(User.username == SUPERVISOR))
            if user is None:
                raise SystemExit("not a kept bench database: no bench supervisor")
            token, _ = await do_issue_api_token(s, user)
        await dispose_engine()
        return {"token": token, "reused": True, "closed_leftover_conversations": closed}

    print(json.dumps(asyncio.run(main())))


class FactWriter:
    """Appends the analytics facts of one seeded conversation, each with its own dedupe key."""

    def __init__(self, out: list[dict[str, Any]], cid: int, dims: dict[str, Any], now: datetime) -> None:
        self.out, self.cid, self.dims, self.now = out, cid, dims, now

    def __call__(self, kind: str, at: datetime, n: int = 0, value: float = 1.0, **extra: Any) -> None:
        # a fact is inserted when it happens, never later than now (some of a recent conversation's facts —
        # a ticket resolved hours later, its 回访 the next day — fall after the seeding's clock)
        self.out.append({"kind": kind, "occurred_at": at, "dedupe_key": f"bench:{self.cid}:{kind}:{n}",
                         "value": value, "inserted_at": min(at, self.now), **self.dims, **FACT_OPTIONAL, **extra})


def chat_load_hours() -> list[float]:
    """Relative traffic per hour of the day (a utility's contact centre: 08–20 busy)."""
    return [1, 0.5, 0.3, 0.3, 0.3, 0.6, 2, 5, 9, 11, 11, 10, 8, 9, 11, 10, 9, 7, 5, 4, 3, 2, 1.5, 1]


# ---------------------------------------------------------------- timing the report routes


async def report_routes(http: Any) -> list[str]:
    """The report JSON routes the app declares (/api/v1/reports/{key}), and the report page /reports/{key}
    (pages are left out of the OpenAPI document)."""
    spec = (await http.get("/openapi.json")).json()
    found = ["/reports/{key}"]
    for path, methods in spec["paths"].items():
        if "get" in methods and "{key}" in path and re.match(r"^(/api/v1)?/reports/", path) and "export" not in path:
            found.append(path)
    # the JSON API declares one route per report (/api/v1/reports/overview…) beside other reports' routes
    if "/api/v1/reports/{key}" not in found and all(f"/api/v1/reports/{key}" in spec["paths"] for key in REPORT_KEYS):
        found.append("/api/v1/reports/{key}")
    return sorted(found)


async def time_reports(http: Any, routes: list[str], repeat: int, quiet: bool) -> list[dict[str, Any]]:
    results = []
    for route in routes:
        for key in REPORT_KEYS:
            for grain in GRAINS:
                url = route.replace("{key}", key)
                params = {"grain": grain}
                first = await http.get(url, params=params)  # warm-up; also tells whether the key exists
                if first.status_code == 404:
                    break
                times = []
                statuses = {first.status_code}
                for _ in range(repeat):
                    t = time.perf_counter()
                    response = await http.get(url, params=params)
                    times.append((time.perf_counter() - t) * 1000)
                    statuses.add(response.status_code)
                row = {"route": route, "key": key, "grain": grain, "status": sorted(statuses),
                       "p50_ms": round(chat_load.percentile(times, 50) or 0, 1),
                       "p95_ms": round(chat_load.percentile(times, 95) or 0, 1)}
                results.append(row)
                log(f"  {url}?grain={grain}: p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms {row['status']}", quiet=quiet)
    return results


# ---------------------------------------------------------------- chat with and without a yearly export


async def export_loop(base: str, token: str, stop: asyncio.Event, formats: list[str]) -> list[dict[str, Any]]:
    import httpx  # noqa: PLC0415 - as in chat_load: only the client side needs it

    done: list[dict[str, Any]] = []
    if formats == ["none"]:  # the A/A calibration: the same process and timing, no exports
        await stop.wait()
        return done
    async with httpx.AsyncClient(base_url=base, timeout=600, headers={"Authorization": f"Bearer {token}"}) as http:
        n = 0
        while not stop.is_set():
            fmt = formats[n % len(formats)]
            n += 1
            t = time.perf_counter()
            if fmt == "ping":  # calibration: a small API call at about the exports' pace, no render
                response = await http.get("/api/v1/auth/me")
                await asyncio.sleep(PING_EVERY_S)
            else:
                response = await http.get("/api/v1/reports/overview/export", params={"grain": "year", "format": fmt})
            end = time.perf_counter()  # the clock is the machine's monotonic one: --trace compares it across processes
            done.append({"format": fmt, "status": response.status_code, "bytes": len(response.content),
                         "s": round(end - t, 2), "t0": t, "t1": end})
    return done


def export_loop_main(base: str, formats: list[str]) -> None:
    """In a child process: export until stdin closes, then print what was exported as JSON. The supervisor who
    downloads the files is not the residents' client: receiving megabytes of PDF in the chat client's event
    loop delayed its own acks by milliseconds, which the first runs measured as the export's cost."""
    token = os.environ.pop("GASDESK_BENCH_TOKEN")

    async def main() -> list[dict[str, Any]]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        eof = loop.run_in_executor(None, sys.stdin.read)
        eof.add_done_callback(lambda _: stop.set())
        return await export_loop(base, token, stop, formats)

    print(json.dumps(asyncio.run(main())), flush=True)


def _as_a_remote_client() -> None:
    """The supervisor's browser is not on the server: on this loopback bench its process takes the CPU only when
    nothing else wants it (nice 19, Linux's idle class), not a share of the cores chat's client and server use."""
    os.nice(19)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


class ExportingProcess:
    """``export_loop_main`` in a process of its own, started and stopped around a measured phase; at the lowest
    CPU priority unless ``normal_priority`` (the way the first runs measured it)."""

    def __init__(self, base: str, token: str, formats: list[str], normal_priority: bool = False) -> None:
        self._process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--_export-loop", base,
                                          "--export-formats", ",".join(formats)],
                                         env={**os.environ, "GASDESK_BENCH_TOKEN": token}, cwd=ROOT,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         preexec_fn=None if normal_priority else _as_a_remote_client)

    async def stop(self) -> list[dict[str, Any]]:
        out, _ = await asyncio.to_thread(self._process.communicate, "", 900)
        if self._process.returncode != 0:
            raise RuntimeError(f"the export loop failed (exit {self._process.returncode})")
        return json.loads(out.strip().splitlines()[-1])


def drain_trace(client: Any) -> list[tuple[float, float]]:
    """The (sent, delivered) pairs the client traced since the last call (none unless --trace)."""
    traced, client.trace = client.trace, ([] if client.trace is not None else None)
    return traced or []


def copy_database(source: Path, target: Path) -> None:
    """``source``'s bench.db (its WAL written into the file first) and its var/ (the keys the stored personal
    data is encrypted with) into ``target``."""
    with contextlib.closing(sqlite3.connect(source / "bench.db")) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(source / "bench.db", target / "bench.db")
    if (source / "var").is_dir():
        shutil.copytree(source / "var", target / "var", dirs_exist_ok=True)


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import httpx  # noqa: PLC0415

    quiet = args.json
    load_before = [round(x, 2) for x in os.getloadavg()]
    db_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GASDESK_DATABASE_URL": db_url, "GASDESK_ENV": "development",
           "GASDESK_UPLOAD_DIR": str(workdir / "up"), "GASDESK_VAR_DIR": str(workdir / "var"),
           # The server's own worker must not render the scheduled reports in the middle of the timings.
           "GASDESK_REPORTS_SCHEDULE_ENABLED": "false", **chat_load.SERVER_ENV}
    env.pop("GASDESK_REDIS_URL", None)
    cap = -(-args.residents // args.agents) + 5
    t0 = time.perf_counter()
    if args.reuse:
        # A kept database (--keep) instead of seeding again: copied, so that the kept one stays as it was.
        copy_database(args.reuse, workdir)
        child = ["--_reuse"]
    else:
        chat_load.prepare_gasdesk_db(env, args.agents, cap)
        log(f"[reports] migrated, {args.agents} agents, in {time.perf_counter() - t0:.1f} s", quiet=quiet)
        child = ["--_seed", str(args.conversations), str(args.messages)]
    t0 = time.perf_counter()
    seeded = subprocess.run([sys.executable, str(Path(__file__).resolve()), *child], env=env, cwd=ROOT, check=True,
                            stdout=subprocess.PIPE, text=True)
    seed = json.loads(seeded.stdout.strip().splitlines()[-1])
    token = seed.pop("token")
    log(f"[reports] seeded {seed} in {time.perf_counter() - t0:.1f} s", quiet=quiet)

    def uvicorn_argv(port: int) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "gasdesk.web.app:create_app", "--factory", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning", "--ws-per-message-deflate=false"]

    port = chat_load.free_port()
    argv = uvicorn_argv(port)
    worker = None
    if args.separate_worker:
        # The layout of docs/production-checklist.md: periodic scans, roll-ups and jobs in a worker process, the
        # web process serving requests and sockets only.
        env["GASDESK_RUN_WORKER"] = "false"
        worker = chat_load.ServerProcess("worker", [str(Path(sys.executable).parent / "gasdesk"), "worker", "--poll", "1"],
                                         env, ROOT, workdir / "worker.log")
    # A web process of their own for the exports (never running jobs or periodic tasks), or None: chat's takes them.
    exports_server = None
    exports_port = chat_load.free_port()
    if args.exports_elsewhere:
        # Calibration: the exports go to a second server on a copy of the database (its own web process,
        # render process and file), so chat shares only the machine with them — its cores, caches and disk.
        other = workdir / "elsewhere"
        other.mkdir()
        copy_database(workdir, other)
        exports_server = chat_load.ServerProcess(
            "exports", uvicorn_argv(exports_port),
            {**env, "GASDESK_DATABASE_URL": f"sqlite+aiosqlite:///{other / 'bench.db'}",
             "GASDESK_VAR_DIR": str(other / "var"), "GASDESK_RUN_WORKER": "false"}, ROOT, other / "server.log")
    elif args.reports_process:
        # The layout of docs/production-checklist.md for a busy centre: the report routes in a web process of
        # their own on the same database, the proxy sending /reports and /api/v1/report… there; chat's web
        # process never takes an export request. It runs at the background CPU priority that layout sets
        # (GASDESK_WEB_CPU_PRIORITY).
        exports_server = chat_load.ServerProcess(
            "reports", uvicorn_argv(exports_port),
            {**env, "GASDESK_RUN_WORKER": "false", "GASDESK_WEB_CPU_PRIORITY": "background"}, ROOT,
            workdir / "reports.log")
    server = chat_load.ServerProcess("gasdesk", argv, env, ROOT, workdir / "server.log")
    result_layout = "web + worker processes" if worker else "one process (worker inside)"
    if args.reports_process:
        result_layout += " + a reports web process"
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"seed": seed, "database": db_url.split("://")[0], "layout": result_layout,
                              "load_before": load_before}
    export_base = base
    try:
        await chat_load.wait_ready(server, f"{base}/healthz")
        if exports_server is not None:
            export_base = f"http://127.0.0.1:{exports_port}"
            await chat_load.wait_ready(exports_server, f"{export_base}/healthz")
            if args.exports_elsewhere:
                result["exports_elsewhere"] = True
        async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
            if not args.skip_routes:
                routes = await report_routes(http)
                log(f"[reports] report routes: {routes}", quiet=quiet)
                result["reports"] = await time_reports(http, routes, args.repeat, quiet)
        if not args.skip_routes:
            timed = result["reports"]
            result["reports_worst_p95_ms"] = max((r["p95_ms"] for r in timed), default=None)
            result["reports_under_target"] = all(r["p95_ms"] < TARGET_P95_MS for r in timed)

        chat_args = chat_load.parse_args(["-n", str(args.residents), "-m", str(args.agents), "--duration",
                                          str(args.chat_duration), "--rate", str(args.rate), "--target", "gasdesk",
                                          "--no-deflate"])
        client = chat_load.Client(chat_args, base, f"ws://127.0.0.1:{port}", gasdesk=True)
        client.server_pid = server.pid
        phases: list[dict[str, Any]] = []
        if args.trace:
            client.trace = []
        try:
            result["chat_setup"] = await client.setup(quiet)
            client.window_open = True
            rounds = []
            pooled: dict[str, list[float]] = {"alone": [], "with_export": []}
            for n in range(args.rounds):
                # Alone, then with exports, again and again: on a shared 2-vCPU machine one 20 s phase's p99
                # moves by more than the target from run to run; medians over alternated rounds move less.
                log(f"[reports] round {n + 1}/{args.rounds}: chat alone", quiet=quiet)
                alone = await client.phase(saturate=False, duration=args.chat_duration, quiet=quiet)
                pooled["alone"].extend(client.stats.latencies_ms)
                phases.append({"kind": "alone", "messages": drain_trace(client)})
                log(f"[reports] round {n + 1}/{args.rounds}: chat while yearly exports run", quiet=quiet)
                exporting = ExportingProcess(export_base, token, args.export_formats, args.export_client_normal)
                await asyncio.sleep(1.5)  # the first export is under way when the measured phase starts
                loaded = await client.phase(saturate=False, duration=args.chat_duration, quiet=quiet)
                pooled["with_export"].extend(client.stats.latencies_ms)
                rounds.append((alone, loaded, await exporting.stop()))
                phases.append({"kind": "with_export", "messages": drain_trace(client), "exports": rounds[-1][2]})
        finally:
            await client.close()
        if args.trace:
            args.trace.write_text(json.dumps(phases))
            result["trace"] = str(args.trace)
        keep = ("msgs_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "lost", "server_cpu_s")
        alone, loaded, _ = rounds[0]
        result["chat_alone"] = {k: alone[k] for k in keep}
        result["chat_with_export"] = {k: loaded[k] for k in keep}
        result["exports"] = [e for _, _, done in rounds for e in done]
        if len(rounds) > 1:
            result["rounds"] = [{"alone": {k: a[k] for k in keep}, "with_export": {k: w[k] for k in keep}}
                                for a, w, _ in rounds]
            result["chat_p99_median"] = {"alone": statistics.median(a["p99_ms"] for a, _, _ in rounds),
                                         "with_export": statistics.median(w["p99_ms"] for _, w, _ in rounds)}
            # The chat bench's p99 is over all of its messages: every round's latencies of one phase kind
            # pooled. A round's own p99 (1,500 messages: the 15th worst) is decided by whatever else ran in
            # those 15 s — one 0.5 s periodic scan is enough — and the median of seven such figures still
            # moves by more than the target from run to run; the pooled p99 is the 1 % tail of ~10,000.
            result["chat_pooled"] = {kind: {"messages": len(values),
                                            **{f"p{q}_ms": round(chat_load.percentile(values, q) or 0, 2)
                                               for q in (50, 90, 99)}}
                                     for kind, values in pooled.items()}
            alone_p99 = result["chat_pooled"]["alone"]["p99_ms"]
            loaded_p99 = result["chat_pooled"]["with_export"]["p99_ms"]
            median = result["chat_p99_median"]
            result["chat_p99_median_move"] = round(median["with_export"] / median["alone"] - 1, 3)
        else:
            alone_p99, loaded_p99 = alone["p99_ms"], loaded["p99_ms"]
        if alone_p99 and loaded_p99:
            move = loaded_p99 / alone_p99 - 1
            result["chat_p99_move"] = round(move, 3)
            result["chat_p99_within_target"] = move <= TARGET_P99_MOVE
    finally:
        server.stop()
        for other_process in (worker, exports_server):
            if other_process is not None:
                other_process.stop()
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conversations", type=int, default=100_000)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=10, help="timed requests per report route, key and grain")
    p.add_argument("--residents", type=int, default=200, help="chat residents (bench/chat_load.py)")
    p.add_argument("--agents", type=int, default=20, help="chat agents")
    p.add_argument("--rate", type=float, default=0.5, help="messages/s per resident")
    p.add_argument("--chat-duration", type=float, default=20.0, help="measured seconds per chat phase")
    p.add_argument("--database-url", help="e.g. postgresql+asyncpg://… (an empty database)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON on stdout (progress on stderr)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (database, server log)")
    p.add_argument("--reuse", type=Path, metavar="DIR",
                   help="copy the database kept by an earlier --keep run from DIR instead of seeding (minutes saved)")
    p.add_argument("--rounds", type=int, default=1,
                   help="alternate the chat phases (alone, with exports) this many times; the move compares pooled p99s")
    p.add_argument("--skip-routes", action="store_true", help="skip timing the report routes (chat phases only)")
    p.add_argument("--separate-worker", action="store_true",
                   help="run the periodic tasks and jobs in a `gasdesk worker` process (GASDESK_RUN_WORKER=false)")
    p.add_argument("--export-client-normal", action="store_true",
                   help="run the export loop's client at normal CPU priority, as chat's client (default: nice 19 and"
                        " the idle class — the supervisor's browser is on another machine)")
    p.add_argument("--exports-elsewhere", action="store_true",
                   help="calibration: export from a second server on a copy of the database, so that chat and the"
                        " exports share the machine only (not the web process, its connection or the file)")
    p.add_argument("--reports-process", action="store_true",
                   help="serve the exports from a second web process on the same database, as a proxy routing the"
                        " report paths there would (docs/production-checklist.md); chat's web process takes none")
    p.add_argument("--trace", type=Path, metavar="FILE",
                   help="write every measured message's (sent, delivered) and every export's (start, end) times, on"
                        " the machine's monotonic clock, per phase as JSON to FILE (bench/trace_exports.py reads it)")
    p.add_argument("--_seed", nargs=2, type=int, dest="seed", help=argparse.SUPPRESS)
    p.add_argument("--_reuse", action="store_true", dest="reuse_child", help=argparse.SUPPRESS)
    p.add_argument("--export-formats", type=lambda v: v.split(","), default=["pdf", "xlsx"],
                   help="formats the export loop asks for in turn (default pdf,xlsx); none: it exports nothing, so"
                        " both phases run alone and the move shows how much the figures differ by themselves (A/A); ping: a small"
                        " API call every 0.4 s instead, the exports' pace without a render")
    p.add_argument("--_export-loop", dest="export_loop_base", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reports_process and args.exports_elsewhere:
        p.error("--reports-process and --exports-elsewhere each send the exports to a server of their own: pick one")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.seed:
        seed_main(args.seed[0], args.seed[1], seed=12)
        return 0
    if args.reuse_child:
        reuse_main()
        return 0
    if args.export_loop_base:
        export_loop_main(args.export_loop_base, args.export_formats)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="gasdesk-bench-reports-"))
    try:
        result = asyncio.run(run(args, workdir))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(json.dumps({k: v for k, v in result.items() if k not in ("reports", "exports")}, ensure_ascii=False, indent=2))
        for fmt in ("pdf", "xlsx"):
            runs = [e["s"] for e in result.get("exports", []) if e["format"] == fmt]
            if runs:
                print(f"{fmt} exports: {len(runs)}, mean {sum(runs) / len(runs):.2f} s, max {max(runs):.2f} s")
        print(f"report routes timed: {len(result.get('reports', []))}; worst p95 {result.get('reports_worst_p95_ms')} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
