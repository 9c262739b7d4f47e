"""Tag rules as pure functions: what admins may type, and which rules match what a conversation tells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasdesk.errors import InvalidInput
from gasdesk.tags.models import RuleKind, RuleTarget
from gasdesk.tags.rules import (
    Facts,
    Place,
    RuleSpec,
    check_colour,
    check_params,
    check_tag,
    check_target,
    matches,
    matching_rules,
)

pytestmark = pytest.mark.no_database
NOW = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)
INTENTS = ("payment_howto", "no_gas", "complaint")


def rule(kind: RuleKind, **params) -> RuleSpec:
    return RuleSpec(id=1, tag="t", kind=kind, target=RuleTarget.customer, params=params)


def test_intent_rule_matches_any_intent_the_bot_read() -> None:
    r = rule(RuleKind.intent, intents=["no_gas", "complaint"])
    assert matches(r, Facts(intents=frozenset({"greeting", "complaint"})))
    assert not matches(r, Facts(intents=frozenset({"payment_howto"})))
    assert not matches(r, Facts())


def test_keyword_rule_reads_the_residents_text_full_width_and_case_folded() -> None:
    r = rule(RuleKind.keyword, keywords=["投诉", "12345"])
    assert matches(r, Facts(texts=("我要打１２３４５",)))
    assert matches(
        r,
        Facts(
            texts=(
                "你好",
                "我要投诉你们",
            )
        ),
    )
    assert not matches(r, Facts(texts=("燃气费怎么交",)))
    assert matches(rule(RuleKind.keyword, keywords=["App"]), Facts(texts=("你们的APP打不开",)))


def test_address_rule_compares_district_and_community_without_suffixes() -> None:
    old = rule(RuleKind.address, district="朝阳区", communities=["幸福里", "团结湖小区"])
    assert matches(old, Facts(places=(Place("朝阳", "幸福里小区"),)))
    assert matches(old, Facts(places=(Place("海淀区", "幸福里小区"), Place("朝阳区", "团结湖"))))
    assert not matches(old, Facts(places=(Place("海淀区", "幸福里小区"),)))
    assert not matches(old, Facts(places=(Place("朝阳区", "幸福里二期"),)))
    whole_district = rule(RuleKind.address, district="通州区", communities=[])
    assert matches(whole_district, Facts(places=(Place("通州区", "任意小区"),)))
    assert not matches(old, Facts())


def test_outage_area_rule_counts_notices_in_the_window() -> None:
    r = rule(RuleKind.outage_area, days=90, min_count=3)
    starts = (NOW - timedelta(days=10), NOW - timedelta(days=40), NOW - timedelta(days=80))
    assert matches(r, Facts(places=(Place("朝阳区", "幸福里", starts),), now=NOW))
    old = (NOW - timedelta(days=10), NOW - timedelta(days=40), NOW - timedelta(days=120))
    assert not matches(r, Facts(places=(Place("朝阳区", "幸福里", old),), now=NOW))
    assert not matches(r, Facts(places=(Place("朝阳区", "幸福里", starts),)))  # no clock, no count
    assert matches(
        rule(RuleKind.outage_area, days=200, min_count=3),
        Facts(places=(Place("朝阳区", "幸福里", old),), now=NOW),
    )


def test_matching_rules_keeps_order_and_drops_the_rest() -> None:
    a = RuleSpec(1, "催缴", RuleKind.intent, RuleTarget.conversation, {"intents": ["payment_howto"]})
    b = RuleSpec(2, "投诉倾向", RuleKind.keyword, RuleTarget.conversation, {"keywords": ["投诉"]})
    c = RuleSpec(
        3, "旧改小区", RuleKind.address, RuleTarget.customer, {"district": "", "communities": ["幸福里"]}
    )
    facts = Facts(intents=frozenset({"payment_howto"}), places=(Place("朝阳区", "幸福里小区"),))
    assert [r.id for r in matching_rules([a, b, c], facts)] == [1, 3]


def test_check_params_normalises_each_kind() -> None:
    assert check_params("intent", {"intents": ["no_gas", "no_gas"]}, INTENTS) == (
        RuleKind.intent,
        {"intents": ["no_gas"]},
    )
    assert check_params("keyword", {"keywords": "投诉，举报\n 12345 "}, INTENTS) == (
        RuleKind.keyword,
        {"keywords": ["投诉", "举报", "12345"]},
    )
    assert check_params("address", {"district": " 朝阳区 ", "communities": ["幸福里"]}, INTENTS) == (
        RuleKind.address,
        {"district": "朝阳区", "communities": ["幸福里"]},
    )
    assert check_params("outage_area", {"days": "30", "min_count": 2}, INTENTS) == (
        RuleKind.outage_area,
        {"days": 30, "min_count": 2},
    )
    assert check_target(None, RuleKind.keyword) is RuleTarget.conversation
    assert check_target(None, RuleKind.outage_area) is RuleTarget.customer
    assert check_tag(" 旧改小区 ") == "旧改小区"
    assert check_colour("#AABBCC") == "#aabbcc"


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("intent", {"intents": ["not_an_intent"]}),
        ("intent", {"intents": []}),
        ("keyword", {"keywords": []}),
        ("keyword", {"keywords": ["x" * 41]}),
        ("keyword", {"keywords": [1]}),
        ("address", {"district": "", "communities": []}),
        ("outage_area", {"days": 0}),
        ("outage_area", {"min_count": "many"}),
        ("other", {}),
    ],
)
def test_check_params_refuses_what_a_rule_cannot_use(kind, params) -> None:
    with pytest.raises(InvalidInput):
        check_params(kind, params, INTENTS)


@pytest.mark.parametrize("bad", ["", "   ", "标" * 21])
def test_check_tag_refuses_empty_and_long_names(bad) -> None:
    with pytest.raises(InvalidInput):
        check_tag(bad)


def test_check_colour_refuses_anything_but_hex() -> None:
    with pytest.raises(InvalidInput):
        check_colour("red")
    with pytest.raises(InvalidInput):
        check_target("everyone", RuleKind.intent)
