"""Factories for tests: real rows through the real ``do_*`` functions, committed."""

from __future__ import annotations

import asyncio
import csv
import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.models import User
from gasdesk.auth.service import do_create_user, do_issue_api_token
from gasdesk.customers.models import Customer
from gasdesk.customers.schemas import AccountIn, AddressIn, CustomerIn
from gasdesk.customers.service import access_customer, do_create_customer, do_open_account
from gasdesk.db import Base, commit, get_engine

TEST_PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


class Factory:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.actor = Actor.system("test-factory", "test")

    async def user(self, role: str = "agent", username: str | None = None, password: str = TEST_PASSWORD) -> User:
        user = await do_create_user(
            self.session, self.actor, username=username or f"{role.replace('_', '')}{next(_seq)}",
            password=password, role=role,
        )
        await commit(self.session)
        return user

    async def token(self, user: User) -> str:
        token, _ = await do_issue_api_token(self.session, user)
        await commit(self.session)
        return token

    async def headers(self, role: str = "agent") -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(await self.user(role))}"}

    async def customer(
        self,
        name: str = "张伟",
        phones: list[str] | None = None,
        id_card: str | None = None,
        address: dict[str, str] | None = None,
        account_no: str | None = None,
        **account: Any,
    ) -> Customer:
        n = next(_seq)
        customer = await do_create_customer(
            self.session, self.actor,
            CustomerIn(
                name=name, phones=phones or [f"139{n:08d}"], id_card=id_card,
                address=AddressIn(**address) if address else AddressIn(
                    district="朝阳区", community="幸福里小区", building=str(n % 30 + 1), unit="2", room=str(500 + n % 99)),
            ),
        )
        await self.session.flush()
        await do_open_account(
            self.session, self.actor, customer,
            AccountIn(account_no=account_no or f"21{n:08d}", address_id=customer.addresses[0].id, **account),
        )
        await commit(self.session)
        return await access_customer(self.session, customer.id)


async def login(client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD) -> httpx.Response:
    """Log in through the form, then send the page's CSRF token with every later request, as the pages'
    forms, htmx and fetch() calls do."""
    response = await client.post("/login", data={"username": username, "password": password, "next": "/"})
    if response.status_code == 303:
        client.headers["X-CSRF-Token"] = await page_csrf_token(client)
    return response


async def page_csrf_token(client: httpx.AsyncClient) -> str:
    """The CSRF token a logged-in staff page carries in its ``<meta name="csrf-token">``."""
    page = await client.get("/", headers={"Accept": "text/html"})
    match = re.search(r'<meta name="csrf-token" content="([^"]*)">', page.text)
    assert match and match.group(1), "a logged-in page carries a CSRF token"
    return match.group(1)


# ---------------------------------------------------------------- helpers for files, IDs and extra clients

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_card_with_checksum(body17: str) -> str:
    """Complete an 18-digit mainland ID number with its GB 11643 (ISO 7064 MOD 11-2) check character."""
    assert len(body17) == 17 and body17.isdigit()
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, _ID_WEIGHTS, strict=True)) % 11]


def make_id_card(n: int | None = None, birth: str = "19800101") -> str:
    return id_card_with_checksum(f"210102{birth}{(n if n is not None else next(_seq)) % 1000:03d}")


def bad_checksum(id_card: str) -> str:
    """The same ID number with a wrong check character."""
    wrong = "0" if id_card[-1] != "0" else "1"
    return id_card[:-1] + wrong


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


@asynccontextmanager
async def extra_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser/API client with its own cookie jar."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def table_counts(session: AsyncSession, *tables: str) -> dict[str, int]:
    return {t: int(await session.scalar(text(f"SELECT COUNT(*) FROM {t}"))) for t in tables}


# ---------------------------------------------------------------- conversations, ACD and live chat sockets


_HASH_CACHE: dict[str, str] = {}


async def staff_user(session: AsyncSession, role: str = "agent", *, username: str | None = None,
                     display_name: str | None = None) -> User:
    """A staff user inserted directly with a cached password hash (argon2 per user is slow; many ACD tests need
    several agents). Logs in with ``TEST_PASSWORD``. Committed."""
    from gasdesk.security.passwords import hash_password

    if TEST_PASSWORD not in _HASH_CACHE:
        _HASH_CACHE[TEST_PASSWORD] = hash_password(TEST_PASSWORD)
    n = next(_seq)
    user = User(username=username or f"{role.replace('_', '')}{n}", display_name=display_name or f"坐席{n}号",
                role=role, password_hash=_HASH_CACHE[TEST_PASSWORD], is_active=True, session_epoch=0)
    session.add(user)
    await commit(session)
    return user


