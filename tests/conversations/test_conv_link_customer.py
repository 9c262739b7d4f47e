"""One way to link a customer to a conversation (``conversations.service.do_link_customer``), whoever does it:
an agent in the console, the resident passing the widget's identity check, or the bot's identity step (see
tests/bot/dialogue/test_identity_link.py). Each link is exactly one audit row, holding ids only, and the
conversation's state is published after commit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.conversations import service
from gasdesk.db import commit, rollback
from tests.factories import (
    ChatSocket,
    bot_conversation,
    desk_agent,
    login,
    new_visitor,
    queued_conversation,
    reload_conversation,
    served,
)


async def link_rows(session, conversation_id: int) -> list[AuditEntry]:
    return list(await session.scalars(select(AuditEntry).where(
        AuditEntry.action == "conversation.link_customer", AuditEntry.entity_id == str(conversation_id))
        .order_by(AuditEntry.id)))


def state_events(events, conversation_id: int) -> list[dict]:
    return [e.payload for e in events if e.type == "conversation.state"
            and e.payload["conversation_id"] == conversation_id]


async def test_an_agent_links_a_customer_once(client, session, factory, events) -> None:
    customer = await factory.customer()
    agent = await desk_agent(factory)
    conversation = await queued_conversation(session)
    await login(client, agent.username)
    events.clear()
    response = await client.put(f"/api/v1/conversations/{conversation.id}/customer",
                                json={"customer_id": customer.id})
    assert response.status_code == 200 and response.json()["customer_id"] == customer.id
    assert (await reload_conversation(conversation.id)).customer_id == customer.id
    [row] = await link_rows(session, conversation.id)
    assert (row.actor_id, row.source) == (agent.id, "web")
    assert row.changes == {"before": {"customer_id": None}, "after": {"customer_id": customer.id, "how": "agent"}}
    assert len(state_events(events, conversation.id)) == 1

    again = await client.put(f"/api/v1/conversations/{conversation.id}/customer", json={"customer_id": customer.id})
    assert again.status_code == 200
    assert len(await link_rows(session, conversation.id)) == 1, "linking the same customer again changes nothing"
    missing = await client.put(f"/api/v1/conversations/{conversation.id}/customer", json={"customer_id": 999999})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "customer_not_found"


async def test_the_resident_identity_check_links_through_the_same_path(app, session, factory, events) -> None:
    customer = await factory.customer(name="孙立红", phones=["13700001111"], account_no="2188001122")
    async with served(app) as host:
        visitor = await new_visitor(host)
        async with ChatSocket.connect(host) as ws:
            await ws.send(type="hello", token=visitor["token"])
            conversation_id = (await ws.until("welcome"))["conversation"]["id"]
            events.clear()
            await ws.send(type="identify", account_no="2188001122", phone_last4="1111")
            assert (await ws.until("identified"))["name"] == "孙**"
    assert (await reload_conversation(conversation_id)).customer_id == customer.id
    [row] = await link_rows(session, conversation_id)
    assert (row.actor_id, row.actor_name, row.source) == (None, "resident", "webchat")
    assert row.changes == {"before": {"customer_id": None},
                           "after": {"customer_id": customer.id, "how": "resident_identity"}}
    assert "孙立红" not in str(row.changes) and "1111" not in str(row.changes), "ids only in the audit row"
    assert len(state_events(events, conversation_id)) == 1


async def test_nothing_is_published_or_recorded_when_the_transaction_rolls_back(session, factory, events) -> None:
    customer = await factory.customer()
    conversation = await bot_conversation(session)
    conversation_id = conversation.id
    events.clear()
    assert await service.do_link_customer(session, Actor.system("test", "test"), conversation, customer, how="agent")
    await rollback(session)
    assert events == [] and await link_rows(session, conversation_id) == []
    await session.refresh(conversation)
    assert conversation.customer_id is None
    with pytest.raises(ValueError):
        await service.do_link_customer(session, Actor.system("test", "test"), conversation, customer, how="guess")
    await commit(session)
