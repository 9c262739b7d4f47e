"""Paused flows: a clear new request in the middle of a flow is answered at once, and the flow it interrupted
waits here to be picked up again.

The conversation's ``bot_state`` keeps up to ``MAX_PAUSED`` paused flows (newest last), each with the
question it was asking when it was left (``prompt``). When a turn ends with no flow running, the newest one
is offered once ("刚才的「无气报修」还没有办完，需要继续吗？"); pressing 继续 (or saying so) asks that question
again, pressing one of the question's own buttons goes straight on with the answer, and anything else lets
it go, so an offer is never repeated.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from gasdesk.bot.base import BotContext, BotMessage, BotReply

PAUSED_KEY = "paused_flows"
PAUSED_NOW_KEY = "flow_paused"  # this turn's pause, taken off by the pipeline to record the turn's outcome
MAX_PAUSED = 3
RESUME = "@resume"  # quick-reply values the dispatcher answers itself (flows' own values never start with @)
DROP = "@drop"
ASK_INTENT = "@intent:"
RESUME_RE = re.compile(r"^(继续|接着|继续吧|继续办|接着办|继续刚才的?.*|接着刚才的?.*|回到刚才的?.*)[吧了啊。！!]*$")


def store_prompt(messages: list[BotMessage]) -> list[dict[str, Any]]:
    """The flow's last question, kept so that resuming can ask it again exactly."""
    return [{"text": m.text, "quick_replies": m.quick_replies, "card": m.card} for m in messages]


def prompt_messages(state: dict[str, Any]) -> list[BotMessage]:
    return [BotMessage(m.get("text") or "", quick_replies=list(m.get("quick_replies") or []), card=m.get("card"))
            for m in state.get("prompt") or []]


def paused(ctx: BotContext) -> list[dict[str, Any]]:
    return list(ctx.state.get(PAUSED_KEY) or [])


def pause(ctx: BotContext, state: dict[str, Any]) -> None:
    """Put the running flow aside (a flow is paused at most once: the newer pause replaces the older)."""
    stack = [s for s in paused(ctx) if s.get("flow") != state.get("flow")]
    stack.append({k: v for k, v in state.items() if k != "offered"})
    ctx.state[PAUSED_KEY] = stack[-MAX_PAUSED:]
    ctx.state.pop("flow_state", None)
    ctx.state[PAUSED_NOW_KEY] = state.get("flow")


def forget(ctx: BotContext, flow_name: str | None = None) -> None:
    """Drop one paused flow (the resident started it afresh), or all of them (a leak, a hand-off)."""
    stack = [s for s in paused(ctx) if flow_name is not None and s.get("flow") != flow_name]
    if stack:
        ctx.state[PAUSED_KEY] = stack
    else:
        ctx.state.pop(PAUSED_KEY, None)


def has_offer(ctx: BotContext) -> bool:
    """A paused flow was offered back at the end of the last turn (the next message may take it up)."""
    stack = paused(ctx)
    return bool(stack and stack[-1].get("offered"))


def take_offered(ctx: BotContext) -> dict[str, Any] | None:
    """The paused flow offered at the end of the last turn: it is taken now, or let go."""
    stack = paused(ctx)
    if not stack or not stack[-1].get("offered"):
        return None
    entry = stack.pop()
    ctx.state[PAUSED_KEY] = stack
    if not stack:
        ctx.state.pop(PAUSED_KEY, None)
    return entry


def take_by_button(ctx: BotContext, text: str, value: str) -> dict[str, Any] | None:
    """The paused flow whose question offered this button (pressed after the flow was left)."""
    stack = paused(ctx)
    for entry in reversed(stack):
        for message in entry.get("prompt") or []:
            for button in message.get("quick_replies") or []:
                if str(button.get("value")) == value and button.get("text", button.get("label")) == text:
                    stack.remove(entry)
                    ctx.state[PAUSED_KEY] = stack
                    if not stack:
                        ctx.state.pop(PAUSED_KEY, None)
                    return entry
    return None


def offer(ctx: BotContext, result: BotReply, title_of: dict[str, str]) -> BotReply:
    """At the end of a turn with no flow running, offer once to go back to the newest paused flow."""
    stack = paused(ctx)
    if ctx.state.get("flow_state") or not stack or result.handoff_requested or result.emergency:
        return result
    entry = stack[-1]
    entry["offered"] = True
    ctx.state[PAUSED_KEY] = stack
    title = title_of.get(entry.get("flow") or "", "刚才的业务")
    message = BotMessage(f"刚才的「{title}」还没有办完，需要继续吗？", quick_replies=[
        {"label": f"继续{title}", "text": "继续", "value": RESUME}, {"label": "不用了", "text": "不用了", "value": DROP}])
    return replace(result, messages=[*result.messages, message])
