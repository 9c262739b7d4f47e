"""Group commit for chat text once people handle the conversation.

Residents' text messages to queued or assigned conversations need no bot turn: they are stored, numbered
and pushed. Stored one transaction each, every message pays for its own commit and a handful of database
round trips; here, messages arriving together are written in one transaction (one SELECT of the
conversations, a multi-row INSERT and one UPDATE batch), then each is published and acknowledged. Same
guarantees as ``do_post_message``: persisted before the ack, gap-free seq per conversation, idempotent by
``client_msg_id`` (a resend is refused by the unique index and the batch rewritten with a lookup). On SQLite
the statements run on the driver connection directly (see ``_SqliteBatch``). Anything else (bot turns,
files, errors) goes the usual way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gasdesk.bot.nlu.safety import is_gas_leak
from gasdesk.clock import utcnow
from gasdesk.conversations.models import ContentType, Conversation, ConversationState, Message, SenderType
from gasdesk.conversations.service import check_client_msg_id, check_text
from gasdesk.conversations.wire import message_wire
from gasdesk.db import get_engine, refuse_unstorable_text, table_of
from gasdesk.errors import Conflict, NotFound
from gasdesk.event_types import ConversationMessage
from gasdesk.events import Event, bus

log = logging.getLogger(__name__)
# Large enough that a busy server writes its backlog in few transactions: each costs a few database round
# trips whose completions wait behind socket work in the event loop.
MAX_BATCH = 1000
HANDLED_BY_PEOPLE = (ConversationState.queued.value, ConversationState.assigned.value)


class UseRegularPath(Exception):
    """The message needs the full pipeline (a bot turn): the caller stores it the usual way."""


@dataclass(frozen=True)
class Stored:
    id: int
    seq: int
    duplicate: bool


@dataclass
class _Pending:
    conversation_id: int
    visitor_id: str
    text: str
    client_msg_id: str | None
    done: asyncio.Future[Stored] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitter:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[list[Event]] | None = None
        self._publishing: asyncio.Task[None] | None = None

    async def submit(self, conversation_id: int, visitor_id: str, text: str | None,
                     client_msg_id: str | None) -> Stored:
        """Store one resident text message; raises UseRegularPath while the bot holds the conversation."""
        item = _Pending(conversation_id, visitor_id, check_text(text), check_client_msg_id(client_msg_id))
        if is_gas_leak(item.text):
            raise UseRegularPath()  # a leak report makes the conversation an emergency: the regular path does it
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            # One writer task per event loop (a server has one; test runs create several).
            self._loop, self._queue, self._publishing = loop, asyncio.Queue(), None
            self._task = loop.create_task(self._run(self._queue), name="gasdesk-group-commit")
        assert self._queue is not None
        await self._queue.put(item)
        return await item.done

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < MAX_BATCH:
                batch.append(queue.get_nowait())
            try:
                await self._write(batch)
            except Exception as exc:  # the whole batch failed: let each message take the regular path
                log.warning("group commit of %d messages failed (%s); falling back", len(batch), exc)
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(UseRegularPath())

    async def _write(self, batch: list[_Pending]) -> None:
        # Resent messages (same client_msg_id, after a reconnect) are rare: the batch is first written without
        # looking for them; the unique (conversation_id, client_msg_id) index refuses a resend, and the batch is
        # then written again with the lookup.
        try:
            outcomes, events = await self._store(batch, look_for_resends=False)
        except (IntegrityError, sqlite3.IntegrityError):
            outcomes, events = await self._store(batch, look_for_resends=True)
        for item in batch:
            outcome = outcomes[id(item)]
            if isinstance(outcome, Exception):
                item.done.set_exception(outcome)
            else:
                item.done.set_result(outcome)
        self._publish(events)

    @staticmethod
    async def _store(batch: list[_Pending], *, look_for_resends: bool,
                     ) -> tuple[dict[int, Stored | Exception], list[Event]]:
        """Write one batch in one transaction. Returns each item's outcome and the events to announce;
        nothing is resolved before the commit."""
        engine = get_engine()
        if engine.dialect.name == "sqlite":
            async with engine.connect() as conn, _SqliteBatch.open(conn) as db:
                return await _decide_and_write(db, batch, look_for_resends)
        async with engine.begin() as conn:
            return await _decide_and_write(_CoreBatch(conn), batch, look_for_resends)

    def _publish(self, events: list[Event]) -> None:
        """Announce committed messages from a separate task, in order: the writer never waits for
        delivery (Redis, sockets), so the next batch commits while this one fans out."""
        if not events:
            return
        if self._publishing is None or self._publishing.done():
            self._outbox = asyncio.Queue()
            self._publishing = asyncio.get_running_loop().create_task(self._publish_loop(self._outbox),
                                                                      name="gasdesk-group-commit-publish")
        assert self._outbox is not None
        self._outbox.put_nowait(events)

    @staticmethod
    async def _publish_loop(outbox: asyncio.Queue[list[Event]]) -> None:
        while True:
            for event in await outbox.get():
                await bus.publish(event)


Row = tuple[int, str, str, int | None, int, str | None]  # id, visitor_id, state, agent_id, last_seq, handoff_reason


class _BatchDb(Protocol):
    async def conversations(self, ids: list[int]) -> dict[int, Row]: ...
    async def resends(self, pairs: list[tuple[int, str]]) -> dict[tuple[int, str], Stored]: ...
    async def insert(self, rows: list[dict[str, Any]]) -> dict[tuple[int, int], int]: ...
    async def set_last_seq(self, changed: dict[int, int]) -> None: ...


async def _decide_and_write(db: _BatchDb, batch: list[_Pending], look_for_resends: bool,
                            ) -> tuple[dict[int, Stored | Exception], list[Event]]:
    now = utcnow()
    outcomes: dict[int, Stored | Exception] = {}
    inserts: list[tuple[_Pending, dict[str, Any]]] = []
    in_batch: dict[tuple[int, str], _Pending] = {}
    rows = await db.conversations(sorted({i.conversation_id for i in batch}))
    pairs = [(i.conversation_id, i.client_msg_id) for i in batch if i.client_msg_id]
    seen = await db.resends(pairs) if look_for_resends and pairs else {}
    last_seq = {cid: row[4] for cid, row in rows.items()}
    for item in batch:
        row = rows.get(item.conversation_id)
        key = (item.conversation_id, item.client_msg_id) if item.client_msg_id else None
        if row is None or row[1] != item.visitor_id:
            outcomes[id(item)] = NotFound("会话不存在", code="conversation_not_found")
        elif row[2] == ConversationState.closed.value:
            outcomes[id(item)] = Conflict("会话已结束，不能再发送消息", code="conversation_closed")
        elif row[2] not in HANDLED_BY_PEOPLE or row[5] == "emergency":
            # An emergency's messages go the regular way: the bot still takes the leak's address.
            outcomes[id(item)] = UseRegularPath()
        elif key is not None and key in seen:
            outcomes[id(item)] = seen[key]
        elif key is not None and key in in_batch:
            continue  # a resend inside the same batch: answered with the original below
        else:
            last_seq[item.conversation_id] += 1
            if key is not None:
                in_batch[key] = item
            inserts.append((item, {
                "conversation_id": item.conversation_id, "seq": last_seq[item.conversation_id],
                "sender_type": SenderType.resident.value, "sender_user_id": None, "sender_name": None,
                "content_type": ContentType.text.value, "text": item.text, "payload": None,
                "client_msg_id": item.client_msg_id, "channel_meta": None, "created_at": now,
            }))
    events: list[Event] = []
    if inserts:
        id_of = await db.insert([values for _, values in inserts])
        await db.set_last_seq({cid: seq for cid, seq in last_seq.items() if seq != rows[cid][4]})
        for item, values in inserts:
            cid, seq = values["conversation_id"], values["seq"]
            message_id = id_of[(cid, seq)]
            wire = message_wire(id=message_id, conversation_id=cid, seq=seq, sender=values["sender_type"],
                                sender_name=None, content_type=values["content_type"], text=item.text, payload=None,
                                client_msg_id=item.client_msg_id, created_at=now)
            events.append(Event.of(ConversationMessage(conversation_id=cid, agent_id=rows[cid][3], message=wire)))
            outcomes[id(item)] = Stored(message_id, seq, False)
    for item in batch:  # resends that arrived together with their original
        if id(item) not in outcomes:
            original = outcomes[id(in_batch[(item.conversation_id, item.client_msg_id or "")])]
            assert isinstance(original, Stored)
            outcomes[id(item)] = Stored(original.id, original.seq, True)
    return outcomes, events


_conversations = table_of(Conversation)
_messages = table_of(Message)
# Built once: the statements are the same for every batch (only the bound values change).
_SELECT_CONVERSATIONS = (
    select(_conversations.c.id, _conversations.c.visitor_id, _conversations.c.state, _conversations.c.agent_id,
           _conversations.c.last_seq, _conversations.c.handoff_reason)
    .where(_conversations.c.id.in_(bindparam("ids", expanding=True))).order_by(_conversations.c.id))
# PostgreSQL: the same row lock do_post_message takes for the seq.
_SELECT_CONVERSATIONS_FOR_UPDATE = _SELECT_CONVERSATIONS.with_for_update()
_SELECT_RESENDS = (
    select(_messages.c.conversation_id, _messages.c.client_msg_id, _messages.c.id, _messages.c.seq)
    .where(tuple_(_messages.c.conversation_id, _messages.c.client_msg_id).in_(bindparam("pairs", expanding=True))))
_INSERT_MESSAGES = _messages.insert().returning(_messages.c.id, _messages.c.conversation_id, _messages.c.seq)
_UPDATE_LAST_SEQ = (update(_conversations).where(_conversations.c.id == bindparam("cid"))
                    .values(last_seq=bindparam("seq")))



class _CoreBatch:
    """PostgreSQL (any backend): SQLAlchemy Core statements, built once."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def conversations(self, ids: list[int]) -> dict[int, Row]:
        query = _SELECT_CONVERSATIONS_FOR_UPDATE if self.conn.dialect.name == "postgresql" else _SELECT_CONVERSATIONS
        return {r[0]: tuple(r) for r in await self.conn.execute(query, {"ids": ids})}

    async def resends(self, pairs: list[tuple[int, str]]) -> dict[tuple[int, str], Stored]:
        result = await self.conn.execute(_SELECT_RESENDS, {"pairs": pairs})
        return {(cid, cmid): Stored(mid, seq, True) for cid, cmid, mid, seq in result}

    async def insert(self, rows: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
        return {(cid, seq): mid for mid, cid, seq in await self.conn.execute(_INSERT_MESSAGES, rows)}

    async def set_last_seq(self, changed: dict[int, int]) -> None:
        await self.conn.execute(_UPDATE_LAST_SEQ, [{"cid": cid, "seq": seq} for cid, seq in changed.items()])


class _SqliteBatch:
    """SQLite: plain SQL on the driver connection, one thread round trip per statement. Through SQLAlchemy (then
    on its own aiosqlite adapter, four round trips a statement: cursor, execute, fetch, close — the app's engine
    now takes one, ``gasdesk/sqlite_driver.py``) a one-message batch cost ~5 ms of CPU, most of the work at
    everyday rates. Column values go through the columns' own bind processors (encryption, UTC timestamps), so
    rows are stored exactly as the ORM stores them."""

    COLUMNS = ("conversation_id", "seq", "sender_type", "sender_user_id", "sender_name", "content_type", "text",
               "payload", "client_msg_id", "channel_meta", "created_at")

    _processors: list[tuple[str, Any]] | None = None

    def __init__(self, driver: Any, dialect: Any) -> None:
        self.driver = driver  # aiosqlite.Connection
        if _SqliteBatch._processors is None:
            _SqliteBatch._processors = [(name, _messages.c[name].type.dialect_impl(dialect).bind_processor(dialect))
                                        for name in self.COLUMNS]
        self.processors = _SqliteBatch._processors

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, conn: AsyncConnection) -> AsyncIterator[_SqliteBatch]:
        raw = await conn.get_raw_connection()
        batch = cls(raw.driver_connection, conn.dialect)
        await batch.driver.execute("BEGIN IMMEDIATE")
        try:
            yield batch
        except BaseException:
            await batch.driver.rollback()
            raise
        await batch.driver.commit()

    async def conversations(self, ids: list[int]) -> dict[int, Row]:
        sql = ("SELECT id, visitor_id, state, agent_id, last_seq, handoff_reason FROM conversations WHERE id IN "
               f"({','.join('?' * len(ids))})")
        return {r[0]: tuple(r) for r in await self.driver.execute_fetchall(sql, ids)}

    async def resends(self, pairs: list[tuple[int, str]]) -> dict[tuple[int, str], Stored]:
        sql = ("SELECT conversation_id, client_msg_id, id, seq FROM messages WHERE (conversation_id, client_msg_id)"
               f" IN (VALUES {','.join(['(?,?)'] * len(pairs))})")
        flat = [value for pair in pairs for value in pair]
        return {(cid, cmid): Stored(mid, seq, True)
                for cid, cmid, mid, seq in await self.driver.execute_fetchall(sql, flat)}

    ROWS_PER_INSERT = 500  # 11 values a row: well under SQLite's 32,766 bound variables per statement

    async def insert(self, rows: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
        found: dict[tuple[int, int], int] = {}
        for start in range(0, len(rows), self.ROWS_PER_INSERT):
            found.update(await self._insert(rows[start:start + self.ROWS_PER_INSERT]))
        return found

    async def _insert(self, rows: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
        params: list[Any] = []
        for row in rows:
            refuse_unstorable_text(row)  # what the cursor hook checks on every other statement
            for name, process in self.processors:
                value = row[name]
                params.append(process(value) if process is not None and value is not None else value)
        one = f"({','.join('?' * len(self.COLUMNS))})"
        sql = (f"INSERT INTO messages ({', '.join(self.COLUMNS)}) VALUES {','.join([one] * len(rows))}"
               " RETURNING id, conversation_id, seq")
        return {(cid, seq): mid for mid, cid, seq in await self.driver.execute_fetchall(sql, params)}

    async def set_last_seq(self, changed: dict[int, int]) -> None:
        await self.driver.executemany("UPDATE conversations SET last_seq = ? WHERE id = ?",
                                      [(seq, cid) for cid, seq in changed.items()])


committer = GroupCommitter()