async def desk_agent(
    factory: Factory, *, groups: tuple[int, ...] = (1,), presence: str = "online", max_concurrent: int = 5,
    role: str = "agent", username: str | None = None,
) -> User:
    """A staff user with skill groups, capacity and presence set through the real ACD functions (committed)."""
    from gasdesk.routing import service as acd

    user = await staff_user(factory.session, role, username=username)
    await acd.do_set_skills(factory.session, user, list(groups), max_concurrent)
    await commit(factory.session)
    if presence != "offline":
        await acd.do_set_presence(factory.session, user, presence)
        await commit(factory.session)
    return user


async def bot_conversation(session: AsyncSession, *, visitor_id: str | None = None, customer_id: int | None = None,
                           channel: str = "webchat") -> Any:
    """A conversation in the bot state (no greeting), committed."""
    from gasdesk.conversations.service import do_start_conversation

    conversation = await do_start_conversation(session, channel=channel, visitor_id=visitor_id or f"v_t{next(_seq)}",
                                               customer_id=customer_id)
    await commit(session)
    return conversation


async def queued_conversation(session: AsyncSession, *, group_id: int = 1, priority: int = 0,
                              visitor_id: str | None = None, customer_id: int | None = None,
                              channel: str = "webchat") -> Any:
    """A conversation handed to a skill group through ``do_handoff`` (it may be assigned at once), committed.
    ``channel="voice"``: a call's conversation (it takes an agent's voice slot)."""
    from gasdesk.conversations.service import do_handoff
    from gasdesk.routing.models import SkillGroup

    conversation = await bot_conversation(session, visitor_id=visitor_id, customer_id=customer_id, channel=channel)
    group = await session.get(SkillGroup, group_id)
    outcome = await do_handoff(session, conversation, group=group, reason="request", priority=priority)
    await commit(session)
    assert outcome.queued, outcome
    return conversation


