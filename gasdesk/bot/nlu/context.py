"""Understanding in context: what a message means given the conversation so far.

Residents do not talk in single sentences. After "查下燃气余额" the next message "那热力呢？" is a balance
question too; after "想约个改线", "下周一吧" answers the booking; "不对，是维修" corrects it; "不是要投诉，是想表扬
一下师傅" negates one request and makes another; "查下余额顺便问下营业厅几点开门" holds two. ``understand`` reads
one message; ``understand_in_context`` reads it against a ``DialogueContext`` (the last request's intent and
slots, kept in the conversation's bot state) and says which of these happened.

The order is fixed and safety first: a possible gas leak wins in any context; then corrections and
negations (the affirmed part is read on its own), two requests joined by a connective (顺便/另外/对了…),
follow-ups and slot answers that carry the last intent, and a plain reading otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gasdesk.bot.nlu.engine import Understanding, understand
from gasdesk.bot.nlu.intents import GAS_LEAK, INTENTS
from gasdesk.bot.nlu.normalize import normalize
from gasdesk.bot.nlu.slots import extract_slots

# Intents that are not requests: they neither carry on a topic nor become the topic.
NOT_TOPICS = frozenset({"greeting", "goodbye", "out_of_scope", "human_agent"})
# Below this the classifier's own reading of a short message gives way to the topic in context.
CARRY_BELOW = 0.6
# A follow-up ("那X呢") keeps the topic unless the classifier is at least this sure of another request.
FOLLOW_UP_SWITCH = 0.8
# A part of a message is a request of its own when the classifier is this sure of it.
SECOND_REQUEST = 0.55
KEPT_SLOTS = frozenset({"service_type", "meter_topic", "meter_type", "date", "time"})
SHORT = 10  # characters (without punctuation): a short message may be an answer or a follow-up

_PUNCT = re.compile(r"[\s,.!?;:~，。！？；：、…·\"'“”()（）]+")
# "不对/说错了/我是说 …": the rest is what the resident meant.
_INTERJECTION = r"^(?:哦|噢|喔|啊|呃|嗯|额|哎|唉|诶|欸)*[,，.。!！\s]*"
_CORRECTION = re.compile(
    _INTERJECTION + r"(?:不对不对|不对|不是不是|不是的|说错了|搞错了|弄错了|打错了|写错了|错了|更正一下|纠正一下|我是说|我的意思是|应该是|改成|换成)"
    r"[,，。.!！\s]*(?:我)?(?:是|要|想)?(?:改成|换成)?(?P<meant>.*)$"
)
# "不是要X，是想Y" / "我不是要X而是Y": X is negated, Y is meant.
_NOT_BUT = re.compile(
    _INTERJECTION + r"(?:我)?(?:并)?不是(?:要|想|说|问|来)?(?P<negated>.{1,14}?)[,，。.\s]*"
    r"(?:而是|我是说|我是想|我想|我要|是想|是要|是问|就是|只是|是)(?P<meant>.+)$"
)
# "改成后天上午", "下午不行，改上午": what follows the last change word replaces what came before it.
_CHANGE = re.compile(r"改成|换成|改到|换到|改为|改约|改在|改|换")
# "不用转人工了", "不是要投诉，就问问": the request named is refused; whatever follows is the message.
_REFUSED = re.compile(
    _INTERJECTION + r"(?:我)?(?:并)?(?:不用|不要|不需要|不想|不是要?|别|无需|先不)(?:再)?(?:转|找|接|去)?"
    r"(?P<refused>人工客服|人工|客服|真人|投诉|举报)(?:了|啦|啊)?[,，。.!！\s]*(?:我)?(?:就|只是|只)?(?P<rest>.*)$"
)
_CANCELS = re.compile(r"取消|不约了|不要了|不用来|别来|撤")
# "…，不是X" at the end of the meant part: drop it ("是改线不是维修" means 改线).
_TRAILING_NOT = re.compile(r"[,，\s]*(?:而)?不是.*$")
# Connectives that join a second request to the first.
_SECOND = re.compile(
    r"(?:[,，。；;\s]+|^)(?:还有就是|还有个事|还有一件事|还有(?=[,，\s])|另外(?:再)?(?:问(?:一?下)?)?|顺便(?:再|也)?(?:问(?:一?下|问)?|说(?:一?下)?)?"
    r"|再问(?:一?下|个事)|还想问(?:一?下)?|还要问(?:一?下)?|对了|以及|同时(?:也)?)[,，:：\s]*"
    r"|(?<=[^\s,，])(?:顺便(?:再|也)?(?:问(?:一?下|问)?)?|另外(?:再)?问(?:一?下)?|再问(?:一?下)?)"
    r"|[,，。；;\s]+(?=(?:再|也)(?:帮我|给我|帮忙|问))"
)
# Clauses split at punctuation; a clause asks for something when it has one of these.
_CLAUSES = re.compile(r"[,，。；;!！?？\s]+")
_ASKS = re.compile(r"吗|呢|多少|怎么|咋|几|哪|什么|啥|查|帮|约|要|想|请|能不能|可以|没有?$|没\S{0,2}$|转人工|投诉|表扬")
CLAUSE_REQUEST = 0.7
# Follow-up forms: "那热力呢", "高新区那个呢", "明天的也可以吗", "还有暖气的".
_FOLLOW_UP = re.compile(
    r"^(?:那|那么|那要是|要是|还有|另外|然后)|(?:呢|的呢|也是吗|也一样吗|也能吗|也行吗|也可以吗|也这样吗)$"
)
# Words of an answer to a question the bot asked (a time, a yes, a polite filler) — not a request by themselves.
_ANSWER_FILLER = re.compile(
    r"地址|户号|手机号?|电话|号码|账号|联系方式|吧|吗|呢|啊|呀|哦|嗯|行|可以|好的?|的|就|那|这|是|要|我|在|都|有人|家里|没问题|麻烦|请|了|左右|以后|之前|前后|比较|方便"
)


@dataclass(frozen=True)
class DialogueContext:
    """The last request in the conversation: its intent and the slots gathered for it."""

    intent: str | None = None
    slots: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> DialogueContext:
        state = state or {}
        intent = state.get("intent")
        slots = state.get("slots") or {}
        if intent not in INTENTS or not isinstance(slots, dict):
            return cls()
        return cls(intent, {str(k): str(v) for k, v in slots.items()})

    def to_state(self) -> dict[str, Any]:
        """What the conversation keeps: the intent and the slots that are not personal data (an account or phone
        number or an address is asked for again by the flow that needs it, never carried in the bot state)."""
        return {"intent": self.intent, "slots": {k: v for k, v in self.slots.items() if k in KEPT_SLOTS}}

    def after(self, reading: Reading) -> DialogueContext:
        """The context for the next message once ``reading`` was understood."""
        intent = reading.understanding.intent
        if intent in NOT_TOPICS or reading.understanding.confidence < CARRY_BELOW:
            return self  # not a request, or too unsure a reading to become the topic
        slots = {**self.slots, **reading.understanding.slots} if intent == self.intent else dict(reading.understanding.slots)
        return DialogueContext(intent, slots)


@dataclass(frozen=True)
class Reading:
    """A message understood in context. ``how``: message | follow_up | slot_answer | correction | negation |
    two_requests. ``also``: further requests in the same message, to be offered next."""

    understanding: Understanding
    how: str = "message"
    also: tuple[str, ...] = ()

    @property
    def intent(self) -> str:
        return self.understanding.intent


def _bare(text: str) -> str:
    return _PUNCT.sub("", normalize(text))


def _is_request(u: Understanding, at_least: float) -> bool:
    return u.intent not in NOT_TOPICS and u.confidence >= at_least


def _carry(context: DialogueContext, u: Understanding, slots: dict[str, str], how: str) -> Reading:
    assert context.intent is not None
    return Reading(Understanding(context.intent, max(u.confidence, CARRY_BELOW), {**context.slots, **slots}), how)


def latest_slots(text: str, now: datetime | None = None) -> dict[str, str]:
    """Slots of ``text`` where a change ("明天不行，改成后天") lets the later value win."""
    slots = extract_slots(text, now)
    changes = list(_CHANGE.finditer(text))
    if changes and changes[-1].end() < len(text):
        slots.update(extract_slots(text[changes[-1].end() :], now))
    return slots


def _meant(text: str, context: DialogueContext, now: datetime | None, how: str) -> Reading:
    """Read the affirmed part of a correction or negation: a request of its own, or slots for the topic."""
    meant = _TRAILING_NOT.sub("", text).strip(" ,，。")
    u = understand(meant, now) if meant else Understanding("out_of_scope", 0.0, {})
    slots = latest_slots(meant, now) if meant else {}
    if context.intent is not None and (not _is_request(u, CARRY_BELOW) or u.intent == context.intent
                                       or len(_bare(meant)) <= 4):
        return _carry(context, u, slots, how)
    return Reading(replace(u, slots=slots), how)


def _answer_rest(text: str, slots: dict[str, str]) -> int | None:
    """Characters left once slot values and fillers are taken out of a message that gives slots ("下周一吧",
    "3101987654", "上午10点半" leave few), or None when it gives none."""
    if not slots:
        return None
    rest = _bare(text)
    for value in slots.values():
        rest = rest.replace(value, "")
    rest = _ANSWER_FILLER.sub("", re.sub(r"\d+", "", rest))
    # What is left may still name the date/time in words (下周一, 大后天晚上6点): few characters are left then.
    return len(rest)


def refused_request(text: str, u: Understanding, context: DialogueContext,
                    now: datetime | None = None) -> Reading | None:
    """A message that turns a request down ("不用转人工了，我自己弄好了", "不是要投诉，就问问") must not be read as
    that request (the classifier, blind to negation, says human_agent/complaint). What follows is read on its
    own; with nothing after it, the topic in context goes on (or the resident is simply still there)."""
    refused = _REFUSED.match(normalize(text).strip())
    if refused is None or u.intent == GAS_LEAK:
        return None
    rest = refused.group("rest").strip(" ,，。")
    if len(_bare(rest)) >= 3:
        meant = understand(rest, now)
        if meant.intent != _REFUSED_INTENTS[refused.group("refused")]:
            return Reading(meant, "negation")
    if context.intent is not None and context.intent not in NOT_TOPICS:
        return Reading(Understanding(context.intent, CARRY_BELOW, u.slots), "negation")
    return Reading(Understanding("greeting", CARRY_BELOW, u.slots), "negation")


# The intent each refused word stands for: reading the rest as that same intent would undo the refusal.
_REFUSED_INTENTS = {"人工客服": "human_agent", "人工": "human_agent", "客服": "human_agent", "真人": "human_agent",
                    "投诉": "complaint", "举报": "complaint"}


def understand_in_context(text: str, context: DialogueContext | None = None, now: datetime | None = None,
                          *, understood: Understanding | None = None) -> Reading:
    """``understand`` plus the conversation so far (see the module docstring). Thread-safe, no I/O.
    ``understood``: the message's own reading when the caller already has it."""
    context = context or DialogueContext()
    u = understood or understand(text, now)
    if u.intent == GAS_LEAK:
        return Reading(u)
    refused = refused_request(text, u, context, now)
    if refused is not None:
        return refused
    clean = normalize(text).strip()

    corrected = _CORRECTION.match(clean)
    if corrected and corrected.group("meant").strip(" ,，。"):
        return _meant(corrected.group("meant"), context, now, "correction")
    negated = _NOT_BUT.match(clean)
    if negated:
        return _meant(negated.group("meant"), context, now, "negation")

    parts = [p for p in _SECOND.split(clean) if len(_bare(p)) >= 2]
    if len(parts) >= 2:
        readings = [understand(p, now) for p in parts]
        first = readings[0] if _is_request(readings[0], SECOND_REQUEST) else u
        others = tuple(dict.fromkeys(r.intent for r in readings[1:] if _is_request(r, SECOND_REQUEST)
                                     and r.intent != first.intent))
        if others:
            return Reading(replace(first, slots=u.slots), "two_requests", others)
    asking = [p for p in _CLAUSES.split(clean) if len(_bare(p)) >= 3 and _ASKS.search(p)]
    if len(asking) >= 2:  # "气价多少，我家欠费了没": two questions side by side, no connective
        readings = [r for r in (understand(p, now) for p in asking) if _is_request(r, CLAUSE_REQUEST)]
        intents = tuple(dict.fromkeys(r.intent for r in readings))
        if len(intents) >= 2:
            return Reading(replace(readings[0], slots=u.slots), "two_requests", intents[1:])

    if context.intent is None or context.intent in NOT_TOPICS:
        return Reading(u)
    if u.intent == "out_of_scope" and u.confidence >= 1.0:  # the domain gate decided: "那电费呢" is not ours
        return Reading(u)
    length = len(re.sub(r"\d+", "", _bare(text)))  # an account number is one word, not ten characters
    # "明天没人，改成周六下午" while booking changes the booking's date; it does not cancel (取消或改约) anything.
    if (context.intent == "appointment_book" and u.intent in ("appointment_book", "appointment_cancel")
            and _CHANGE.search(clean) and {"date", "time"} & u.slots.keys() and not _CANCELS.search(clean)):
        return _carry(context, u, latest_slots(text, now), "correction")
    rest = _answer_rest(text, u.slots)
    # Nothing but values answers the question in context; a few more words ("派个师傅来修吧") may be a new request.
    if rest is not None and (rest <= 3 or rest <= 6 and not (_is_request(u, CARRY_BELOW) and u.intent != context.intent)):
        return _carry(context, u, latest_slots(text, now), "slot_answer")
    if _FOLLOW_UP.search(_bare(text)) and length <= SHORT + 4:
        if u.intent == context.intent or not _is_request(u, FOLLOW_UP_SWITCH) or length <= 6:
            return _carry(context, u, u.slots, "follow_up")
    if length <= SHORT and u.intent not in ("greeting", "goodbye", "human_agent") and (
        u.confidence < CARRY_BELOW or u.intent == "out_of_scope"  # short and not ours on its own: part of the topic
    ):
        return _carry(context, u, u.slots, "follow_up")
    return Reading(u)
