"""Understanding in context: follow-ups, slot answers, corrections, negations and two requests in one message.
Sentences here are written for these tests (not taken from the evaluation sets)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gasdesk.bot.nlu.context import DialogueContext, understand_in_context

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Thursday


def _after(*texts: str) -> DialogueContext:
    context = DialogueContext()
    for text in texts:
        context = context.after(understand_in_context(text, context, NOW))
    return context


def test_a_follow_up_keeps_the_topic() -> None:
    context = _after("帮我查一下燃气费还剩多少")
    reading = understand_in_context("那暖气的呢？", context, NOW)
    assert (reading.intent, reading.how) == ("balance_query", "follow_up")


def test_a_slot_answer_keeps_the_topic_and_adds_the_slot() -> None:
    context = _after("我家要约个安检")
    reading = understand_in_context("下周二上午吧", context, NOW)
    assert (reading.intent, reading.how) == ("appointment_book", "slot_answer")
    assert reading.understanding.slots["date"] == "2026-12-08"
    assert reading.understanding.slots["service_type"] == "安检"  # carried from the first message


def test_a_bare_account_number_answers_the_question_in_context() -> None:
    context = _after("我想问问家里还欠不欠燃气费")
    reading = understand_in_context("户号2301234567", context, NOW)
    assert (reading.intent, reading.understanding.slots["account_no"]) == ("balance_query", "2301234567")


def test_a_correction_replaces_the_slot() -> None:
    context = _after("约个师傅来维修")
    reading = understand_in_context("说错了，是改线，不是维修", context, NOW)
    assert (reading.intent, reading.how) == ("appointment_book", "correction")
    assert reading.understanding.slots["service_type"] == "改线"


def test_a_changed_date_wins_over_the_first_one() -> None:
    context = _after("预约开栓")
    reading = understand_in_context("明天没人，改成周六下午", context, NOW)
    assert reading.intent == "appointment_book"
    assert reading.understanding.slots["date"] == "2026-12-05"


def test_a_negation_reads_what_is_meant() -> None:
    reading = understand_in_context("我不是要投诉，是想夸夸上次来的抢修师傅", DialogueContext(), NOW)
    assert (reading.intent, reading.how) == ("praise", "negation")


@pytest.mark.parametrize("text", ["不用转人工了", "先不找人工客服了", "不想投诉了"])
def test_a_refused_request_is_not_that_request(text: str) -> None:
    reading = understand_in_context(text, DialogueContext(), NOW)
    assert reading.intent not in ("human_agent", "complaint")
    in_topic = understand_in_context(text, _after("营业厅几点关门"), NOW)
    assert in_topic.intent == "branch_info"


def test_two_requests_in_one_message_are_both_found() -> None:
    reading = understand_in_context("帮我查下欠费多少，另外问一下营业厅周末开不开", DialogueContext(), NOW)
    assert (reading.intent, reading.how, reading.also) == ("balance_query", "two_requests", ("branch_info",))


def test_a_new_clear_request_changes_the_topic() -> None:
    context = _after("查一下燃气余额")
    reading = understand_in_context("我家暖气片一点都不热", context, NOW)
    assert reading.intent == "heating_not_warm"


def test_a_leak_wins_in_any_context() -> None:
    context = _after("约个安检")
    assert understand_in_context("那个 厨房里有股煤气味 咋办", context, NOW).intent == "gas_leak"


def test_another_utility_is_not_carried_into_the_topic() -> None:
    context = _after("查一下燃气余额")
    assert understand_in_context("那电费呢", context, NOW).intent == "out_of_scope"


def test_the_kept_state_holds_no_personal_data() -> None:
    context = _after("查余额，户号2301234567，手机13912345678")
    assert context.intent == "balance_query"
    assert context.to_state() == {"intent": "balance_query", "slots": {}}
    assert DialogueContext.from_state({"intent": "nonsense", "slots": {}}) == DialogueContext()
