"""/dev/simulator: development only (404 in production or with GASDESK_SIMULATOR=false)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gasdesk.auth.access import public
from gasdesk.channels.simulator import service
from gasdesk.channels.simulator.schemas import (
    CallbackResult,
    FollowerAction,
    FollowerInbox,
    PhoneInbox,
    PhoneNumber,
    PhoneText,
)
from gasdesk.channels.wechat.account import wechat_account
from gasdesk.config import get_settings
from gasdesk.db import DbSession
from gasdesk.errors import NotFound
from gasdesk.web.templating import render

router = APIRouter(tags=["simulator"], include_in_schema=False)


def _enabled() -> None:
    if not get_settings().simulator_enabled:
        raise NotFound("模拟器仅用于开发环境", code="simulator_off")


@router.get("/dev/simulator", dependencies=[public()])
async def simulator_page(request: Request) -> Response:
    """A WeChat follower and an SMS phone, talking to this server through the real protocols."""
    _enabled()
    account = wechat_account()
    return render(request, "simulator.html", {"wechat_simulated": bool(account and account.simulated),
                                              "wechat_on": account is not None})


@router.post("/dev/simulator/wechat/send", dependencies=[public()], response_model=CallbackResult)
async def follower_sends(request: Request, body: FollowerAction) -> dict[str, Any]:
    """Send a text or an event as the follower; the server's passive reply comes back decrypted."""
    _enabled()
    return await service.send_as_follower(request.app, body.openid, text=body.text, event=body.event,
                                          event_key=body.event_key)


@router.get("/dev/simulator/wechat/inbox", dependencies=[public()], response_model=FollowerInbox)
async def follower_inbox(openid: Annotated[str, Query(min_length=8, max_length=64)]) -> dict[str, Any]:
    """What the fake WeChat API received for the follower: 客服消息 and template messages."""
    _enabled()
    return {"messages": service.received_for(service.check_openid(openid))}


@router.post("/dev/simulator/sms/send", dependencies=[public()], response_model=CallbackResult)
async def phone_sends(request: Request, body: PhoneText) -> dict[str, Any]:
    """Send an SMS as the phone (the provider's uplink push, token and all)."""
    _enabled()
    return await service.send_as_phone(request.app, body.phone, body.text)


@router.post("/dev/simulator/sms/inbox", dependencies=[public()], response_model=PhoneInbox)
async def phone_inbox(session: DbSession, body: PhoneNumber) -> dict[str, Any]:
    """The SMS messages this server queued or sent to the phone (the log provider's outbox, or a real one's).
    A POST: phone numbers stay out of URLs and access logs."""
    _enabled()
    return {"messages": await service.texts_to(session, body.phone)}
