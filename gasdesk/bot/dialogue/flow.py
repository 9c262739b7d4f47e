"""The flow framework: a flow fills its slots over several turns, keeps its memory in the
conversation's ``bot_state``, and can be corrected or cancelled at any step."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gasdesk.bot.base import BotContext, BotMessage, BotReply
from gasdesk.bot.nlu import Understanding

CANCEL_RE = re.compile(r"^(取消|算了|不用了|不要了|不办了|不约了|退出|结束|没事了|先不了?)[了吧啊呀。！!.]*$|不用了|算了吧|先不(约|办|弄)了")
YES_RE = re.compile(r"^(是|是的|对|对的|好|好的|确认|可以|行|嗯|没错|确定|ok|OK|yes)[的啊呀吧。！!]*$")
FLOW_DONE_KEY = "flow_done"
NO_RE = re.compile(r"^(不是|不对|错了|不行|否|no|NO|不)[的啊呀吧。！!]*$")


@dataclass
class Turn:
    """What the flow receives on each step."""

    text: str
    payload: dict[str, Any]
    understanding: Understanding

    @property
    def choice(self) -> str | None:
        """A quick-reply button's value, if the resident pressed one."""
        value = self.payload.get("value")
        return str(value) if value is not None else None


def reply(*texts: str, quick: list[dict[str, str]] | None = None, card: dict[str, Any] | None = None,
          **kw: Any) -> BotReply:
    messages = [BotMessage(t) for t in texts[:-1]]
    if texts:
        messages.append(BotMessage(texts[-1], quick_replies=quick or [], card=card))
    return BotReply(messages=messages, **kw)


def option(label: str, value: str | None = None) -> dict[str, str]:
    """A quick-reply button that answers the current question."""
    return {"label": label, "text": label, "value": value if value is not None else label}


@dataclass
class Flow:
    """Base class. Subclasses set ``name`` and implement ``start`` and ``step``."""

    name: ClassVar[str] = ""
    intent: ClassVar[str] = ""
    slots: dict[str, Any] = field(default_factory=dict)
    asking: str | None = None
    attempts: int = 0

    def to_state(self) -> dict[str, Any]:
        return {"flow": self.name, "slots": self.slots, "asking": self.asking, "attempts": self.attempts}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Flow:
        return cls(slots=dict(state.get("slots") or {}), asking=state.get("asking"),
                   attempts=int(state.get("attempts") or 0))

    def absorb(self, understanding: Understanding, keys: tuple[str, ...]) -> list[str]:
        """Take slot values the resident mentioned (also corrections: a new value replaces the old)."""
        changed = []
        for key in keys:
            value = understanding.slots.get(key)
            if value and self.slots.get(key) != value:
                changed.append(key)
                self.slots[key] = value
        return changed

    def reprompt(self, question: str, quick: list[dict[str, str]] | None = None) -> BotReply:
        """Ask again; after three failed answers offer a person."""
        self.attempts += 1
        if self.attempts >= 3:
            return reply("抱歉，我还是没能理解。需要为您转接人工客服吗？",
                         quick=[{"label": "转人工", "action": "handoff"}, option("取消", "取消")], understood=False)
        return reply(question, quick=quick, understood=False)

    async def start(self, ctx: BotContext, turn: Turn) -> BotReply:
        """The first turn; most flows treat it like any other step."""
        return await self.step(ctx, turn)

    async def step(self, ctx: BotContext, turn: Turn) -> BotReply:
        raise NotImplementedError

    def finish(self, ctx: BotContext) -> None:
        ctx.state.pop("flow_state", None)
        ctx.state[FLOW_DONE_KEY] = self.name  # the pipeline takes it off to record the turn's outcome
