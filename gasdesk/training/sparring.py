"""AI sparring (AI陪练): a scripted resident, what the trainee did, what the resident says next, and the score.

A scenario's script (``ScenarioScript``, stored as JSON on ``SparringScenario``) names the steps a good agent
takes (安抚, 核实地址, 安全提示…), each with a weight and the ways of recognising it in a trainee's message:
key phrases matched loosely on the bot's normalised text (``quality.rules.loosely_contains``: 开窗通风 in
打开门窗通风), regular expressions on that text, bot intents (``bot.nlu.understand``) and slots
(``date``, ``meter_topic=插卡``). The persona's next line depends on what is done: a reply keyed on a step
just done (with ``when``/``unless`` conditions on the other steps: the resident who was not apologised to
snaps when asked for the address), else a nudge towards the first step still missing, and the closing line
once every required step is done. Everything here is deterministic; ``gasdesk.llm`` may only reword a line.

At the end the transcript is judged twice: the scenario's steps (weighted share done) and the
quality-inspection sheet (``quality.rules.score_contact`` on the transcript as ``Facts``, the persona as
the resident and the trainee as the agent), combined by the script's ``quality_share``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gasdesk.bot.nlu import understand
from gasdesk.bot.nlu.intents import INTENTS
from gasdesk.bot.nlu.normalize import normalize
from gasdesk.errors import InvalidInput
from gasdesk.quality.rules import Facts, RuleResult, Scored, Turn, loosely_contains

StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,29}$")]
Line = Annotated[str, Field(min_length=1, max_length=300)]
Phrase = Annotated[str, Field(min_length=1, max_length=40)]
# The classifier's confidence above which a trainee message's intent counts for a step.
INTENT_CONFIDENCE = 0.55
CLOSING_ID = "closing"
MAX_LINES_PER_TURN = 2  # a trainee who does three things at once still gets a short answer


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Step(_Model):
    id: StepId
    label: Annotated[str, Field(min_length=1, max_length=40)]
    weight: int = Field(ge=1, le=100)
    required: bool = True
    phrases: Annotated[list[Phrase], Field(max_length=50)] = []
    patterns: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=20)] = []
    intents: Annotated[list[str], Field(max_length=10)] = []
    slots: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]], Field(max_length=10)] = []

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"正则表达式无效：{pattern}（{exc}）") from None
        return patterns

    @field_validator("intents")
    @classmethod
    def _known_intents(cls, intents: list[str]) -> list[str]:
        unknown = [i for i in intents if i not in INTENTS]
        if unknown:
            raise ValueError(f"未知的意图：{'、'.join(unknown)}")
        return intents

    @model_validator(mode="after")
    def _recognisable(self) -> Step:
        if not (self.phrases or self.patterns or self.intents or self.slots):
            raise ValueError(f"步骤 {self.id} 没有任何识别方式")
        return self


class Reply(_Model):
    """A persona line: said when the trainee first does step ``on`` (a nudge: when ``on`` is the first missing
    step), provided every step of ``when`` is done and none of ``unless``."""

    id: StepId
    on: StepId
    text: Line
    when: list[StepId] = []
    unless: list[StepId] = []


class ScenarioScript(_Model):
    persona: Annotated[str, Field(min_length=1, max_length=200)]  # who the resident is
    brief: Annotated[str, Field(min_length=1, max_length=300)]  # what the trainee is told before starting
    intent: str  # the contact's bot intent: quality rules keyed on intents (leak safety) apply by it
    opening: Line
    steps: Annotated[list[Step], Field(min_length=1, max_length=20)]
    replies: Annotated[list[Reply], Field(max_length=60)] = []
    nudges: Annotated[list[Reply], Field(max_length=60)] = []
    closing: Line
    fallback: Line
    farewell: Line = "好的，谢谢，再见。"  # after the closing line: the call is over, nothing more is asked
    quality_share: int = Field(default=30, ge=0, le=100)  # percent of the score from the quality sheet

    @model_validator(mode="after")
    def _references(self) -> ScenarioScript:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("步骤编号重复")
        if self.intent not in INTENTS:
            raise ValueError(f"未知的意图：{self.intent}")
        reply_ids = [r.id for r in (*self.replies, *self.nudges)]
        if len(set(reply_ids)) != len(reply_ids) or CLOSING_ID in reply_ids:
            raise ValueError("台词编号重复")
        for reply in (*self.replies, *self.nudges):
            for ref in (reply.on, *reply.when, *reply.unless):
                if ref not in ids:
                    raise ValueError(f"台词 {reply.id} 引用了不存在的步骤 {ref}")
        return self

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


def check_script(body: Any) -> ScenarioScript:
    """The script, validated; ``InvalidInput`` (code ``invalid_scenario``) lists the problems in Chinese."""
    try:
        return ScenarioScript.model_validate(body)
    except ValidationError as exc:
        problems = [str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors()]
        raise InvalidInput("陪练剧本有误：" + "；".join(problems[:10]), code="invalid_scenario") from None


# ---------------------------------------------------------------- recognising what the trainee did


def _slot_hit(wanted: str, slots: dict[str, str]) -> bool:
    name, _, value = wanted.partition("=")
    return name in slots and (not value or slots[name] == value)


def detect_steps(script: ScenarioScript, text: str, now: datetime | None = None) -> list[str]:
    """The steps (ids, in script order) that the trainee's ``text`` performs."""
    clean = normalize(text or "")
    if not clean:
        return []
    reading = None
    if any(s.intents or s.slots for s in script.steps):
        reading = understand(text, now)
    found = []
    for step in script.steps:
        if (
            any(loosely_contains(clean, normalize(p)) for p in step.phrases)
            or any(re.search(p, clean) for p in step.patterns)
            or (
                reading is not None
                and reading.intent in step.intents
                and reading.confidence >= INTENT_CONFIDENCE
            )
            or (reading is not None and any(_slot_hit(w, reading.slots) for w in step.slots))
        ):
            found.append(step.id)
    return found


