"""What the simulator page does for the newcomer: build the request WeChat (or the SMS provider) would send,
signed and encrypted exactly as they do, post it to this server's own callback through the app itself, and
show what came back — the passive reply, and what the fake WeChat API received for this follower."""

from __future__ import annotations

import itertools
import secrets
import time
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.channels.sms.callbacks import callback_token
from gasdesk.channels.sms.providers.base import check_mobile
from gasdesk.channels.wechat import simulate
from gasdesk.channels.wechat.account import simulated_wechat, wechat_account
from gasdesk.channels.wechat.messages import parse_fields
from gasdesk.clock import to_local, utcnow
from gasdesk.config import get_settings
from gasdesk.customers.contacts import contact_key
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.outbound.models import STATUS_LABELS, OutboundMessage, OutboundStatus
from gasdesk.outbound.service import notice_overrides, preview_text

SIM_OA = "gh_gasdesksim01"
_msg_ids = itertools.count(int(time.time() * 1000))


def check_openid(openid: str) -> str:
    """Simulated followers' ids look like WeChat's: 28 letters, digits, - and _."""
    if not (8 <= len(openid) <= 64) or not all(ch.isalnum() or ch in "-_" for ch in openid):
        raise InvalidInput("openid 只能包含字母、数字、- 和 _（8–64 位）", code="invalid_openid")
    return openid


async def send_as_follower(app: FastAPI, openid: str, *, text: str | None = None, event: str | None = None,
                           event_key: str | None = None) -> dict[str, Any]:
    """One callback from ``openid`` to this server; returns the HTTP status and the decrypted passive reply."""
    account = wechat_account()
    if account is None:
        raise NotFound("未配置微信公众号，模拟器不可用", code="wechat_off")
    now = int(time.time())
    if event:
        xml = simulate.inbound_event_xml(check_openid(openid), SIM_OA, event, now, event_key=event_key)
    else:
        if not text or not text.strip() or len(text) > 2000:
            raise InvalidInput("请输入 1–2000 字的消息", code="invalid_text")
        xml = simulate.inbound_text_xml(check_openid(openid), SIM_OA, text, next(_msg_ids), now)
    params, body = simulate.build_callback(xml, token=account.token, app_id=account.app_id,
                                           aes_key=account.aes_key, timestamp=now, nonce=secrets.token_hex(5))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator.local") as client:
        response = await client.post("/channels/wechat/callback", params=params, content=body,
                                     headers={"Content-Type": "text/xml"})
    reply = ""
    if response.status_code == 200 and response.text != "success":
        xml_reply = simulate.read_reply(response.content, token=account.token, aes_key=account.aes_key,
                                        app_id=account.app_id)
        reply = parse_fields(xml_reply).get("Content", "")
    return {"status": response.status_code, "reply": reply,
            "error": response.json().get("error") if response.status_code >= 400 else None}


def received_for(openid: str) -> list[dict[str, Any]]:
    """What the fake WeChat API received for this follower (客服消息 and template messages), oldest first."""
    return [{"kind": m.get("kind"), "text": m.get("text") or _template_text(m.get("data")), "at": m.get("at")}
            for m in simulated_wechat().sent if m.get("openid") == openid]


def _template_text(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    return "；".join(f"{key}: {value.get('value') if isinstance(value, dict) else value}" for key, value in data.items())


# ---------------------------------------------------------------- the SMS phone


async def send_as_phone(app: FastAPI, phone: str, text: str) -> dict[str, Any]:
    """An SMS from ``phone`` as the provider pushes it (Aliyun's SmsUp JSON, with the callback token)."""
    phone = check_mobile(phone)
    if not text or not text.strip() or len(text) > 500:
        raise InvalidInput("请输入 1–500 字的短信", code="invalid_text")
    settings = get_settings()
    token = callback_token(settings)
    if token is None:
        raise NotFound("短信回调未启用", code="sms_callback_disabled")
    sent = to_local(utcnow()).strftime("%Y-%m-%d %H:%M:%S")
    push = [{"phone_number": phone, "send_time": sent, "content": text, "sign_name": settings.sms_sign_name,
             "dest_code": "1234", "sequence_id": next(_msg_ids)}]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://simulator.local") as client:
        response = await client.post("/channels/sms/aliyun/uplink", params={"token": token}, json=push)
    return {"status": response.status_code, "reply": "",
            "error": response.json().get("error") if response.status_code >= 400 else None}


async def texts_to(session: AsyncSession, phone: str) -> list[dict[str, Any]]:
    """The SMS messages queued or sent to ``phone``, as the phone would show them, oldest first."""
    phone = check_mobile(phone)
    overrides = await notice_overrides(session)
    rows = await session.scalars(select(OutboundMessage).where(
        OutboundMessage.channel == "sms", OutboundMessage.recipient_index == contact_key("sms", phone))
        .order_by(OutboundMessage.id))
    return [{"kind": STATUS_LABELS[OutboundStatus(row.status)], "text": preview_text(row, overrides),
             "at": row.created_at.timestamp()} for row in rows]
