"""One wire format for a message: what group commit publishes for the rows it writes without the ORM is what
``Message.to_wire()`` gives for the same rows read back (and what a replay after ``resume`` sends)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from gasdesk.conversations.group_commit import committer
from gasdesk.conversations.models import Message
from gasdesk.conversations.service import messages_after
from gasdesk.event_types import ConversationMessage, wire_schema
from tests.factories import queued_conversation


async def test_group_commit_publishes_the_stored_rows_wire(session, events) -> None:
    conversation = await queued_conversation(session, priority=10, visitor_id="v_wire")
    cid, start = conversation.id, conversation.last_seq
    events.clear()
    stored = await asyncio.gather(committer.submit(cid, "v_wire", "表不走了", "w-1"),
                                  committer.submit(cid, "v_wire", "户号 2100000001", None))
    for _ in range(100):  # group commit publishes from its own task
        if len([e for e in events if e.type == "conversation.message"]) == 2:
            break
        await asyncio.sleep(0.01)
    published = {e.payload["message"]["id"]: e.payload for e in events if e.type == "conversation.message"}
    assert set(published) == {s.id for s in stored}

    session.expire_all()
    rows = list(await session.scalars(select(Message).where(Message.conversation_id == cid, Message.seq > start)
                                      .order_by(Message.seq)))
    assert [row.id for row in rows] == sorted(published)
    for row in rows:
        payload = published[row.id]
        wire_schema(ConversationMessage).model_validate(payload)
        assert payload["message"] == row.to_wire()
        assert list(payload["message"]) == list(row.to_wire())  # same key order: the same JSON text
    replayed = await messages_after(session, cid, start)
    assert [m.to_wire() for m in replayed] == [published[row.id]["message"] for row in rows]
