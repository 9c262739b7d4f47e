"""The Bot interface every channel talks to, and the bot's contract.

A bot reads one resident message in its conversation and returns a ``BotReply``: what to say, and the
signals the pipeline (``gasdesk.conversations.pipeline``) acts on: a hand-off request, an emergency, a
skill hint, whether it understood (the miss counter). The pipeline posts the messages and applies the
hand-off rules.

What the resident asked the bot to *do* (file a report, book or move an appointment, alert the staff on
duty) the bot does itself, the way any other client of a domain does: it calls that domain's ``do_*``
function (``tickets.service.do_create_ticket``, ``appointments.service.book_appointment`` /
``do_reschedule`` / ``do_cancel_appointment``, ``notifications.service.do_notify``…) as ``BOT_ACTOR``,
inside the transaction of the resident's message. So the audit log names 智能客服 (source ``bot``) for every
such change, and its events leave only after the message commits. A bot never writes rows itself and
never changes the conversation's routing state; there is no side channel of "actions" for the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.conversations.models import Conversation

# The one actor for everything the bot does through the domains (audit rows: 智能客服 / bot).
BOT_ACTOR = Actor.system("智能客服", "bot")


@dataclass(frozen=True)
class BotMessage:
    text: str
    # Quick-reply buttons: [{"label": "转人工", "action": "handoff"} | {"label": "缴费", "text": "怎么缴费"}]
    quick_replies: list[dict[str, str]] = field(default_factory=list)
    card: dict[str, Any] | None = None


@dataclass(frozen=True)
class BotReply:
    messages: list[BotMessage] = field(default_factory=list)
    understood: bool = True  # False counts as an unanswered turn for the bot_misses hand-off rule
    intent: str | None = None
    confidence: float | None = None
    slots: dict[str, str] = field(default_factory=dict)
    handoff_requested: bool = False
    emergency: bool = False
    skill_hint: str | None = None  # a skill-group code the bot thinks fits


@dataclass
class BotContext:
    session: AsyncSession
    conversation: Conversation
    # Dialogue memory kept between turns (flows, slots being filled).
    state: dict[str, Any] = field(default_factory=dict)


class Bot(Protocol):
    async def greet(self, ctx: BotContext) -> BotReply:
        """The first words of a new conversation."""
        ...

    async def reply(self, ctx: BotContext, text: str, payload: dict[str, Any] | None = None) -> BotReply:
        """Answer one resident message (``payload`` carries a quick-reply button's data). Changes the resident
        asked for go through the domains' ``do_*`` functions as ``BOT_ACTOR``."""
        ...

    async def aside(self, ctx: BotContext, text: str) -> BotReply | None:
        """A message written while people handle the conversation: the bot only finishes what it started
        (e.g. the address of a leak it reported), else returns None and stays silent."""
        ...
