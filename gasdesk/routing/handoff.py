"""Hand-off rules are data: evaluated in order, the first match names the skill group and priority."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.bot.base import BotReply
from gasdesk.conversations.models import Conversation
from gasdesk.routing.models import HandoffKind, HandoffRule, SkillGroup


@dataclass(frozen=True)
class HandoffDecision:
    group: SkillGroup
    priority: int
    reason: str  # the rule kind that fired
    rule_name: str


async def _group_for(session: AsyncSession, rule: HandoffRule, reply: BotReply | None,
                     conversation: Conversation) -> SkillGroup | None:
    if rule.params.get("use_skill_hint"):
        # This turn's hint, else the topic the bot remembered from earlier turns (e.g. the 热力业务 button).
        hint = (reply.skill_hint if reply is not None else None) or (conversation.bot_state or {}).get("skill_hint")
        hinted = await session.scalar(select(SkillGroup).where(SkillGroup.code == hint)) if hint else None
        if hinted is not None:
            return hinted
    return await session.get(SkillGroup, rule.skill_group_id)


# "不是要投诉", "不用转人工了", "别投诉": a keyword the resident negates right before it is not said.
_NEGATION_BEFORE = re.compile(r"(不是要?|不是想|并不是|不想|不要|不用|不需要|无需|没有?|别|不)(转|找|要|接|去)?$")


def says(text: str, word: str) -> bool:
    """``word`` occurs in ``text`` at least once without a negation just before it."""
    start = text.find(word)
    while start != -1:
        if not _NEGATION_BEFORE.search(text[max(0, start - 4):start]):
            return True
        start = text.find(word, start + 1)
    return False


def _intent_allows(rule: HandoffRule, reply: BotReply | None) -> bool:
    """A keyword rule may name intents it applies to (``only_intents``) or stands aside for
    (``unless_intents``, e.g. praise that mentions 投诉 in passing) — edited with the rule's params."""
    intent = reply.intent if reply is not None else None
    only = rule.params.get("only_intents") or []
    unless = rule.params.get("unless_intents") or []
    return (not only or intent in only) and intent not in unless


# Rules that only read the resident's words or the bot's miss count: they stand aside when the bot's
# dialogue took the turn (its intake of a complaint is the answer, not a second outcome beside a hand-off).
TURN_RULES = (HandoffKind.keyword, HandoffKind.intent, HandoffKind.bot_misses)


def _matches(rule: HandoffRule, conversation: Conversation, text: str, reply: BotReply | None,
             requested: bool, bot_took_turn: bool) -> bool:
    kind = HandoffKind(rule.kind)
    if bot_took_turn and kind in TURN_RULES:
        return False
    if kind is HandoffKind.emergency:
        return bool(reply and reply.emergency)
    if kind is HandoffKind.request:
        words = rule.params.get("keywords") or []
        return requested or bool(reply and reply.handoff_requested) or any(says(text, w) for w in words)
    if kind is HandoffKind.keyword:
        return _intent_allows(rule, reply) and any(says(text, w) for w in rule.params.get("keywords") or [])
    if kind is HandoffKind.bot_misses:
        return conversation.bot_misses >= int(rule.params.get("threshold", 2))
    if kind is HandoffKind.intent:
        return bool(reply and reply.intent in (rule.params.get("intents") or []))
    return False


async def decide_handoff(session: AsyncSession, conversation: Conversation, text: str,
                         reply: BotReply | None, *, requested: bool = False,
                         bot_took_turn: bool = False) -> HandoffDecision | None:
    """The first enabled rule that matches this turn, or None (the bot keeps the conversation).
    ``bot_took_turn``: the bot's dialogue answered the turn in a flow, so only the bot's own hand-off request
    and emergencies count (one outcome per turn)."""
    rules = await session.scalars(select(HandoffRule).where(HandoffRule.enabled.is_(True))
                                  .order_by(HandoffRule.position, HandoffRule.id))
    for rule in rules:
        if _matches(rule, conversation, text, reply, requested, bot_took_turn):
            group = await _group_for(session, rule, reply, conversation)
            if group is not None:
                return HandoffDecision(group, rule.priority, rule.kind, rule.name)
    return None
