"""Group commit of residents' text once people handle the conversation: stored before the ack, gap-free
seq, idempotent by client_msg_id, published after commit; bot conversations take the regular path."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from gasdesk.conversations.group_commit import UseRegularPath, committer
from gasdesk.conversations.models import Message
from gasdesk.conversations.service import do_close
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput, NotFound
from tests.factories import bot_conversation, queued_conversation, reload_conversation


async def _messages(session, conversation_id: int) -> list[Message]:
    session.expire_all()
    return list(await session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                      .order_by(Message.seq)))


async def test_concurrent_messages_are_stored_once_with_gap_free_seq(session, events) -> None:
    a = await queued_conversation(session, priority=10, visitor_id="v_gc_a")
    b = await queued_conversation(session, priority=10, visitor_id="v_gc_b")
    a_id, b_id = a.id, b.id
    start_a, start_b = (await reload_conversation(a_id)).last_seq, (await reload_conversation(b_id)).last_seq
    events.clear()
    jobs = [committer.submit(a_id, "v_gc_a", f"甲{i}", f"a-{i}") for i in range(30)]
    jobs += [committer.submit(b_id, "v_gc_b", f"乙{i}", f"b-{i}") for i in range(30)]
    stored = await asyncio.gather(*jobs)
    assert not any(s.duplicate for s in stored)
    for conversation_id, start, prefix in ((a_id, start_a, "甲"), (b_id, start_b, "乙")):
        rows = [m for m in await _messages(session, conversation_id) if m.seq > start]
        assert [m.seq for m in rows] == list(range(start + 1, start + 31))
        assert sorted(m.text for m in rows) == sorted(f"{prefix}{i}" for i in range(30))
        assert (await reload_conversation(conversation_id)).last_seq == start + 30
    pushed = [e for e in events if e.type == "conversation.message"]
    assert len(pushed) == 60 and {e.payload["message"]["sender"] for e in pushed} == {"resident"}


async def test_resends_get_the_stored_message(session) -> None:
    c = await queued_conversation(session, priority=10, visitor_id="v_gc_r")
    cid = c.id
    first, again_together = await asyncio.gather(committer.submit(cid, "v_gc_r", "表不走了", "r-1"),
                                                 committer.submit(cid, "v_gc_r", "表不走了", "r-1"))
    later = await committer.submit(cid, "v_gc_r", "表不走了", "r-1")
    assert not first.duplicate and again_together.duplicate and later.duplicate
    assert first.id == again_together.id == later.id and first.seq == later.seq
    assert [m.client_msg_id for m in await _messages(session, cid)].count("r-1") == 1


async def test_bot_conversations_closed_ones_and_strangers_are_refused(session) -> None:
    bot = await bot_conversation(session, visitor_id="v_gc_bot")
    bot_id = bot.id
    with pytest.raises(UseRegularPath):
        await committer.submit(bot_id, "v_gc_bot", "你好", "x-1")
    c = await queued_conversation(session, priority=10, visitor_id="v_gc_c")
    with pytest.raises(NotFound):
        await committer.submit(c.id, "someone-else", "偷看", "x-2")
    with pytest.raises(InvalidInput):
        await committer.submit(c.id, "v_gc_c", "   ", "x-3")
    await do_close(session, c, by="agent")
    await commit(session)
    with pytest.raises(Conflict):
        await committer.submit(c.id, "v_gc_c", "还在吗", "x-4")
    assert not [m for m in await _messages(session, bot_id) if m.client_msg_id == "x-1"]
