"""WeChat through the development simulator (the real callback protocol and the fake WeChat API): the queue
message carries the peak guidance only above the threshold, and 回拨 books a callback that keeps the place."""

from __future__ import annotations

from sqlalchemy import select

from gasdesk.callbacks.models import CallbackRequest
from gasdesk.config import reset_settings_cache
from gasdesk.conversations.models import Conversation
from tests.factories import desk_agent, queued_conversation

OPENID = "oSIMpeak0123456789abcdef"
CALM = "oSIMcalm0123456789abcdef"


async def _send(client, openid: str, text: str) -> str:
    response = await client.post("/dev/simulator/wechat/send", json={"openid": openid, "text": text})
    assert response.status_code == 200 and response.json()["status"] == 200, response.text
    inbox = await client.get(f"/dev/simulator/wechat/inbox?openid={openid}", headers={"Accept": "application/json"})
    return "\n".join([response.json().get("reply") or "", *(m.get("text") or "" for m in inbox.json()["messages"])])


async def test_peak_guidance_and_the_callback_keyword_on_wechat(client, session, factory, monkeypatch) -> None:
    await desk_agent(factory, max_concurrent=1)
    await queued_conversation(session)  # the agent's only chat slot is taken: WeChat residents wait
    monkeypatch.setenv("GASDESK_PEAK_WAIT_THRESHOLD_S", "300")
    reset_settings_cache()
    calm = await _send(client, CALM, "转人工")  # first in line: about 4 minutes, below the threshold
    assert "预计等待约 4 分钟" in calm and "回拨" not in calm
    monkeypatch.setenv("GASDESK_PEAK_WAIT_THRESHOLD_S", "60")
    reset_settings_cache()
    said = await _send(client, OPENID, "转人工")
    assert "回复“回拨”预约回拨" in said, said
    after = await _send(client, OPENID, "回拨 13800005555")
    assert "已为您预约回拨（138****5555）" in after and "您前面还有 1 位" in after, after
    callback = await session.scalar(select(CallbackRequest))
    assert callback is not None and (callback.channel, callback.phone) == ("wechat", "13800005555")
    conversation = await session.get(Conversation, callback.conversation_id)
    assert conversation is not None and conversation.state == "queued"
