"""Messages: gap-free seq per conversation, idempotency by client_msg_id, validation, closed conversations,
and encryption at rest."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from gasdesk import db
from gasdesk.conversations import service
from gasdesk.conversations.models import ContentType, Message, SenderType
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput
from tests.factories import bot_conversation, desk_agent, queued_conversation


async def _seqs(session, conversation_id: int) -> list[int]:
    return list(await session.scalars(select(Message.seq).where(Message.conversation_id == conversation_id)
                                      .order_by(Message.seq)))


async def test_seq_is_gap_free_per_conversation(session, factory, events) -> None:
    agent = await desk_agent(factory)
    a = await queued_conversation(session)
    b = await bot_conversation(session)
    events.clear()
    for i in range(5):
        await service.do_post_message(session, a, SenderType.resident, text=f"居民消息{i}", client_msg_id=f"a{i}")
        await service.do_post_message(session, b, SenderType.resident, text=f"另一个{i}")
        await service.do_post_message(session, a, SenderType.agent, text=f"坐席回复{i}", user=agent)
    await commit(session)
    assert await _seqs(session, a.id) == list(range(1, 11))
    assert await _seqs(session, b.id) == list(range(1, 6))
    stored = await session.scalar(text("SELECT last_seq FROM conversations WHERE id = :id"), {"id": a.id})
    assert stored == 10
    published = [e.payload["message"]["seq"] for e in events
                 if e.type == "conversation.message" and e.payload["conversation_id"] == a.id]
    assert published == list(range(1, 11))
    # the agent's own message counts as read; the first response time is set once
    await session.refresh(a)
    assert a.agent_read_seq == 10 and a.first_response_at is not None


async def test_concurrent_writers_never_share_a_seq(session, factory) -> None:
    conversation = await bot_conversation(session)
    cid = conversation.id

    async def write(n: int) -> None:
        async with db.transaction() as s:
            c = await service.access_conversation_for_visitor(s, conversation.visitor_id, cid)
            await service.do_post_message(s, c, SenderType.bot, text=f"并发{n}")

    await asyncio.gather(*(write(n) for n in range(12)))
    assert await _seqs(session, cid) == list(range(1, 13))


async def test_client_msg_id_makes_posting_idempotent(session, events) -> None:
    conversation = await bot_conversation(session)
    events.clear()
    first = await service.do_post_message(session, conversation, SenderType.resident, text="家里没气了",
                                          client_msg_id="c-1")
    await commit(session)
    again = await service.do_post_message(session, conversation, SenderType.resident, text="家里没气了",
                                          client_msg_id="c-1")
    await commit(session)
    assert first.created is True and again.created is False
    assert again.message.id == first.message.id and again.message.seq == first.message.seq == 1
    assert await session.scalar(select(func.count()).select_from(Message)) == 1
    assert [e.type for e in events] == ["conversation.message"], "a resend publishes nothing"
    # the same client id in another conversation is a different message
    other = await bot_conversation(session)
    third = await service.do_post_message(session, other, SenderType.resident, text="你好", client_msg_id="c-1")
    assert third.created is True


async def test_resend_racing_the_original_gets_the_stored_message(session) -> None:
    conversation = await bot_conversation(session)
    cid, visitor = conversation.id, conversation.visitor_id
    original_flushed = asyncio.Event()

    async def original() -> int:
        async with db.transaction() as s:
            c = await service.access_conversation_for_visitor(s, visitor, cid)
            posted = await service.do_post_message(s, c, SenderType.resident, text="表不走了", client_msg_id="race-1")
            original_flushed.set()
            await asyncio.sleep(0.3)  # the bot turn and hand-off rules still run in this transaction
            return posted.message.id

    async def resend() -> service.Posted:
        await original_flushed.wait()
        async with db.transaction() as s:
            c = await service.access_conversation_for_visitor(s, visitor, cid)
            return await service.do_post_message(s, c, SenderType.resident, text="表不走了", client_msg_id="race-1")

    first_id, again = await asyncio.gather(original(), resend(), return_exceptions=True)
    assert isinstance(again, service.Posted), repr(again)
    assert again.created is False and again.message.id == first_id
    assert await _seqs(session, cid) == [1]


@pytest.mark.parametrize("value", ["", "   ", "\n\t"])
async def test_empty_text_is_invalid(session, value: str) -> None:
    conversation = await bot_conversation(session)
    with pytest.raises(InvalidInput, match="消息内容不能为空"):
        await service.do_post_message(session, conversation, SenderType.resident, text=value)


async def test_too_long_text_is_invalid_but_2000_chars_pass(session, factory) -> None:
    agent = await desk_agent(factory)
    conversation = await queued_conversation(session)
    with pytest.raises(InvalidInput, match="消息过长") as info:
        await service.do_post_message(session, conversation, SenderType.agent, text="气" * 2001, user=agent)
    assert info.value.code == "message_too_long"
    posted = await service.do_post_message(session, conversation, SenderType.agent, text="气" * 2000, user=agent)
    assert len(posted.message.text) == 2000 and posted.message.seq == 1


@pytest.mark.parametrize("value", ["有 空格", "x" * 65, "中文id", "a/b"])
async def test_bad_client_msg_id_is_invalid(session, value: str) -> None:
    conversation = await bot_conversation(session)
    with pytest.raises(InvalidInput) as info:
        await service.do_post_message(session, conversation, SenderType.resident, text="hi", client_msg_id=value)
    assert info.value.code == "invalid_client_msg_id"


async def test_closed_conversation_rejects_resident_and_agent_messages(session, factory, events) -> None:
    agent = await desk_agent(factory)
    conversation = await queued_conversation(session)
    await service.do_close(session, conversation, by="agent", user=agent)
    await commit(session)
    before = await _seqs(session, conversation.id)
    events.clear()
    for sender, user in ((SenderType.resident, None), (SenderType.agent, agent)):
        with pytest.raises(Conflict, match="会话已结束") as info:
            await service.do_post_message(session, conversation, sender, text="还在吗", user=user)
        assert info.value.code == "conversation_closed"
    # a resend of an earlier message is still answered with the stored one
    assert await _seqs(session, conversation.id) == before
    assert events == []
    # the system may still write (the rating acknowledgement)
    posted = await service.do_post_message(session, conversation, SenderType.system, text="感谢您的评价！",
                                           content_type=ContentType.event)
    assert posted.message.seq == before[-1] + 1


async def test_message_text_and_payload_are_encrypted_at_rest(session) -> None:
    conversation = await bot_conversation(session)
    secret_text = "我的身份证号210102198001011234，住幸福里小区17号楼"
    secret_payload = {"quick_reply": "燃气泄漏报修专线"}
    await service.do_post_message(session, conversation, SenderType.resident, text=secret_text,
                                  payload=secret_payload, client_msg_id="enc-1",
                                  channel_meta={"openid": "wx-openid-秘密"})
    await commit(session)
    async with db.get_engine().connect() as conn:
        row = (await conn.execute(text("SELECT text, payload, channel_meta FROM messages"))).one()
    raw = " ".join(str(v) for v in row)
    for needle in ("210102198001011234", "幸福里", "燃气泄漏", "quick_reply", "wx-openid", "秘密"):
        assert needle not in raw
    stored = await session.scalar(select(Message))
    await session.refresh(stored)
    assert stored.text == secret_text and stored.payload == secret_payload
