"""What happens when a resident writes, on any channel: store the message, let the bot answer while
the conversation is the bot's, and apply the hand-off rules."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.bot.base import Bot, BotContext, BotMessage, BotReply
from gasdesk.bot.nlu.safety import is_gas_leak
from gasdesk.bot.nlu_bot import NluBot
from gasdesk.bot.rule_bot import RuleBot
from gasdesk.callbacks.peak import peak, peak_text
from gasdesk.config import get_settings
from gasdesk.conversations import service
from gasdesk.conversations.models import Channel, ContentType, Conversation, ConversationState, SenderType
from gasdesk.event_types import BotTurn
from gasdesk.events import emit
from gasdesk.hours.service import holiday_notice
from gasdesk.observability.logs import bind_conversation
from gasdesk.routing.handoff import HandoffDecision, decide_handoff

log = logging.getLogger(__name__)

BOT_NAME = "智能客服小暖"
OVERFLOW_TEXT = {
    "after_hours": "现在是非工作时间，人工客服暂不在线。您可以留下联系方式和问题，我们会在下一个班次尽快联系您。",
    "no_agent": "抱歉，目前没有空闲的人工客服在线。您可以留下联系方式和问题，我们会尽快联系您。",
    "queue_full": "当前排队人数已满，请稍后再试，或留下联系方式和问题，我们会尽快联系您。",
}


def current_bot() -> Bot:
    """The configured bot (``GASDESK_BOT_ENGINE``)."""
    if get_settings().bot_engine == "nlu":
        return NluBot()
    return RuleBot()


async def _post_bot_messages(session: AsyncSession, conversation: Conversation, messages: list[BotMessage]) -> None:
    for message in messages:
        payload: dict[str, Any] = {}
        if message.quick_replies:
            payload["quick_replies"] = message.quick_replies
        if message.card:
            payload["card"] = message.card
        await service.do_post_message(
            session, conversation, SenderType.bot, text=message.text, payload=payload or None,
            content_type=ContentType.card if message.card else ContentType.text, sender_name=BOT_NAME,
        )


def queue_text(spot: service.acd.QueueSpot | None, group_name: str) -> str:
    if spot is None:
        return f"正在为您接通{group_name}人工客服，请稍候。"
    minutes = max(1, round(spot.estimated_wait_s / 60))
    return f"已为您转接{group_name}人工客服，您前面还有 {spot.position - 1} 位，预计等待约 {minutes} 分钟。"


async def apply_handoff(session: AsyncSession, conversation: Conversation, decision: HandoffDecision,
                        reply: BotReply | None) -> service.HandoffOutcome:
    """Queue the conversation per the decision, or offer to leave a message (overflow)."""
    summary = None
    if reply is not None and (reply.intent or reply.slots):
        summary = {"intent": reply.intent, "confidence": reply.confidence, "slots": reply.slots,
                   "rule": decision.rule_name}
    outcome = await service.do_handoff(session, conversation, group=decision.group, reason=decision.reason,
                                       priority=decision.priority, summary=summary)
    if outcome.queued:
        spot = outcome.spot
        text = queue_text(spot, decision.group.name) if conversation.state == ConversationState.queued.value \
            else f"已为您接通{decision.group.name}人工客服，客服即将为您服务。"
        # Peak-hour guidance: the wait, self-service and a callback that keeps the place (gasdesk/callbacks).
        at_peak = (spot is not None and conversation.state == ConversationState.queued.value
                   and conversation.channel != Channel.voice.value and peak(spot.estimated_wait_s))
        if at_peak:
            text += peak_text(conversation.channel)
        await service.post_system(session, conversation, text, payload={
            "event": "queued", "position": spot.position if spot else None,
            "estimated_wait_s": spot.estimated_wait_s if spot else None, "peak": at_peak,
        })
    else:
        await service.do_post_message(
            session, conversation, SenderType.bot, text=OVERFLOW_TEXT[outcome.reason or "no_agent"],
            content_type=ContentType.card, sender_name=BOT_NAME,
            payload={"card": {"kind": "leave_message", "reason": outcome.reason, "skill_group_id": decision.group.id}},
        )
    return outcome


def record_bot_turn(message: Any, reply: BotReply, *, had_flow: bool, in_flow: bool, flow_done: str | None,
                    handed_off: bool, flow_paused: str | None = None) -> dict[str, Any]:
    """Keep intent, confidence and outcome of a bot turn (for reports) in the resident message's channel_meta.
    A flow paused for a new request is noted; the outcome is then that of the new request."""
    if flow_paused:
        had_flow = False
    if reply.emergency:
        outcome = "emergency"
    elif handed_off or reply.handoff_requested:
        outcome = "handoff"
    elif in_flow:
        outcome = "flow_step"
    elif flow_done:
        outcome = "flow_done"
    elif had_flow:
        outcome = "flow_cancelled"
    else:
        outcome = "answered" if reply.understood else "clarify"
    turn = {"intent": reply.intent, "confidence": reply.confidence, "outcome": outcome, "understood": reply.understood}
    if flow_done:
        turn["flow"] = flow_done
    if flow_paused:
        turn["paused"] = flow_paused
    message.channel_meta = {**(message.channel_meta or {}), "bot_turn": turn}
    return turn


async def _bot_aside(session: AsyncSession, conversation: Conversation, text: str) -> None:
    """People have the chat; the bot only finishes what it started (the address of a leak it reported)."""
    ctx = BotContext(session, conversation, dict(conversation.bot_state or {}))
    reply = await current_bot().aside(ctx, text)
    conversation.bot_state = ctx.state or None
    if reply is not None:
        await _post_bot_messages(session, conversation, reply.messages)


async def start_conversation(session: AsyncSession, *, channel: str, visitor_id: str,
                             customer_id: int | None = None) -> Conversation:
    """Open a conversation and let the bot greet."""
    conversation = await service.do_start_conversation(session, channel=channel, visitor_id=visitor_id,
                                                       customer_id=customer_id)
    bot = current_bot()
    greeting = await bot.greet(BotContext(session, conversation, dict(conversation.bot_state or {})))
    await _post_bot_messages(session, conversation, greeting.messages)
    # Holidays ahead: said with the greeting (gasdesk/hours); not by SMS, where each message is a paid text.
    notice = await holiday_notice(session) if channel != Channel.sms.value else None
    if notice is not None:
        await _post_bot_messages(session, conversation, [BotMessage(f"温馨提示：{notice.text}。")])
    return conversation


async def receive_resident_message(
    session: AsyncSession,
    conversation: Conversation,
    *,
    text: str | None,
    client_msg_id: str | None = None,
    payload: dict[str, Any] | None = None,
    content_type: ContentType = ContentType.text,
    channel_meta: dict[str, Any] | None = None,
) -> service.Posted:
    """Store a resident message; while the bot holds the conversation, run one bot turn and the hand-off rules."""
    bind_conversation(conversation.id)  # the rest of this request, socket or task logs with the conversation's id
    posted = await service.do_post_message(
        session, conversation, SenderType.resident, text=text, client_msg_id=client_msg_id, payload=payload,
        content_type=content_type, channel_meta=channel_meta,
    )
    # ids and kinds only: the text may hold anything (the log filter would redact numbers, not names)
    log.debug("resident message %s (seq %s, %s) in state %s", posted.message.id, posted.message.seq,
              content_type.value, conversation.state)
    if not posted.created:
        return posted  # a resend
    if conversation.state != ConversationState.bot.value:
        if content_type is ContentType.text and is_gas_leak(text or ""):
            # Waiting for, or talking to, people: no bot turn, but a leak report still goes first.
            await service.do_raise_to_emergency(session, conversation)
        if content_type is ContentType.text and text and conversation.bot_state:
            await _bot_aside(session, conversation, text)
        return posted  # people handle the conversation
    if content_type in (ContentType.image, ContentType.file):
        # The bot cannot read pictures: acknowledge without counting a miss, offer a person.
        await _post_bot_messages(session, conversation, [BotMessage(
            "已收到您发送的文件。如需人工客服查看，请点击“转人工”。", quick_replies=[{"label": "转人工", "action": "handoff"}])])
        return posted
    ctx = BotContext(session, conversation, dict(conversation.bot_state or {}))
    had_flow = bool(ctx.state.get("flow_state"))
    reply = await current_bot().reply(ctx, text or "", payload)
    flow_done = ctx.state.pop("flow_done", None)
    flow_paused = ctx.state.pop("flow_paused", None)
    knowledge = ctx.state.pop("knowledge", None)
    in_flow = bool(ctx.state.get("flow_state"))
    conversation.bot_state = ctx.state or None
    if reply.understood:
        conversation.bot_misses = 0
    elif not in_flow:  # a flow asking again is the flow's own retry (it offers a person itself), not a miss
        conversation.bot_misses += 1
    await _post_bot_messages(session, conversation, reply.messages)
    # One outcome per turn: a turn the bot's dialogue took (a flow started, went on or finished) is not also
    # handed off by the keyword/intent/miss rules; the bot's own hand-off and emergencies still apply.
    decision = await decide_handoff(session, conversation, text or "", reply,
                                    bot_took_turn=in_flow or flow_done is not None)
    turn = record_bot_turn(posted.message, reply, had_flow=had_flow, in_flow=in_flow, flow_done=flow_done,
                           handed_off=decision is not None, flow_paused=flow_paused)
    emit(session, BotTurn(conversation_id=conversation.id, message_id=posted.message.id, channel=conversation.channel,
                          intent=reply.intent, outcome=turn["outcome"], knowledge=knowledge))
    if decision is not None:
        await apply_handoff(session, conversation, decision, reply)
    elif reply.handoff_requested:
        # Asked for a person but no rule routes it (rules switched off): say so rather than stay silent.
        await _post_bot_messages(session, conversation, [BotMessage(OVERFLOW_TEXT["no_agent"])])
    return posted


async def request_handoff(session: AsyncSession, conversation: Conversation) -> service.HandoffOutcome | None:
    """The always-visible 转人工 button: skip the bot, apply the request rule."""
    if conversation.state != ConversationState.bot.value:
        return None
    decision = await decide_handoff(session, conversation, "", None, requested=True)
    if decision is None:
        return None
    return await apply_handoff(session, conversation, decision, None)
