"""Acknowledging an emergency by SMS: a staff member whose mobile is on file (``StaffContact``) and who was
alerted by SMS replies “QR” (or “确认”) to take the newest open event that texted them.

An inbound interceptor (``channels.inbound.intercept_inbound``, wired by ``gasdesk/worker.py``): the reply never
reaches a conversation or the bot. Any other text, or a number that is no staff member's, passes through. Its own
module because the inbound chain reaches the bot, whose leak flow opens emergencies (``emergency.service``).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.auth.models import User
from gasdesk.channels.inbound import Inbound
from gasdesk.customers.models import ContactIdentity
from gasdesk.customers.validation import normalize_phone, to_halfwidth
from gasdesk.emergency.models import EmergencyEvent, EmergencyNotification, EmergencyStatus, StaffContact
from gasdesk.emergency.service import do_acknowledge
from gasdesk.security.crypto import blind_index

ACK_WORDS = frozenset({"QR", "确认"})
_NOISE = re.compile(r"[\s\u3000.,!?;:'\"。，！？；：、（）()【】\[\]“”‘’~～]+")


def ack_keyword(text: str | None) -> bool:
    """Is this reply the acknowledgement keyword (case, width, spaces and punctuation ignored)?"""
    return _NOISE.sub("", to_halfwidth(text or "")).upper() in ACK_WORDS


async def sms_acknowledge(session: AsyncSession, contact: ContactIdentity, channel: str, message: Inbound) -> bool:
    """The interceptor: acknowledge (True) or let the message through (False)."""
    if channel != "sms" or not ack_keyword(message.text):
        return False
    index = blind_index(normalize_phone(contact.value), kind="phone")
    user = await session.scalar(select(User).join(StaffContact, StaffContact.user_id == User.id)
                                .where(StaffContact.mobile_index == index, User.is_active.is_(True)))
    if user is None:
        return False
    event = await session.scalar(
        select(EmergencyEvent).join(EmergencyNotification, EmergencyNotification.event_id == EmergencyEvent.id)
        .where(EmergencyNotification.user_id == user.id, EmergencyNotification.channel == "sms",
               EmergencyEvent.status.in_([EmergencyStatus.open.value, EmergencyStatus.escalating.value]))
        .order_by(EmergencyEvent.opened_at.desc(), EmergencyEvent.id.desc()).limit(1))
    if event is None:
        return False
    await do_acknowledge(session, user, event, via="sms", source="sms")
    return True
