"""Group commit of residents' text once people handle the conversation: stored before the ack, gap-free
seq, idempotent by client_msg_id, published after commit; bot conversations take the regular path."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from gasdesk.conversations.group_commit import UseRegularPath, committer
from gasdesk.conversations.models import Message
from gasdesk.conversations.service import do_close, post_system
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.security.crypto import decrypt_text
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


async def test_a_resend_batched_with_new_messages_stores_each_new_one_once(session) -> None:
    # The batch is first written without looking for resends; the unique index refuses the resend and the
    # whole batch is written again with the lookup: nothing may be stored twice or lost.
    a = await queued_conversation(session, priority=10, visitor_id="v_gc_m1")
    b = await queued_conversation(session, priority=10, visitor_id="v_gc_m2")
    a_id, b_id = a.id, b.id
    original = await committer.submit(a_id, "v_gc_m1", "我家没气了", "m-1")
    start_b = (await reload_conversation(b_id)).last_seq
    results = await asyncio.gather(committer.submit(a_id, "v_gc_m1", "我家没气了", "m-1"),
                                   *(committer.submit(b_id, "v_gc_m2", f"第{i}句", f"n-{i}") for i in range(5)))
    assert results[0].duplicate and results[0].id == original.id
    assert not any(r.duplicate for r in results[1:])
    rows = [m for m in await _messages(session, b_id) if m.seq > start_b]
    assert [m.text for m in rows] == [f"第{i}句" for i in range(5)]
    assert [m.seq for m in rows] == list(range(start_b + 1, start_b + 6))
    assert [m.client_msg_id for m in await _messages(session, a_id)].count("m-1") == 1


async def test_batched_messages_read_back_like_any_other(session) -> None:
    c = await queued_conversation(session, priority=10, visitor_id="v_gc_w")
    cid = c.id
    await post_system(session, c, "正在为您转接人工客服")  # a row the ORM writes, to compare with
    await commit(session)
    stored = await committer.submit(cid, "v_gc_w", "燃气表显示余额不足", "w-1")
    message = next(m for m in await _messages(session, cid) if m.id == stored.id)
    assert message.text == "燃气表显示余额不足"  # decrypted by the column type: stored encrypted
    assert message.sender_type == "resident" and message.content_type == "text" and message.payload is None
    assert message.created_at.tzinfo is not None
    raw = await session.scalar(text("SELECT text FROM messages WHERE id = :id"), {"id": stored.id})
    assert "燃气" not in raw and decrypt_text(raw) == "燃气表显示余额不足"
    created = await session.scalar(text("SELECT created_at FROM messages WHERE id = :id"), {"id": stored.id})
    regular = await session.scalar(text("SELECT created_at FROM messages WHERE conversation_id = :c AND id <> :id"
                                        " LIMIT 1"), {"c": cid, "id": stored.id})
    assert regular is not None and type(created) is type(regular)
    if isinstance(created, str):  # SQLite keeps timestamps as text: the same format as the ORM's
        assert len(created) == len(regular) and "+" not in created  # the same storage format as rows the ORM wrote


async def test_a_batch_larger_than_one_insert_statement(session) -> None:
    # 600 messages queued together form one batch; SQLite writes it in more than one INSERT.
    conversations = [await queued_conversation(session, priority=10, visitor_id=f"v_gc_big{i}") for i in range(3)]
    ids = [c.id for c in conversations]
    starts = [(await reload_conversation(cid)).last_seq for cid in ids]
    stored = await asyncio.gather(*(committer.submit(ids[i % 3], f"v_gc_big{i % 3}", f"消息{i}", f"big-{i}")
                                    for i in range(600)))
    assert len({s.id for s in stored}) == 600 and not any(s.duplicate for s in stored)
    for k, cid in enumerate(ids):
        rows = [m for m in await _messages(session, cid) if m.seq > starts[k]]
        assert [m.seq for m in rows] == list(range(starts[k] + 1, starts[k] + 201))
        assert sorted(m.text for m in rows) == sorted(f"消息{i}" for i in range(600) if i % 3 == k)
