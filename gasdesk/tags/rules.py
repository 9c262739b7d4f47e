"""Tag rules: checking what admins type, and deciding which rules match what is known about a conversation.

Pure functions over ``Facts`` (gathered by ``service.conversation_facts``), so every kind of rule is tested
without a database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gasdesk.customers.addresses import normalize_community, normalize_district
from gasdesk.customers.validation import to_halfwidth
from gasdesk.errors import InvalidInput
from gasdesk.tags.models import RuleKind, RuleTarget

MAX_TAG = 20
MAX_VALUES = 50
MAX_VALUE = 40
MAX_DAYS = 3650
COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOUR = "#607d8b"


@dataclass(frozen=True)
class Place:
    """A home the conversation concerns (the customer's addresses, a ticket's address): area level only."""

    district: str
    community: str
    # start times of the outage notices (not drafts) whose areas cover this place, any age
    outage_starts: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What a closed conversation tells about the resident."""

    intents: frozenset[str] = frozenset()
    texts: tuple[str, ...] = ()  # the resident's own messages
    places: tuple[Place, ...] = ()
    now: datetime | None = None


@dataclass(frozen=True)
class RuleSpec:
    """A rule as evaluated (the stored row's fields, checked)."""

    id: int
    tag: str
    kind: RuleKind
    target: RuleTarget
    params: dict[str, Any] = field(default_factory=dict)


def check_tag(value: str) -> str:
    """A tag name: 1–20 characters after trimming (full-width folded)."""
    tag = to_halfwidth(value or "").strip()
    if not tag:
        raise InvalidInput("标签名称不能为空", code="invalid_tag")
    if len(tag) > MAX_TAG:
        raise InvalidInput(f"标签名称最多 {MAX_TAG} 个字", code="invalid_tag")
    return tag


def check_colour(value: str | None) -> str:
    colour = (value or DEFAULT_COLOUR).strip()
    if not COLOUR_RE.match(colour):
        raise InvalidInput("颜色应为 #RRGGBB 形式", code="invalid_colour")
    return colour.lower()


def _values(raw: Any, what: str) -> list[str]:
    if isinstance(raw, str):
        raw = re.split(r"[\n,，、;；]", raw)
    if not isinstance(raw, list):
        raise InvalidInput(f"{what}应为列表", code="invalid_rule")
    values: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise InvalidInput(f"{what}应为文字", code="invalid_rule")
        value = to_halfwidth(item).strip()
        if not value:
            continue
        if len(value) > MAX_VALUE:
            raise InvalidInput(f"{what}每项最多 {MAX_VALUE} 个字", code="invalid_rule")
        if value not in values:
            values.append(value)
    if len(values) > MAX_VALUES:
        raise InvalidInput(f"{what}最多 {MAX_VALUES} 项", code="invalid_rule")
    return values


def _int(raw: Any, what: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what}应为整数", code="invalid_rule") from None
    if not low <= value <= high:
        raise InvalidInput(f"{what}应在 {low}–{high} 之间", code="invalid_rule")
    return value


def check_params(
    kind: str, params: dict[str, Any], known_intents: Iterable[str]
) -> tuple[RuleKind, dict[str, Any]]:
    """The rule's parameters for its kind, normalised; ``InvalidInput`` for anything a rule cannot use."""
    try:
        rule_kind = RuleKind(kind)
    except ValueError:
        raise InvalidInput(f"未知的规则类型: {str(kind)[:20]!r}", code="invalid_rule") from None
    if rule_kind is RuleKind.intent:
        intents = _values(params.get("intents"), "意图")
        unknown = [i for i in intents if i not in set(known_intents)]
        if unknown:
            raise InvalidInput(f"未知的意图: {unknown[0][:40]!r}", code="invalid_rule")
        if not intents:
            raise InvalidInput("请至少选择一个意图", code="invalid_rule")
        return rule_kind, {"intents": intents}
    if rule_kind is RuleKind.keyword:
        keywords = _values(params.get("keywords"), "关键词")
        if not keywords:
            raise InvalidInput("请至少填写一个关键词", code="invalid_rule")
        return rule_kind, {"keywords": keywords}
    if rule_kind is RuleKind.address:
        district = to_halfwidth(str(params.get("district") or "")).strip()
        if len(district) > MAX_VALUE:
            raise InvalidInput("区县名称过长", code="invalid_rule")
        communities = _values(params.get("communities") or [], "小区")
        if not district and not communities:
            raise InvalidInput("地址规则需要区县或小区", code="invalid_rule")
        return rule_kind, {"district": district, "communities": communities}
    return rule_kind, {
        "days": _int(params.get("days", 90), "统计天数", 1, MAX_DAYS),
        "min_count": _int(params.get("min_count", 3), "停气次数", 1, 1000),
    }


def check_target(value: str | None, kind: RuleKind) -> RuleTarget:
    """Where the tag goes; by default the conversation for what was said, the customer for where they live."""
    if not value:
        return RuleTarget.conversation if kind in (RuleKind.intent, RuleKind.keyword) else RuleTarget.customer
    try:
        return RuleTarget(value)
    except ValueError:
        raise InvalidInput("标签对象应为 customer、conversation 或 both", code="invalid_rule") from None


def _fold(text: str) -> str:
    return to_halfwidth(text).lower()


def place_matches(place: Place, district: str, communities: Sequence[str]) -> bool:
    """District equal (when the rule names one) and the community one of the rule's (when it names any);
    names compare without their suffixes (朝阳区 = 朝阳, 幸福里小区 = 幸福里)."""
    if district and normalize_district(district) != normalize_district(place.district):
        return False
    if not communities:
        return True
    here = normalize_community(place.community)
    return bool(here) and any(normalize_community(c) == here for c in communities)


def outage_count(place: Place, days: int, now: datetime) -> int:
    since = now - timedelta(days=days)
    return sum(1 for start in place.outage_starts if since <= start <= now)


def matches(rule: RuleSpec, facts: Facts) -> bool:
    """Whether ``rule`` holds for the conversation ``facts`` describe."""
    params = rule.params
    if rule.kind is RuleKind.intent:
        return bool(facts.intents & set(params.get("intents", ())))
    if rule.kind is RuleKind.keyword:
        texts = [_fold(t) for t in facts.texts]
        return any(_fold(k) in t for k in params.get("keywords", ()) for t in texts)
    if rule.kind is RuleKind.address:
        return any(
            place_matches(p, params.get("district", ""), params.get("communities", ())) for p in facts.places
        )
    if facts.now is None:
        return False
    return any(
        outage_count(p, int(params.get("days", 90)), facts.now) >= int(params.get("min_count", 3))
        for p in facts.places
    )


def matching_rules(rules: Iterable[RuleSpec], facts: Facts) -> list[RuleSpec]:
    """The rules that match, in the order given."""
    return [rule for rule in rules if matches(rule, facts)]
