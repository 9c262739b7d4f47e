"""Callbacks the SMS providers push to us: delivery receipts (状态报告) and residents' replies (上行短信).

``POST /channels/sms/{provider}/receipts`` and ``POST /channels/sms/{provider}/uplink`` for ``aliyun`` or
``tencent``, each with ``?token=`` = ``GASDESK_SMS_CALLBACK_TOKEN`` (configure the full URL in the provider's
console). Public routes: the provider authenticates with the token, which is checked before the body is
read. A push is taken whole in one transaction or not at all: a wrong token is 403, a body that is not the
provider's JSON 422, and nothing is written; the provider then pushes again. The answer is the provider's
own acknowledgement JSON.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request

from gasdesk.auth.access import public
from gasdesk.channels.inbound import Inbound, receipt_key, receive_from_contact, seen_before
from gasdesk.channels.sms import callbacks
from gasdesk.channels.sms.schemas import AliyunCallbackAck, TencentCallbackAck
from gasdesk.config import get_settings
from gasdesk.customers.contacts import contact_key, do_record_inbound_contact
from gasdesk.customers.models import ContactKind
from gasdesk.db import DbSession
from gasdesk.outbound.service import do_record_receipt
from gasdesk.security import limits

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/channels/sms", tags=["channels"])

Provider = Literal["aliyun", "tencent"]
Token = Query(default=None, max_length=200, description="GASDESK_SMS_CALLBACK_TOKEN")


@router.post("/{provider}/receipts", response_model=AliyunCallbackAck | TencentCallbackAck,
             dependencies=[public()])
async def receipts(request: Request, session: DbSession, provider: Provider = Path(),
                   token: str | None = Token) -> dict[str, Any]:
    """Delivery receipts: each message the provider reports on becomes delivered, or failed with its code."""
    callbacks.check_callback_token(get_settings(), token)
    body = await request.body()
    parsed = callbacks.parse_aliyun_report(body) if provider == "aliyun" else callbacks.parse_tencent_status(body)
    for receipt in parsed:
        await do_record_receipt(session, "sms", receipt.provider_id, delivered=receipt.delivered,
                                error_code=receipt.error_code, at=receipt.at)
    return callbacks.callback_ack(provider)


@router.post("/{provider}/uplink", response_model=AliyunCallbackAck | TencentCallbackAck,
             dependencies=[public()])
async def uplink(request: Request, session: DbSession, provider: Provider = Path(),
                 token: str | None = Token) -> dict[str, Any]:
    """Residents' replies: each goes into the resident's SMS conversation (bot, hand-off, agents), once.
    A repeated push of the same reply is recognised and skipped; replies beyond the per-number limit are
    acknowledged but dropped."""
    callbacks.check_callback_token(get_settings(), token)
    body = await request.body()
    parsed = callbacks.parse_aliyun_uplink(body) if provider == "aliyun" else callbacks.parse_tencent_reply(body)
    for sms in parsed:
        key = (receipt_key(provider, "ref", sms.provider_ref) if sms.provider_ref else
               receipt_key(provider, sms.phone, sms.at.isoformat(), sms.text))
        if await seen_before(session, "sms", key) or not sms.text.strip():
            continue  # a repeated push, or an empty reply (nothing to answer; refusing it would make it repeat)
        if not await limits.allowed("sms.number", contact_key(ContactKind.sms, sms.phone)):
            logger.warning("sms reply dropped: over the per-number limit")
            continue
        contact = await do_record_inbound_contact(session, ContactKind.sms, sms.phone, at=sms.at)
        await receive_from_contact(session, contact, "sms", Inbound(text=sms.text))
    return callbacks.callback_ack(provider)
