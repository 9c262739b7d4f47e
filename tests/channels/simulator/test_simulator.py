"""The development simulator speaks the real WeChat protocol to this server, and is never on in production."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk.config import reset_settings_cache
from gasdesk.conversations.models import Conversation

OPENID = "oSIMtest0123456789abcdef"


async def test_a_follower_message_gets_the_bots_passive_reply(client, session) -> None:
    response = await client.post("/dev/simulator/wechat/send", json={"openid": OPENID, "text": "你好"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == 200 and body["reply"], body
    conversation = await session.scalar(select(Conversation).where(Conversation.channel == "wechat"))
    assert conversation is not None and conversation.visitor_id.startswith("wechat:")


async def test_bad_input_is_refused(client) -> None:
    response = await client.post("/dev/simulator/wechat/send", json={"openid": "bad id!", "text": "你好"})
    assert response.status_code == 422
    response = await client.post("/dev/simulator/wechat/send", json={"openid": OPENID, "text": "  "})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_text"


@pytest.mark.parametrize("path", ["/dev/simulator", "/dev/simulator/wechat/inbox?openid=" + OPENID])
async def test_the_simulator_does_not_exist_in_production(client, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    monkeypatch.setenv("GASDESK_ENV", "production")
    monkeypatch.setenv("GASDESK_COOKIE_SECURE", "true")
    reset_settings_cache()
    response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 404


async def test_an_sms_from_a_number_on_file_reaches_its_customers_conversation(client, session, factory) -> None:
    customer = await factory.customer(phones=["13911112222"])
    response = await client.post("/dev/simulator/sms/send", json={"phone": "13911112222", "text": "你好"})
    assert response.status_code == 200 and response.json()["status"] == 200, response.text
    conversation = await session.scalar(select(Conversation).where(Conversation.channel == "sms"))
    assert conversation is not None and conversation.customer_id == customer.id
    inbox = await client.post("/dev/simulator/sms/inbox", json={"phone": "13911112222"})
    texts = [m["text"] for m in inbox.json()["messages"]]
    assert texts, "the bot's answer is queued as an SMS to the phone"


async def test_the_sms_phone_refuses_bad_numbers(client) -> None:
    response = await client.post("/dev/simulator/sms/send", json={"phone": "12345678901", "text": "你好"})
    assert response.status_code == 422
