"""A stranger on WeChat becomes a known resident by the bot's identity check (户号 + the last 4 digits of a
phone on file), through real callbacks; the next conversation starts bound, and the console says who is a
stranger."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.channels.wechat import api as wechat_api
from gasdesk.channels.wechat import simulate
from gasdesk.channels.wechat.account import wechat_account
from gasdesk.config import reset_settings_cache
from gasdesk.conversations import service as conversations
from gasdesk.conversations.models import Conversation
from gasdesk.customers.contacts import channel_note, find_contact
from gasdesk.customers.models import ContactKind

OPENID = "oBINDtest0123456789abcdef"


@pytest.fixture(autouse=True)
def nlu_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_BOT_ENGINE", "nlu")
    reset_settings_cache()


async def _say(client, text: str, msg_id: int) -> str:
    account = wechat_account()  # the simulator's account (no GASDESK_WECHAT_* in tests)
    assert account is not None
    now = int(clock.utcnow().timestamp())
    xml = simulate.inbound_text_xml(OPENID, "gh_test", text, msg_id, now)
    params, body = simulate.build_callback(xml, token=account.token, app_id=account.app_id,
                                           aes_key=account.aes_key, timestamp=now, nonce=f"n{msg_id}")
    response = await client.post("/channels/wechat/callback", params=params, content=body)
    assert response.status_code == 200, response.text
    while wechat_api._background:  # a first NLU turn (model training) may outlast WeChat's 5 seconds
        await asyncio.sleep(0.05)
    return response.text


async def test_the_bots_identity_check_binds_the_follower(client, session, factory) -> None:
    customer = await factory.customer(account_no="1002003001", phones=["13822223333"])
    await _say(client, "查一下我的预约进度", 1)
    contact = await find_contact(session, ContactKind.wechat, OPENID)
    assert contact is not None and contact.customer_id is None
    conversation = await session.scalar(select(Conversation).where(Conversation.channel == "wechat"))
    assert "陌生人" in (await channel_note(session, conversation.visitor_id, None) or "")

    await _say(client, "1002003001", 2)
    await _say(client, "3333", 3)
    await session.refresh(contact)
    assert contact.customer_id == customer.id and contact.bound_how == "resident_identity"

    # The next conversation on WeChat starts with the customer known.
    await conversations.do_close(session, conversation, by="agent")
    await session.commit()
    await _say(client, "你好", 4)
    latest = await session.scalar(select(Conversation).where(Conversation.channel == "wechat")
                                  .order_by(Conversation.id.desc()))
    assert latest.id != conversation.id and latest.customer_id == customer.id
