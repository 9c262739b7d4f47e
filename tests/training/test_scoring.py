"""Exam scoring, one question kind at a time, and the attempt total; the server-side deadline of an attempt
(answers after it refused with 409, the attempt closed on the answers saved before it, and closed for a
results table when nobody comes back)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.db import commit
from gasdesk.training import service
from gasdesk.training.models import AttemptStatus, QuestionKind
from gasdesk.training.schemas import BankIn, ExamIn, QuestionIn
from gasdesk.training.scoring import QuestionView, answer_fraction, keywords_present, score_attempt
from tests.factories import staff_user

ACTOR = Actor.system("training-test", "test")


def test_single_choice_is_all_or_nothing() -> None:
    key = {"option": 2}
    assert answer_fraction(QuestionKind.single, key, 2) == 1.0
    assert answer_fraction(QuestionKind.single, key, "2") == 1.0  # a form's value
    assert answer_fraction(QuestionKind.single, key, 1) == 0.0
    assert answer_fraction(QuestionKind.single, key, None) == 0.0
    assert answer_fraction(QuestionKind.single, key, True) == 0.0  # not an index


def test_multiple_choice_needs_exactly_the_right_options() -> None:
    key = {"options": [0, 1, 3]}
    assert answer_fraction(QuestionKind.multiple, key, [3, 0, 1]) == 1.0
    assert answer_fraction(QuestionKind.multiple, key, [0, 1]) == 0.0  # one missing
    assert answer_fraction(QuestionKind.multiple, key, [0, 1, 2, 3]) == 0.0  # one too many
    assert answer_fraction(QuestionKind.multiple, key, []) == 0.0


def test_true_false() -> None:
    assert answer_fraction(QuestionKind.true_false, {"value": False}, False) == 1.0
    assert answer_fraction(QuestionKind.true_false, {"value": False}, "false") == 1.0
    assert answer_fraction(QuestionKind.true_false, {"value": False}, True) == 0.0
    assert answer_fraction(QuestionKind.true_false, {"value": True}, "maybe") == 0.0


def test_short_answer_earns_the_share_of_keywords_after_normalisation() -> None:
    key = {"keywords": ["开窗|通风", "电器", "阀门|关阀", "室外"]}
    assert answer_fraction(QuestionKind.short_answer, key, "先开窗，别碰电器，关阀，到室外打电话") == 1.0
    # traditional characters and full-width text are folded by the bot's normalize
    assert answer_fraction(QuestionKind.short_answer, key, "請打開門窗通風，關閉閥門") == 0.5
    assert answer_fraction(QuestionKind.short_answer, key, "等师傅来") == 0.0
    assert keywords_present(key["keywords"], "ＴＥＳＴ 通风") == ["开窗|通风"]


def test_attempt_total_weighs_points() -> None:
    questions = [
        QuestionView(1, "single", {"option": 0}, 1),
        QuestionView(2, "short_answer", {"keywords": ["插卡", "报修"]}, 2),
        QuestionView(3, "true_false", {"value": True}, 1),
    ]
    score, parts = score_attempt(questions, {"1": 0, "2": "请插卡试试"})
    # 1 + 2 × ½ + 0 of 4 points
    assert score == 50.0
    assert [p.earned for p in parts] == [1.0, 0.5, 0.0]


async def _exam(session, minutes: int = 10, count: int = 3):
    bank = await service.do_create_bank(session, ACTOR, BankIn(name="测试题库"))
    await service.do_add_question(
        session, ACTOR, bank, QuestionIn(kind="single", prompt="一", options=["甲", "乙"], correct=[1])
    )
    await service.do_add_question(
        session, ACTOR, bank, QuestionIn(kind="true_false", prompt="二", value=True)
    )
    await service.do_add_question(
        session, ACTOR, bank, QuestionIn(kind="short_answer", prompt="三", keywords=["开窗", "阀门"])
    )
    exam = await service.do_create_exam(
        session,
        ACTOR,
        ExamIn(bank_id=bank.id, title="测试考试", question_count=count, time_limit_min=minutes, pass_mark=60),
    )
    await commit(session)
    return exam


def _answers(questions) -> dict[str, object]:
    right = {"single": 1, "true_false": True, "short_answer": "开窗并关闭阀门"}
    return {str(q.id): right[q.kind] for q in questions}


async def test_answers_after_the_deadline_are_refused_and_the_attempt_closes_on_what_was_saved(
    session,
) -> None:
    trainee = await staff_user(session, "agent")
    exam = await _exam(session, minutes=1)
    start = clock.utcnow()
    clock.set_now(start)
    attempt = await service.do_start_attempt(session, trainee, exam)
    questions = await service.attempt_questions(session, attempt)
    assert sorted(q.kind for q in questions) == ["short_answer", "single", "true_false"]
    answers = _answers(questions)
    first = questions[0]
    await service.do_save_answers(session, trainee, attempt, {str(first.id): answers[str(first.id)]})
    await commit(session)

    clock.set_now(start + timedelta(seconds=59))  # still in time
    await service.do_save_answers(session, trainee, attempt, {})
    await commit(session)

    clock.set_now(start + timedelta(minutes=1, seconds=10))
    with pytest.raises(service.AttemptExpired) as refused:
        await service.do_submit_attempt(session, trainee, attempt, answers)
    assert refused.value.code == "attempt_expired" and refused.value.status_code == 409
    assert "时间已到" in refused.value.message
    await session.rollback()  # what the request's transaction does with the error: the close was committed
    reloaded = await service.access_attempt(session, trainee, attempt.id)
    assert reloaded.status == AttemptStatus.expired.value
    assert reloaded.answers == {str(first.id): answers[str(first.id)]}  # the late answers were not taken
    assert reloaded.score == round(100 / 3, 1) and reloaded.passed is False
    with pytest.raises(service.AttemptExpired):
        await service.do_save_answers(session, trainee, reloaded, answers)


async def test_an_abandoned_attempt_is_closed_for_the_results_table(session) -> None:
    trainee = await staff_user(session, "agent", display_name="小王")
    exam = await _exam(session, minutes=5)
    start = clock.utcnow()
    clock.set_now(start)
    attempt = await service.do_start_attempt(session, trainee, exam)
    await service.do_save_answers(
        session, trainee, attempt, _answers(await service.attempt_questions(session, attempt))
    )
    await commit(session)
    clock.set_now(start + timedelta(minutes=6))
    rows = await service.exam_results(session, exam)
    assert [(a.id, name, a.status, a.score, a.passed) for a, name in rows] == [
        (attempt.id, "小王", "expired", 100.0, True)
    ]


async def test_submitting_in_time_scores_and_a_second_hand_in_is_refused(session) -> None:
    trainee = await staff_user(session, "agent")
    exam = await _exam(session, count=2)
    attempt = await service.do_start_attempt(session, trainee, exam)
    assert len(attempt.question_ids) == 2
    # starting again resumes the open attempt instead of drawing a new paper
    assert (await service.do_start_attempt(session, trainee, exam)).id == attempt.id
    await service.do_submit_attempt(
        session, trainee, attempt, _answers(await service.attempt_questions(session, attempt))
    )
    await commit(session)
    assert attempt.status == "submitted" and attempt.score == 100.0 and attempt.passed
    with pytest.raises(service.AttemptExpired) as again:
        await service.do_submit_attempt(session, trainee, attempt, {})
    assert again.value.code == "attempt_closed"


async def test_an_exam_needs_enough_questions_in_its_bank(session) -> None:
    bank = await service.do_create_bank(session, ACTOR, BankIn(name="小题库"))
    await service.do_add_question(
        session, ACTOR, bank, QuestionIn(kind="true_false", prompt="一", value=True)
    )
    with pytest.raises(Exception) as refused:
        await service.do_create_exam(
            session,
            ACTOR,
            ExamIn(bank_id=bank.id, title="考", question_count=2, time_limit_min=5, pass_mark=60),
        )
    assert getattr(refused.value, "code", "") == "not_enough_questions"


def test_question_keys_are_checked_against_their_kind() -> None:
    with pytest.raises(ValueError, match="单选题只能有一个正确选项"):
        QuestionIn(kind="single", prompt="x", options=["a", "b"], correct=[0, 1])
    with pytest.raises(ValueError, match="请选择正确选项"):
        QuestionIn(kind="multiple", prompt="x", options=["a", "b"], correct=[2])
    with pytest.raises(ValueError, match="简答题至少需要一个关键词"):
        QuestionIn(kind="short_answer", prompt="x")
    assert QuestionIn(kind="multiple", prompt="x", options=["a", "b", "c"], correct=[2, 0, 2]).key() == {
        "options": [0, 2]
    }
