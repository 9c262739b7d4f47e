"""The bot's identity step links the customer through ``conversations.service.do_link_customer`` as
``BOT_ACTOR``: one audit row (智能客服/bot, ids only) and the state published with the resident's message."""

from __future__ import annotations

from dialogue_kit import verify
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry


async def test_the_bot_links_the_verified_customer_once(session, factory, new_chat, events) -> None:
    customer = await factory.customer()
    chat = await new_chat()
    await chat.say("查一下我的预约进度")
    events.clear()
    await verify(chat, customer)
    assert (await chat.stored()).customer_id == customer.id
    rows = list(await session.scalars(select(AuditEntry).where(
        AuditEntry.action == "conversation.link_customer", AuditEntry.entity_id == str(chat.conversation.id))))
    assert [(r.actor_id, r.actor_name, r.source) for r in rows] == [(None, "智能客服", "bot")]
    assert rows[0].changes == {"before": {"customer_id": None},
                               "after": {"customer_id": customer.id, "how": "bot_identity"}}
    assert [e.payload["conversation_id"] for e in events if e.type == "conversation.state"] == [chat.conversation.id]

    await chat.say("再查一下我的预约进度")  # already verified: no second check, no second link
    assert len(list(await session.scalars(select(AuditEntry).where(
        AuditEntry.action == "conversation.link_customer",
        AuditEntry.entity_id == str(chat.conversation.id))))) == 1
