"""The URL WeChat calls (服务器地址): GET to verify it, POST for every message and event.

Each POST is checked before anything is read into the database: the signature over token, timestamp and
nonce (and, in safe mode, ``msg_signature`` over the encrypted body), a timestamp within 5 minutes, the
app id inside the decrypted message. A retry of a callback already handled is answered ``success`` without
effect. The answer must leave within WeChat's 5 seconds: the bot's reply goes back in the response when it
is ready in time (a passive reply), else the response is ``success`` and the reply follows as 客服消息.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow, public
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.channels.inbound import receipt_key, seen_before
from gasdesk.channels.sending import SendFailed
from gasdesk.channels.webchat.identity import issue_visitor_token
from gasdesk.channels.wechat import crypto, messages
from gasdesk.channels.wechat import service as menu_service
from gasdesk.channels.wechat.account import require_wechat_account, simulated_wechat
from gasdesk.channels.wechat.inbound import handle_callback
from gasdesk.channels.wechat.schemas import WeChatMenuIn, WeChatMenuOut
from gasdesk.channels.wechat.sender import wechat_client
from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.customers.contacts import do_find_or_create_contact, visitor_id_of
from gasdesk.customers.models import ContactKind
from gasdesk.db import DbSession, transaction
from gasdesk.errors import InvalidInput, PermissionDenied
from gasdesk.outbound.service import claim_for_passive_reply
from gasdesk.security import limits

router = APIRouter(tags=["wechat"])
# WeChat gives up after 5 s and retries; answer with what is ready a little before that.
PASSIVE_DEADLINE_S = 4.0
_background: set[asyncio.Task[list[int]]] = set()


def _now() -> int:
    return int(utcnow().timestamp())


@router.get("/channels/wechat/callback", dependencies=[public()], response_class=PlainTextResponse)
async def verify_url(signature: Annotated[str, Query(max_length=64)], timestamp: Annotated[str, Query(max_length=20)],
                     nonce: Annotated[str, Query(max_length=64)], echostr: Annotated[str, Query(max_length=512)]) -> str:
    """WeChat's URL verification: echo ``echostr`` when the signature is ours."""
    token = require_wechat_account().token
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
    account = require_wechat_account()
    app_id, token, aes_key = account.app_id, account.token, account.aes_key
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


# ---------------------------------------------------------------- the H5 chat opened from the official account

OAUTH_STATE_MAX_AGE_S = 600


def _oauth_state(now: int) -> str:
    # WeChat passes ``state`` back unchanged; it may hold only letters and digits (≤128): a time and its MAC.
    mac = hmac.new(get_settings().signing_key.encode(), f"wechat-oauth:{now}".encode(), hashlib.sha256)
    return f"{now}x{mac.hexdigest()[:32]}"


def check_oauth_state(state: str, now: int) -> None:
    stamp, _, _ = state.partition("x")
    if not (stamp.isdigit() and len(stamp) <= 12) or not hmac.compare_digest(_oauth_state(int(stamp)), state) \
            or not 0 <= now - int(stamp) <= OAUTH_STATE_MAX_AGE_S:
        raise PermissionDenied("授权已过期，请从公众号菜单重新进入", code="wechat_bad_state")


@router.get("/channels/wechat/h5", include_in_schema=False, dependencies=[public()])
async def open_h5_chat(request: Request, sim_openid: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """The official account's menu link to the chat: WeChat's OAuth (snsapi_base) tells us who the follower is,
    so the H5 chat continues the same resident's history. The simulator skips WeChat's page (``sim_openid``)."""
    account = require_wechat_account()
    state = _oauth_state(_now())
    redirect_uri = str(request.url_for("wechat_oauth_return"))
    if account.simulated:
        if not sim_openid:
            raise InvalidInput("模拟器需要 sim_openid", code="wechat_sim_openid")
        code = simulated_wechat().code_for(sim_openid)
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302)
    return RedirectResponse(wechat_client(account).oauth_authorize_url(redirect_uri, state), status_code=302)


@router.get("/channels/wechat/oauth", name="wechat_oauth_return", include_in_schema=False, dependencies=[public()])
async def oauth_return(session: DbSession, code: Annotated[str, Query(max_length=128)],
                       state: Annotated[str, Query(max_length=128)]) -> Response:
    """WeChat's redirect back with a one-time code: the follower's openid → a visitor token for the chat."""
    account = require_wechat_account()
    check_oauth_state(state, _now())
    try:
        openid, unionid = await wechat_client(account).oauth_openid(code)
    except SendFailed as failure:
        raise InvalidInput("微信授权失败，请从公众号菜单重新进入", code="wechat_oauth_failed",
                           details={"reason": failure.reason}) from None
    contact = await do_find_or_create_contact(session, ContactKind.wechat, openid, unionid=unionid)
    _, token = issue_visitor_token(visitor_id_of(contact))
    # The token travels in the fragment: never sent to a server, never in an access log.
    return RedirectResponse(f"/chat#vt={token}", status_code=302)


# ---------------------------------------------------------------- the official account's menu (admins)


@router.get("/api/v1/wechat/menu", response_model=WeChatMenuOut)
async def get_menu(session: DbSession, _: User = allow(Role.admin)) -> dict[str, Any]:
    """The stored menu (the default until an admin saves one)."""
    return await menu_service.current_menu(session)


@router.put("/api/v1/wechat/menu", response_model=WeChatMenuOut)
async def put_menu(body: WeChatMenuIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Check and store a menu (WeChat's limits); push it with POST /api/v1/wechat/menu/push."""
    return await menu_service.do_save_menu(session, Actor.of(admin, "api"), body.model_dump())


@router.post("/api/v1/wechat/menu/push", response_model=WeChatMenuOut)
async def push_menu(request: Request, admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Send the stored menu to WeChat (menu/create); "/…" links are made absolute on this server."""
    return await menu_service.do_push_menu(Actor.of(admin, "api"), str(request.base_url))
