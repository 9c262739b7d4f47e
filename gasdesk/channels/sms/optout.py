"""退订 by SMS: a resident texting TD / T / 退订 / 取消订阅 gets no more proactive messages on that number
(notices, reminders, 回访 invitations; replies in a conversation they start and emergencies still go), and
恢复订阅 asks for them back. Each is confirmed by SMS (purpose chat, so an opted-out number still gets it).

Registered with ``channels.inbound.intercept_inbound`` by ``gasdesk/worker.py``: the keyword never reaches
the conversation or the bot. Only SMS: carriers require these keywords on SMS, while a WeChat follower stops
messages by unfollowing.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.channels.inbound import Inbound
from gasdesk.customers.contacts import do_set_opt_out
from gasdesk.customers.models import ContactIdentity, ContactKind
from gasdesk.customers.validation import to_halfwidth
from gasdesk.outbound.models import Purpose
from gasdesk.outbound.service import do_queue_outbound

OPT_OUT_WORDS = frozenset({"TD", "T", "退订", "取消订阅"})
OPT_IN_WORDS = frozenset({"恢复订阅"})
OPT_OUT_CONFIRMED = "opt_out_confirmed"
OPT_IN_CONFIRMED = "opt_in_confirmed"
SMS_ACTOR = Actor.system("sms", "sms")
# Spaces and the punctuation a phone keyboard adds around a keyword ("TD。", "退订！", "【退订】").
_NOISE = re.compile(r"[\s\u3000.,!?;:'\"。，！？；：、（）()【】\[\]“”‘’~～]+")


def opt_out_keyword(text: str | None) -> bool | None:
    """True for an opt-out keyword, False for opt back in, None for anything else (case, width, spaces and
    surrounding punctuation ignored)."""
    word = _NOISE.sub("", to_halfwidth(text or "")).upper()
    if word in OPT_OUT_WORDS:
        return True
    if word in OPT_IN_WORDS:
        return False
    return None


async def sms_opt_out(session: AsyncSession, contact: ContactIdentity, channel: str, message: Inbound) -> bool:
    """The interceptor: handle a keyword (True) or let the message through (False)."""
    if channel != "sms" or contact.kind != ContactKind.sms:
        return False
    wanted = opt_out_keyword(message.text)
    if wanted is None:
        return False
    do_set_opt_out(session, SMS_ACTOR, contact, wanted)
    await do_queue_outbound(session, channel="sms", purpose=Purpose.chat, method="sms", recipient=contact.value,
                            contact=contact, template_key=OPT_OUT_CONFIRMED if wanted else OPT_IN_CONFIRMED,
                            params={}, actor=SMS_ACTOR)
    return True
