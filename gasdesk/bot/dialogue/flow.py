"""The flow framework: a flow fills its slots over several turns, keeps its memory in the
conversation's ``bot_state``, and can be corrected or cancelled at any step.

A flow also says what an answer to its current question looks like (``expects``) and which other intents
belong to its topic (``related``): the dispatcher (``gasdesk.bot.nlu_bot``) uses both to tell an answer from
a new request, which pauses the flow instead of being swallowed by it."""

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
# A question or a request in its own right ("…怎么换电池", "查一下余额"), as opposed to a statement that
# reports something (an answer such as "表前阀是开着的").
QUESTION_RE = re.compile(r"[?？]|吗|呢|怎么|怎样|咋|如何|什么|啥|哪|几[点时天号个位]|多少|多久|多长|能不能|可不可以|能否"
                         r"|是否|有没有|为什么|为啥|请问|想问|问一下|问下")
REQUEST_RE = re.compile(r"查一下|查查|查询|帮我|帮忙|我要|我想|想要|告诉我|看一下|看看")
ASKS_RE = re.compile(f"{QUESTION_RE.pattern}|{REQUEST_RE.pattern}")
# The identity check (户号, then the last four digits of the phone) takes numbers at these questions.
NUMBER_ASKS = frozenset({"account_no", "phone_last4"})


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
    title: ClassVar[str] = ""  # how the bot names the flow to the resident ("刚才的「无气报修」…")
    # Intents of the same topic: a statement classified as one of them is part of the flow (e.g. "卡里还有钱"
    # during a no-gas self-check); only a question or request of such an intent leaves the flow.
    related: ClassVar[frozenset[str]] = frozenset()
    # NLU slots the flow takes at any step (answers and corrections).
    answer_slots: ClassVar[tuple[str, ...]] = ()
    # Questions (values of ``asking``) whose answer is free text: statements are answers there, whatever the
    # classifier makes of them; only a question or request leaves the flow.
    free_text: ClassVar[frozenset[str]] = frozenset()
    slots: dict[str, Any] = field(default_factory=dict)
    asking: str | None = None
    attempts: int = 0

    def to_state(self) -> dict[str, Any]:
        return {"flow": self.name, "slots": self.slots, "asking": self.asking, "attempts": self.attempts}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Flow:
        return cls(slots=dict(state.get("slots") or {}), asking=state.get("asking"),
                   attempts=int(state.get("attempts") or 0))

    def expects(self, turn: Turn) -> bool:
        """Whether the message answers the current question: a button, a slot this flow takes, yes or no, or
        the digits the identity check asks for. Flows add what their own questions accept."""
        text = turn.text.strip()
        if turn.choice is not None or YES_RE.match(text) or NO_RE.match(text):
            return True
        if any(turn.understanding.slots.get(key) for key in self.answer_slots):
            return True
        return self.asking in NUMBER_ASKS and bool(re.search(r"\d{4}", text))

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