# ---------------------------------------------------------------- the persona


def _fits(reply: Reply, done: set[str]) -> bool:
    return all(w in done for w in reply.when) and not any(u in done for u in reply.unless)


def missing_steps(script: ScenarioScript, done: set[str], *, required_only: bool = True) -> list[Step]:
    return [s for s in script.steps if s.id not in done and (s.required or not required_only)]


@dataclass(frozen=True)
class PersonaTurn:
    text: str
    said: list[str]  # reply ids used (replies are said once; nudges may repeat)
    complete: bool  # every required step is done


def persona_reply(
    script: ScenarioScript, done_before: set[str], new_steps: list[str], said: set[str]
) -> PersonaTurn:
    """What the resident says after a trainee message that first did ``new_steps``."""
    done = done_before | set(new_steps)
    lines: list[str] = []
    used: list[str] = []
    for step_id in (s.id for s in script.steps if s.id in new_steps):
        reply = next(
            (r for r in script.replies if r.on == step_id and r.id not in said and _fits(r, done)), None
        )
        if reply is not None and len(lines) < MAX_LINES_PER_TURN:
            lines.append(reply.text)
            used.append(reply.id)
    complete = not missing_steps(script, done)
    if complete and CLOSING_ID not in said:
        lines.append(script.closing)
        used.append(CLOSING_ID)
    if not lines and not complete:
        first_missing = missing_steps(script, done)[0]
        nudges = [r for r in script.nudges if r.on == first_missing.id and _fits(r, done)]
        fresh = [r for r in nudges if r.id not in said]
        if nudges:
            reply = (fresh or nudges)[0]
            lines.append(reply.text)
            used.append(reply.id)
    if not lines:
        lines.append(script.farewell if complete else script.fallback)
    return PersonaTurn(" ".join(lines), used, complete)


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True)
class TranscriptLine:
    seq: int
    sender: str  # persona | trainee
    text: str
    at: datetime


def transcript_facts(
    script: ScenarioScript, lines: list[TranscriptLine], started_at: datetime, finished_at: datetime
) -> Facts:
    """The sparring transcript as the quality rules see a web chat: the persona is the resident, the trainee
    the agent who accepted it when the session started."""
    turns = [
        Turn(
            seq=line.seq,
            sender="resident" if line.sender == "persona" else "agent",
            text=line.text,
            at=line.at,
        )
        for line in lines
    ]
    return Facts(
        channel="webchat", turns=turns, accepted_at=started_at, closed_at=finished_at, intents={script.intent}
    )


def step_score(script: ScenarioScript, done: set[str]) -> float:
    """Percent of the steps' weight done (one decimal)."""
    total = sum(s.weight for s in script.steps)
    return round(100 * sum(s.weight for s in script.steps if s.id in done) / total, 1)


def combined_score(script: ScenarioScript, steps: float, quality: float) -> float:
    share = script.quality_share / 100
    return round(steps * (1 - share) + quality * share, 1)


def _finding(result: RuleResult) -> str:
    """One failed quality rule, in Chinese, with what it found (the agent's own words only)."""
    missing = [e["phrase"] for e in result.evidence if e.get("missing")]
    said = [e["phrase"] for e in result.evidence if "phrase" in e and not e.get("missing")]
    seconds = [e["seconds"] for e in result.evidence if isinstance(e.get("seconds"), int | float)]
    if result.kind == "forbidden_words" and said:
        return f"{result.label}：出现“{'”“'.join(dict.fromkeys(said))}”"
    if missing:
        return f"{result.label}：缺少“{'”“'.join(missing)}”"
    if seconds:
        return f"{result.label}：{max(seconds):g} 秒"
    return result.label


def feedback(script: ScenarioScript, done: set[str], scored: Scored) -> dict[str, Any]:
    """Missed steps and quality findings, for the trainee."""
    return {
        "missed": [s.label for s in script.steps if s.id not in done],
        "done": [s.label for s in script.steps if s.id in done],
        "quality": [_finding(r) for r in scored.results if r.status == "fail"],
        "quality_results": [r.as_dict() for r in scored.results],
    }
