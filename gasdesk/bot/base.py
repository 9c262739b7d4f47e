"""The Bot interface every channel talks to. A bot reads one resident message in its conversation and
returns what to say and what to do; it never changes state itself: the pipeline applies its actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.conversations.models import Conversation


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
    # Structured side effects for the pipeline (e.g. {"type": "create_ticket", ...}); later issues add more.
    actions: list[dict[str, Any]] = field(default_factory=list)


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
        """Answer one resident message (``payload`` carries a quick-reply button's data)."""
        ...
