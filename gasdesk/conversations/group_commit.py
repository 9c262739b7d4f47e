"""Group commit for chat text once people handle the conversation.

Residents' text messages to queued or assigned conversations need no bot turn: they are stored, numbered
and pushed. Stored one transaction each, every message pays for its own commit and a handful of database
round trips; here, messages arriving together are written in one transaction (one SELECT of the
conversations, one of possible resends, one multi-row INSERT, one UPDATE batch), then each is published
and acknowledged. Same guarantees as ``do_post_message``: persisted before the ack, gap-free seq per
conversation, idempotent by ``client_msg_id``. Anything else (bot turns, files, errors) goes the usual way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, tuple_, update

from gasdesk.clock import utcnow
from gasdesk.conversations.models import ContentType, Conversation, ConversationState, Message, SenderType
from gasdesk.conversations.service import check_client_msg_id, check_text
from gasdesk.db import sessionmaker
from gasdesk.errors import Conflict, NotFound
from gasdesk.events import Event, bus

log = logging.getLogger(__name__)
MAX_BATCH = 200
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
        now = utcnow()
        events: list[Event] = []
        async with sessionmaker()() as session:
            ids = sorted({i.conversation_id for i in batch})
            query = select(Conversation.id, Conversation.visitor_id, Conversation.state, Conversation.agent_id,
                           Conversation.last_seq, Conversation.handoff_reason).where(Conversation.id.in_(ids)).order_by(Conversation.id)
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update()  # the same row lock do_post_message takes for the seq
            rows = {r.id: r for r in await session.execute(query)}
            pairs = [(i.conversation_id, i.client_msg_id) for i in batch if i.client_msg_id]
            seen: dict[tuple[int, str], Stored] = {}
            if pairs:
                for cid, cmid, mid, seq in await session.execute(
                        select(Message.conversation_id, Message.client_msg_id, Message.id, Message.seq)
                        .where(tuple_(Message.conversation_id, Message.client_msg_id).in_(pairs))):
                    seen[(cid, cmid)] = Stored(mid, seq, True)
            last_seq = {cid: row.last_seq for cid, row in rows.items()}
            inserts: list[tuple[_Pending, dict]] = []
            in_batch: dict[tuple[int, str], _Pending] = {}
            for item in batch:
                row = rows.get(item.conversation_id)
                if row is None or row.visitor_id != item.visitor_id:
                    item.done.set_exception(NotFound("会话不存在", code="conversation_not_found"))
                elif row.state == ConversationState.closed.value:
                    item.done.set_exception(Conflict("会话已结束，不能再发送消息", code="conversation_closed"))
                elif row.state not in HANDLED_BY_PEOPLE or row.handoff_reason == "emergency":
                    # An emergency's messages go the regular way: the bot still takes the leak's address.
                    item.done.set_exception(UseRegularPath())
                elif item.client_msg_id and (item.conversation_id, item.client_msg_id) in seen:
                    item.done.set_result(seen[(item.conversation_id, item.client_msg_id)])
                elif item.client_msg_id and (item.conversation_id, item.client_msg_id) in in_batch:
                    continue  # a resend inside the same batch: answered with the original below
                else:
                    last_seq[item.conversation_id] += 1
                    if item.client_msg_id:
                        in_batch[(item.conversation_id, item.client_msg_id)] = item
                    inserts.append((item, {
                        "conversation_id": item.conversation_id, "seq": last_seq[item.conversation_id],
                        "sender_type": SenderType.resident.value, "sender_user_id": None, "sender_name": None,
                        "content_type": ContentType.text.value, "text": item.text, "payload": None,
                        "client_msg_id": item.client_msg_id, "channel_meta": None, "created_at": now,
                    }))
            if inserts:
                table = Message.__table__
                result = await session.execute(
                    table.insert().returning(table.c.id, table.c.conversation_id, table.c.seq),
                    [values for _, values in inserts])
                id_of = {(cid, seq): mid for mid, cid, seq in result}
                changed = {cid: seq for cid, seq in last_seq.items() if seq != rows[cid].last_seq}
                await session.execute(
                    update(Conversation.__table__).where(Conversation.__table__.c.id == bindparam("cid"))
                    .values(last_seq=bindparam("seq")),
                    [{"cid": cid, "seq": seq} for cid, seq in changed.items()])
            await session.commit()
        for item, values in inserts:
            message_id = id_of[(values["conversation_id"], values["seq"])]
            wire = {"id": message_id, "conversation_id": values["conversation_id"], "seq": values["seq"],
                    "sender": "resident", "sender_name": None, "type": "text", "text": item.text, "payload": None,
                    "client_msg_id": item.client_msg_id, "created_at": now.isoformat()}
            events.append(Event("conversation.message", {"conversation_id": values["conversation_id"],
                                                         "agent_id": rows[values["conversation_id"]].agent_id,
                                                         "message": wire}))
            item.done.set_result(Stored(message_id, values["seq"], False))
        for item in batch:  # resends that arrived together with their original
            if not item.done.done() and item.client_msg_id:
                original = in_batch[(item.conversation_id, item.client_msg_id)]
                stored = original.done.result()
                item.done.set_result(Stored(stored.id, stored.seq, True))
        self._publish(events)

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


committer = GroupCommitter()

