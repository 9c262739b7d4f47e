"""The scoring sheet as data, and the scoring itself: a pure function of a contact's facts.

A sheet (``SheetBody``) lists rules, each with an id, a kind, a weight and the kind's parameters, plus the
sampling rules for manual review. ``score_contact(sheet, facts)`` judges each rule *pass*, *fail* or *na*
(does not apply: no transfer happened, not a leak conversation, a call has no typed agent text) and earns
its weight on a pass, nothing on a fail — except forbidden words, which deduct each word's penalty from the
rule's weight. The total is 100 × earned ÷ the weights of the rules that apply (100 when none applies).

Evidence names message seq numbers, seconds, ticket ids and the agent's matched phrase; a resident's words
are never copied (a negative message is pointed at by its seq only).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gasdesk.bot.dialogue.emergency import SAFETY_INSTRUCTIONS
from gasdesk.errors import InvalidInput

Phrase = Annotated[str, Field(min_length=1, max_length=40)]
Phrases = Annotated[list[Phrase], Field(min_length=1, max_length=100)]
Seconds = Annotated[int, Field(ge=1, le=3600)]

# Texts a disclosure rule may name as its source: the words the bot itself sends (so an agent who pastes the
# bot's safety script passes, and the default key phrases are checked against it in the tests).
SCRIPTS: dict[str, str] = {"gas_leak_safety": SAFETY_INSTRUCTIONS}
# What makes a resident's last message a question left open when the conversation closed.
QUESTION_HINTS = ("?", "？", "吗", "怎么", "什么", "如何", "为什么", "多少", "多久", "哪", "能不能", "可不可以", "是否")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GreetingParams(_Params):
    phrases: Phrases
    first_replies: int = Field(default=1, ge=1, le=5)  # the agent's first N replies may carry it


class ClosingParams(_Params):
    phrases: Phrases
    last_replies: int = Field(default=2, ge=1, le=5)


class ForbiddenWord(_Params):
    word: Phrase
    penalty: int = Field(ge=1, le=100)  # points off this rule's weight, per message containing the word


class ForbiddenParams(_Params):
    words: Annotated[list[ForbiddenWord], Field(min_length=1, max_length=200)]


class DisclosureParams(_Params):
    intents: Annotated[list[Phrase], Field(min_length=1, max_length=20)]  # intents or ticket types
    phrases: Phrases  # key phrases, matched loosely (their characters in order within one sentence)
    script: Literal["gas_leak_safety"] | None = None  # sending this whole text also satisfies the rule


class SecondsParams(_Params):
    max_s: Seconds


class TransferParams(_Params):
    phrases: Phrases  # an explanation before the transfer: 转接, 同事…


class UnresolvedParams(_Params):
    # Tickets the agent is expected to settle in the contact; [] = any open ticket. Repairs and leaks stay
    # open by nature (a crew goes later), so the default sheet leaves them out.
    ticket_types: Annotated[list[Phrase], Field(max_length=20)] = []


class NegativeParams(_Params):
    words: Phrases  # the negative-sentiment lexicon
    acknowledge: Annotated[list[Phrase], Field(max_length=50)] = []  # [] = any reply will do


PARAMS: dict[str, type[_Params]] = {
    "greeting": GreetingParams, "closing": ClosingParams, "forbidden_words": ForbiddenParams,
    "disclosure": DisclosureParams, "first_response": SecondsParams, "avg_response": SecondsParams,
    "long_silence": SecondsParams, "long_hold": SecondsParams, "transfer_explained": TransferParams,
    "closed_unresolved": UnresolvedParams, "negative_unanswered": NegativeParams,
}
KIND_LABELS = {
    "greeting": "开场问候", "closing": "结束语", "forbidden_words": "服务禁语", "disclosure": "必述话术",
    "first_response": "首次响应时长", "avg_response": "平均响应时长", "long_silence": "长时间未回复",
    "long_hold": "通话长时间保持", "transfer_explained": "转接前说明", "closed_unresolved": "未解决即结束",
    "negative_unanswered": "负面情绪未安抚",
}
# Rules judged on the agent's typed words: a call has none (its audio is the recording), so they do not apply.
TEXT_KINDS = frozenset(KIND_LABELS) - {"long_hold", "closed_unresolved"}


class Rule(_Params):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    kind: Literal["greeting", "closing", "forbidden_words", "disclosure", "first_response", "avg_response",
                  "long_silence", "long_hold", "transfer_explained", "closed_unresolved", "negative_unanswered"]
    label: Annotated[str, Field(min_length=1, max_length=40)]
    weight: int = Field(ge=0, le=100)
    params: dict[str, Any] = {}

    @model_validator(mode="after")
    def _params_fit_the_kind(self) -> Rule:
        self.params = PARAMS[self.kind].model_validate(self.params).model_dump()
        return self


class Sampling(_Params):
    complaint_intents: Annotated[list[Phrase], Field(max_length=20)] = ["complaint"]  # always reviewed
    below: float = Field(default=80, ge=0, le=100)  # scores under this are always reviewed
    rate_percent: float = Field(default=5, ge=0, le=100)  # of the rest, chosen by a hash of the conversation id


class SheetBody(_Params):
    name: Annotated[str, Field(min_length=1, max_length=60)]
    rules: Annotated[list[Rule], Field(min_length=1, max_length=50)]
    sampling: Sampling = Sampling()

    @model_validator(mode="after")
    def _ids_unique_and_some_weight(self) -> SheetBody:
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError("规则编号重复")
        if sum(r.weight for r in self.rules) <= 0:
            raise ValueError("规则权重之和必须大于 0")
        return self


DEFAULT_SHEET: dict[str, Any] = {
    "name": "通用质检评分表",
    "rules": [
        {"id": "greeting", "kind": "greeting", "label": "开场问候", "weight": 10,
         "params": {"phrases": ["您好", "很高兴为您服务", "请问有什么可以帮您"], "first_replies": 1}},
        {"id": "closing", "kind": "closing", "label": "结束语", "weight": 10,
         "params": {"phrases": ["感谢", "再见", "还有其他问题吗", "祝您生活愉快"], "last_replies": 2}},
        {"id": "forbidden", "kind": "forbidden_words", "label": "服务禁语", "weight": 20,
         "params": {"words": [{"word": "不知道", "penalty": 10}, {"word": "不归我们管", "penalty": 20},
                              {"word": "你自己看", "penalty": 10}, {"word": "没办法", "penalty": 5},
                              {"word": "不可能", "penalty": 5}, {"word": "烦", "penalty": 10}]}},
        {"id": "leak_safety", "kind": "disclosure", "label": "燃气泄漏安全提示", "weight": 20,
         "params": {"intents": ["gas_leak"], "phrases": ["开窗通风", "关闭阀门", "不要开关电器"],
                    "script": "gas_leak_safety"}},
        {"id": "first_response", "kind": "first_response", "label": "首次响应不超过 30 秒", "weight": 10,
         "params": {"max_s": 30}},
        {"id": "avg_response", "kind": "avg_response", "label": "平均响应不超过 60 秒", "weight": 5,
         "params": {"max_s": 60}},
        {"id": "silence", "kind": "long_silence", "label": "无超过 120 秒未回复", "weight": 5,
         "params": {"max_s": 120}},
        {"id": "hold", "kind": "long_hold", "label": "通话保持不超过 60 秒", "weight": 5, "params": {"max_s": 60}},
        {"id": "transfer", "kind": "transfer_explained", "label": "转接前向居民说明", "weight": 5,
         "params": {"phrases": ["转接", "转给", "同事", "专员", "稍等"]}},
        {"id": "unresolved", "kind": "closed_unresolved", "label": "问题未解决不结束会话", "weight": 5,
         "params": {"ticket_types": ["complaint", "consultation", "info_change"]}},
        {"id": "negative", "kind": "negative_unanswered", "label": "负面情绪及时安抚", "weight": 5,
         "params": {"words": ["投诉", "太差", "不满意", "生气", "垃圾", "气死", "什么破", "太慢", "骗子", "差评"],
                    "acknowledge": ["抱歉", "对不起", "不好意思", "理解", "歉意", "给您带来"]}},
    ],
    "sampling": {"complaint_intents": ["complaint"], "below": 80, "rate_percent": 5},
}


def sheet_problems(body: Any) -> list[str]:
    """Every problem of a sheet body, in Chinese; [] when it can be used."""
    if not isinstance(body, dict):
        return ["评分表应为 JSON 对象"]
    try:
        SheetBody.model_validate(body)
    except ValidationError as exc:
        return [_chinese(error) for error in exc.errors()]
    return []


def _chinese(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("function-after",))
    message = str(error.get("msg", ""))
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    names = {"missing": "缺少该项", "extra_forbidden": "不认识的字段", "literal_error": "取值不在允许范围内",
             "string_pattern_mismatch": "格式不对（小写字母开头，字母数字下划线）", "too_short": "不能为空",
             "too_long": "太长或太多", "greater_than_equal": "太小", "less_than_equal": "太大"}
    return f"{where or '评分表'}：{names.get(error.get('type', ''), '取值无效')}"


def check_sheet(body: Any) -> SheetBody:
    """The sheet, validated; ``InvalidInput`` (code ``invalid_quality_sheet``) lists every problem."""
    problems = sheet_problems(body)
    if problems:
        raise InvalidInput("评分表有误：" + "；".join(problems[:20]), code="invalid_quality_sheet",
                           details={"problems": problems[:50]})
    return SheetBody.model_validate(body)


# ---------------------------------------------------------------- the facts of one contact


@dataclass(frozen=True)
class Turn:
    """One message of the transcript as scoring sees it."""

    seq: int
    sender: str  # resident | agent | bot | system
    text: str
    at: datetime
    event: str | None = None  # a system message's event (agent_joined, transfer, closed…)


@dataclass
class Facts:
    """What the rules judge: the transcript and what surrounds it, gathered by ``service.gather_facts``."""

    channel: str
    turns: list[Turn]
    accepted_at: datetime | None
    closed_at: datetime
    intents: set[str] = field(default_factory=set)  # the bot's intent and the types of the contact's tickets
    open_tickets: list[tuple[int, str]] = field(default_factory=list)  # (id, type) open when it closed
    holds_s: list[int] | None = None  # each hold on the call, seconds; None: no call


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    kind: str
    label: str
    weight: int
    earned: float
    status: str  # pass | fail | na
    evidence: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "kind": self.kind, "label": self.label, "weight": self.weight,
                "earned": self.earned, "status": self.status, "evidence": self.evidence}


@dataclass(frozen=True)
class Scored:
    score: float
    results: list[RuleResult]


def loosely_contains(text: str, phrase: str) -> bool:
    """``phrase``'s characters in order inside one sentence of ``text``, spread over at most twice its
    length plus two (开窗通风 in 打开门窗通风, 关闭阀门 in 关闭燃气表前阀门)."""
    if phrase in text:
        return True
    limit = 2 * len(phrase) + 2
    for sentence in re.split(r"[。；;！!？?\n]", text):
        for start, char in enumerate(sentence):
            if char != phrase[0]:
                continue
            at, found = start, 1
            for want in phrase[1:]:
                at = sentence.find(want, at + 1)
                if at < 0 or at - start >= limit:
                    break
                found += 1
            if found == len(phrase):
                return True
    return False


def _first_phrase(text: str, phrases: list[str]) -> str | None:
    return next((p for p in phrases if p in text), None)


def _seconds(later: datetime, earlier: datetime) -> int:
    return int(round((later - earlier).total_seconds()))


def _response_delays(facts: Facts) -> list[tuple[int, int]]:
    """(resident seq, seconds until the next agent message) for each resident turn after the accept: the
    clock starts at the first resident message the agent has not yet answered."""
    if facts.accepted_at is None:
        return []
    delays, waiting = [], None
    for turn in facts.turns:
        if turn.at < facts.accepted_at:
            continue
        if turn.sender == "resident" and waiting is None:
            waiting = turn
        elif turn.sender == "agent" and waiting is not None:
            delays.append((waiting.seq, _seconds(turn.at, waiting.at)))
            waiting = None
    return delays


def _judge(rule: Rule, facts: Facts) -> tuple[str, float, list[dict[str, Any]]]:
    """(status, earned, evidence) of one rule."""
    p, kind, weight = rule.params, rule.kind, float(rule.weight)
    if kind in TEXT_KINDS and facts.channel == "voice":
        return "na", 0.0, []
    agent = [t for t in facts.turns if t.sender == "agent"]

    def verdict(ok: bool, evidence: list[dict[str, Any]]) -> tuple[str, float, list[dict[str, Any]]]:
        return ("pass", weight, evidence) if ok else ("fail", 0.0, evidence)

    if kind in ("greeting", "closing"):
        window = agent[:p["first_replies"]] if kind == "greeting" else agent[-p["last_replies"]:]
        for turn in window:
            if phrase := _first_phrase(turn.text, p["phrases"]):
                return verdict(True, [{"seq": turn.seq, "phrase": phrase}])
        return verdict(False, [{"seq": t.seq} for t in window])
    if kind == "forbidden_words":
        hits = [{"seq": t.seq, "phrase": w["word"], "penalty": w["penalty"]}
                for t in agent for w in p["words"] if w["word"] in t.text]
        penalty = sum(h["penalty"] for h in hits)
        return ("fail" if hits else "pass"), max(0.0, weight - penalty), hits
    if kind == "disclosure":
        if not facts.intents & set(p["intents"]):
            return "na", 0.0, []
        staff = [t for t in facts.turns if t.sender in ("agent", "bot")]
        script = SCRIPTS.get(p.get("script") or "")
        if script and (said := next((t for t in staff if script in t.text), None)):
            return verdict(True, [{"seq": said.seq, "phrase": p["script"]}])
        evidence, missing = [], False
        for phrase in p["phrases"]:
            said = next((t for t in staff if loosely_contains(t.text, phrase)), None)
            evidence.append({"seq": said.seq, "phrase": phrase} if said else {"phrase": phrase, "missing": True})
            missing = missing or said is None
        return verdict(not missing, evidence)
    if kind == "first_response":
        if facts.accepted_at is None:
            return "na", 0.0, []
        first = next((t for t in agent if t.at >= facts.accepted_at), None)
        if first is None:
            return verdict(False, [{"seconds": None}])
        seconds = _seconds(first.at, facts.accepted_at)
        return verdict(seconds <= p["max_s"], [{"seq": first.seq, "seconds": seconds}])
    if kind in ("avg_response", "long_silence"):
        delays = _response_delays(facts)
        if not delays:
            return "na", 0.0, []
        if kind == "avg_response":
            average = round(sum(s for _, s in delays) / len(delays), 1)
            return verdict(average <= p["max_s"], [{"seconds": average, "replies": len(delays)}])
        long = [{"seq": seq, "seconds": s} for seq, s in delays if s > p["max_s"]]
        return verdict(not long, long)
    if kind == "long_hold":
        if facts.holds_s is None:
            return "na", 0.0, []
        long = [{"hold": i + 1, "seconds": s} for i, s in enumerate(facts.holds_s) if s > p["max_s"]]
        return verdict(not long, long)
    if kind == "transfer_explained":
        transfers = [t for t in facts.turns if t.sender == "system" and t.event == "transfer"]
        if not transfers:
            return "na", 0.0, []
        unexplained = []
        for transfer in transfers:
            before = [t for t in facts.turns if t.seq < transfer.seq and t.sender in ("resident", "agent")]
            said = before[-1] if before and before[-1].sender == "agent" else None
            phrase = _first_phrase(said.text, p["phrases"]) if said else None
            if phrase is None:
                unexplained.append({"seq": transfer.seq})
        return verdict(not unexplained, unexplained)
    if kind == "closed_unresolved":
        types = set(p["ticket_types"])
        evidence = [{"ticket_id": tid} for tid, ttype in facts.open_tickets if not types or ttype in types]
        spoken = [t for t in facts.turns if t.sender in ("resident", "agent")]
        if facts.channel != "voice" and spoken and spoken[-1].sender == "resident" \
                and any(h in spoken[-1].text for h in QUESTION_HINTS):
            evidence.append({"seq": spoken[-1].seq})
        return verdict(not evidence, evidence)
    assert kind == "negative_unanswered"
    negative = [t for t in facts.turns if t.sender == "resident" and any(w in t.text for w in p["words"])]
    if not negative:
        return "na", 0.0, []
    ignored = []
    for turn in negative:
        reply = next((t for t in agent if t.seq > turn.seq), None)
        if reply is None or (p["acknowledge"] and _first_phrase(reply.text, p["acknowledge"]) is None):
            ignored.append({"seq": turn.seq})  # the resident's message by number only, never its words
    return verdict(not ignored, ignored)


def score_contact(sheet: SheetBody, facts: Facts) -> Scored:
    """Judge every rule of ``sheet`` on ``facts``; the total over the rules that apply, 0–100, one decimal."""
    results = []
    for rule in sheet.rules:
        status, earned, evidence = _judge(rule, facts)
        results.append(RuleResult(rule.id, rule.kind, rule.label, rule.weight, earned, status, evidence))
    applicable = [r for r in results if r.status != "na"]
    possible = sum(r.weight for r in applicable)
    score = 100.0 if possible == 0 else round(100 * sum(r.earned for r in applicable) / possible, 1)
    return Scored(score, results)


def sample_bucket(conversation_id: int) -> int:
    """A stable number 0–9999 for a conversation: the same contact is always in or out of the random share."""
    digest = hashlib.sha256(f"quality-sample:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def sample_reason(sampling: Sampling, conversation_id: int, score: float, intents: set[str]) -> str | None:
    """Why a scored contact goes to manual review (complaint, low_score, random), or None."""
    if intents & set(sampling.complaint_intents):
        return "complaint"
    if score < sampling.below:
        return "low_score"
    if sample_bucket(conversation_id) < round(sampling.rate_percent * 100):
        return "random"
    return None
