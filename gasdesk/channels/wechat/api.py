"""The URL WeChat calls (服务器地址): GET to verify it, POST for every message and event.

Each POST is checked before anything is read into the database: the signature over token, timestamp and
nonce (and, in safe mode, ``msg_signature`` over the encrypted body), a timestamp within 5 minutes, the
app id inside the decrypted message. A retry of a callback already handled is answered ``success`` without
effect. The answer must leave within WeChat's 5 seconds: the bot's reply goes back in the response when it
is ready in time (a passive reply), else the response is ``success`` and the reply follows as 客服消息.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from gasdesk.auth.access import public
from gasdesk.channels.inbound import receipt_key, seen_before
from gasdesk.channels.wechat import crypto, messages
from gasdesk.channels.wechat.account import wechat_account
from gasdesk.channels.wechat.inbound import handle_callback
from gasdesk.clock import utcnow
from gasdesk.db import transaction
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.outbound.service import claim_for_passive_reply
from gasdesk.security import limits

router = APIRouter(tags=["wechat"])
# WeChat gives up after 5 s and retries; answer with what is ready a little before that.
PASSIVE_DEADLINE_S = 4.0
_background: set[asyncio.Task[list[int]]] = set()


def _settings_or_404() -> tuple[str, str, str | None]:
    account = wechat_account()
    if account is None:
        raise NotFound("未启用微信公众号渠道", code="wechat_off")
    return account.app_id, account.token, account.aes_key


def _now() -> int:
    return int(utcnow().timestamp())


@router.get("/channels/wechat/callback", dependencies=[public()], response_class=PlainTextResponse)
async def verify_url(signature: Annotated[str, Query(max_length=64)], timestamp: Annotated[str, Query(max_length=20)],
                     nonce: Annotated[str, Query(max_length=64)], echostr: Annotated[str, Query(max_length=512)]) -> str:
    """WeChat's URL verification: echo ``echostr`` when the signature is ours."""
    _, token, _ = _settings_or_404()
    crypto.check_callback(token, timestamp=timestamp, nonce=nonce, signature=signature, now=_now())
    return echostr


@router.post("/channels/wechat/callback", dependencies=[public()], response_class=Response)
async def receive_callback(
    request: Request,
    signature: Annotated[str, Query(max_length=64)],
    timestamp: Annotated[str, Query(max_length=20)],
    nonce: Annotated[str, Query(max_length=64)],
    encrypt_type: Annotated[str | None, Query(max_length=10)] = None,
    msg_signature: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """One message or event from a follower."""
    app_id, token, aes_key = _settings_or_404()
    crypto.check_callback(token, timestamp=timestamp, nonce=nonce, signature=signature, now=_now())
    body = await request.body()
    cipher = None
    if encrypt_type == "aes":
        if aes_key is None:
            raise InvalidInput("安全模式未配置 EncodingAESKey", code="wechat_no_aes_key")
        cipher = crypto.WeChatCipher(aes_key, app_id)
        _, encrypted = messages.parse_envelope(body)
        # AES-CBC alone does not prove where a body came from: msg_signature over it does, so it goes first.
        crypto.check_callback(token, timestamp=timestamp, nonce=nonce, signature=msg_signature, now=_now(),
                              encrypted=encrypted)
        xml = cipher.decrypt(encrypted)
    elif encrypt_type not in (None, "", "raw"):
        raise InvalidInput(f"不支持的加密方式 {encrypt_type}", code="wechat_encrypt_type")
    else:
        try:
            xml = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("消息不是 UTF-8 编码", code="wechat_bad_xml") from None
    msg = messages.parse_inbound(xml)
    if not await limits.allowed("wechat.openid", msg.from_user):
        return _reply(cipher, token, msg, "消息发送太频繁，请稍后再试。")

    async def process() -> list[int]:
        async with transaction() as session:
            if await seen_before(session, "wechat", receipt_key(messages.dedupe_key(msg))):
                return []
            session.info["wechat_callback"] = True
            await handle_callback(session, msg)
            return list(session.info.get("wechat_replies", []))

    task = asyncio.create_task(process())
    _background.add(task)
    task.add_done_callback(_background.discard)
    done, _ = await asyncio.wait({task}, timeout=PASSIVE_DEADLINE_S)
    if task not in done:
        return PlainTextResponse("success")  # the replies are queued; the worker sends them as 客服消息
    reply_ids = task.result()  # a typed error from processing becomes its 4xx here; nothing was committed
    if not reply_ids:
        return PlainTextResponse("success")
    async with transaction() as session:
        taken = await claim_for_passive_reply(session, reply_ids)
    text = "\n\n".join(row.text or "" for row in taken if row.text)
    return _reply(cipher, token, msg, text) if text else PlainTextResponse("success")


def _reply(cipher: crypto.WeChatCipher | None, token: str, msg: messages.InboundMessage, text: str) -> Response:
    reply_xml = messages.text_reply_xml(msg.from_user, msg.to_user, text, _now())
    if cipher is None:
        return Response(reply_xml, media_type="application/xml")
    body = messages.encrypted_reply_xml(cipher, token, reply_xml, str(_now()), secrets.token_hex(8))
    return Response(body, media_type="application/xml")