async def reload_conversation(conversation_id: int) -> Any:
    """The conversation as stored now, read in a session of its own."""
    from gasdesk import db
    from gasdesk.conversations.models import Conversation

    async with db.sessionmaker()() as s:
        return await s.get(Conversation, conversation_id)


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """The app on a real uvicorn server inside this test's event loop (real sockets, same database engine and
    event bus as the test). Yields ``host:port``."""
    import asyncio
    import socket

    import uvicorn

    from gasdesk.realtime.hub import get_hub

    get_hub()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class ChatSocket:
    """A thin JSON client over a ``websockets`` connection that remembers every frame it received."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    @asynccontextmanager
    async def connect(cls, host: str, path: str = "/ws/webchat", **kwargs: Any) -> AsyncIterator[ChatSocket]:
        from websockets.asyncio.client import connect

        async with connect(f"ws://{host}{path}", open_timeout=5, close_timeout=1, **kwargs) as ws:
            yield cls(ws)

    async def send(self, **frame: Any) -> None:
        import json

        await self.ws.send(json.dumps(frame, ensure_ascii=False))

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        import asyncio
        import json

        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def until(self, match: Any, timeout: float = 5) -> dict[str, Any]:
        """Read frames until one matches (a frame type, or a predicate); return it."""
        import asyncio

        test = (lambda f: f.get("type") == match) if isinstance(match, str) else match
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no frame matching {match!r}; got {[f.get('type') for f in self.frames]}")
            frame = await self.recv(left)
            if test(frame):
                return frame

    async def quiet(self, wait: float = 0.3) -> list[dict[str, Any]]:
        """Frames arriving within ``wait`` seconds (used to show nothing else came)."""
        import asyncio

        got = []
        try:
            while True:
                got.append(await self.recv(wait))
        except TimeoutError:
            return got
        except asyncio.TimeoutError:  # noqa: UP041 - older event loops
            return got


async def new_visitor(host: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://{host}") as c:
        response = await c.post("/api/v1/webchat/visitors")
        response.raise_for_status()
        return response.json()


# ---------------------------------------------------------------- work orders (tickets, appointments, follow-ups)
# Helpers for tests/tickets, tests/appointments, tests/followups, tests/webhooks and tests/jobs.


def wo_actor(user: User | None = None, source: str = "test") -> Actor:
    """The actor for a work-order change: a user, or the system."""
    return Actor.of(user, source) if user is not None else Actor.system("test-wo", source)


async def wo_headers(factory: Factory, user: User) -> dict[str, str]:
    """Bearer headers for an existing user (cheap: no extra argon2 hash)."""
    return {"Authorization": f"Bearer {await factory.token(user)}"}


async def wo_ticket(session: AsyncSession, type: str = "repair", *, actor: Actor | None = None,
                    status: str = "new", crew_id: int | None = None, handler_id: int | None = None,
                    **fields: Any) -> Any:
    """A ticket created through ``do_create_ticket`` (committed), optionally walked to ``status`` through the
    real state machine. Walking to assigned/in_progress/resolved/closed needs ``crew_id`` or ``handler_id``."""
    from gasdesk.tickets.schemas import TicketCreate
    from gasdesk.tickets.service import do_create_ticket, do_ticket_action

    actor = actor or wo_actor()
    fields.setdefault("description", "测试工单")
    ticket = await do_create_ticket(session, actor, TicketCreate(type=type, **fields))
    await commit(session)
    paths = {"new": [], "assigned": ["assign"], "in_progress": ["assign", "start"],
             "resolved": ["assign", "start", "resolve"], "closed": ["assign", "start", "resolve", "close"],
             "reopened": ["assign", "start", "resolve", "reopen"], "cancelled": ["cancel"]}
    for action in paths[status]:
        await do_ticket_action(session, actor, ticket, action, note="测试" if action in ("reopen", "cancel") else "",
                               crew_id=crew_id if action == "assign" else None,
                               handler_id=handler_id if action == "assign" else None)
        await commit(session)
    return ticket


async def wo_audit_rows(session: AsyncSession, entity_type: str, entity_id: Any, action: str | None = None) -> list:
    from sqlalchemy import select

    from gasdesk.audit.models import AuditEntry

    query = select(AuditEntry).where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == str(entity_id))
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list(await session.scalars(query.order_by(AuditEntry.id)))


async def wo_ticket_events(ticket_id: int) -> list:
    """TicketEvent rows as stored, read in a fresh session."""
    from sqlalchemy import select

    from gasdesk import db
    from gasdesk.tickets.models import TicketEvent

    async with db.sessionmaker()() as s:
        return list(await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                                    .order_by(TicketEvent.id)))


async def wo_reload(model: Any, key: Any) -> Any:
    """A row as stored now, read in a session of its own."""
    from gasdesk import db

    async with db.sessionmaker()() as s:
        return await s.get(model, key)


# a 1×1 transparent PNG
WO_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4"
    "890000000b49444154789c6360000200000500017a5eab3f0000000049454e44"
    "ae426082")
# ---------------------------------------------------------------- end work orders


async def raw_table_dump() -> str:
    """Every value of every table, read with plain SQL (no ORM type decoding): what someone holding the
    database file (or a backup) can read. Tests grep it for seeded personal data."""
    chunks = []
    async with get_engine().connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in await conn.execute(text(f"SELECT * FROM {table.name}")):
                chunks.extend(str(v) for v in row)
    return "\n".join(chunks)


# ---------------------------------------------------------------- bot corrections (tests/bot/test_corrections.py)


async def resident_said(session: AsyncSession, conversation: Any, text: str, *, bot_intent: str | None = None,
                        confidence: float = 0.42, committed: bool = True) -> Any:
    """A resident's text message, with the bot's reading of it as the pipeline keeps it (``channel_meta``'s
    ``bot_turn``) when ``bot_intent`` is given. Committed unless ``committed`` is False (many in one go)."""
    from gasdesk.conversations.models import SenderType
    from gasdesk.conversations.service import do_post_message

    meta = {"bot_turn": {"intent": bot_intent, "confidence": confidence, "outcome": "answered",
                         "understood": True}} if bot_intent else None
    posted = await do_post_message(session, conversation, SenderType.resident, text=text, channel_meta=meta)
    if committed:
        await commit(session)
    return posted.message


async def agent_with_conversation(factory: Factory, *, role: str = "agent") -> tuple[User, Any]:
    """An online agent (or supervisor) who has accepted a queued web chat. Committed."""
    from gasdesk.conversations.service import do_accept

    agent = await desk_agent(factory, role=role)
    conversation = await queued_conversation(factory.session)
    await factory.session.refresh(conversation)
    await do_accept(factory.session, agent, conversation)
    await commit(factory.session)
    return agent, conversation


async def invoke_cli(*args: str) -> Any:
    """Run the CLI as a user would: in its own event loop (a thread). On PostgreSQL the test's pooled connections
    belong to the test's loop (asyncpg refuses a foreign loop), so they are closed first and the CLI opens its own.
    On SQLite they are left alone: disposing the engine there while the CLI thread builds its own raced into a
    hang (an aiosqlite connection serves any loop, so sharing the pool is safe)."""
    from typer.testing import CliRunner  # noqa: PLC0415 - only CLI tests need it

    from gasdesk import db  # noqa: PLC0415 - keeps this module's imports light
    from gasdesk.cli import app  # noqa: PLC0415 - importing the CLI pulls every command's dependencies
    from gasdesk.config import get_settings  # noqa: PLC0415 - as above

    if get_settings().database_url.startswith("postgresql"):
        await db.dispose_engine()
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))
