"""Training over REST: materials, exams and attempts, sparring (every desk); banks, questions and results
(supervisors and admins). A trainee sees their own attempts and sessions only, and an attempt's answer key
only once it is closed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE
from gasdesk.conversations.attachments import serve_attachment
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Id
from gasdesk.training import service
from gasdesk.training.models import AttemptStatus, ExamAttempt, Question, SparringSession, TrainingMaterial
from gasdesk.training.schemas import (
    AnswersIn,
    AttemptOut,
    BankIn,
    BankOut,
    ExamIn,
    ExamOut,
    MaterialFromKbIn,
    MaterialOut,
    QuestionIn,
    QuestionKeyOut,
    QuestionOut,
    ResultRow,
    ReviewOut,
    SayIn,
    ScenarioOut,
    SparringOut,
    SparringStartIn,
    SparringTurnOut,
)
from gasdesk.web.uploads import read_upload_form

router = APIRouter(prefix="/api/v1/training", tags=["training"])


def material_out(row: TrainingMaterial) -> MaterialOut:
    return MaterialOut(
        id=row.id,
        title=row.title,
        source=row.source,
        body=row.body,
        kb_article_id=row.kb_article_id,
        file_url=f"/api/v1/training/materials/{row.id}/file" if row.attachment_id else None,
        created_at=row.created_at,
    )


def question_out(q: Question) -> QuestionOut:
    return QuestionOut(id=q.id, kind=q.kind, prompt=q.prompt, options=list(q.options or []), points=q.points)


def question_key_out(q: Question) -> QuestionKeyOut:
    return QuestionKeyOut(**question_out(q).model_dump(), key=dict(q.key or {}), explanation=q.explanation)


def exam_out(e: Any) -> ExamOut:
    return ExamOut(
        id=e.id,
        bank_id=e.bank_id,
        title=e.title,
        question_count=e.question_count,
        time_limit_min=e.time_limit_min,
        pass_mark=e.pass_mark,
    )


async def attempt_out(session: DbSession, attempt: ExamAttempt) -> AttemptOut:
    questions = await service.attempt_questions(session, attempt)
    review = None
    if attempt.status != AttemptStatus.open.value:  # the key only once nothing can be changed
        earned = {r["question_id"]: r["earned"] for r in attempt.results or []}
        review = [
            ReviewOut(
                question=question_key_out(q),
                answer=(attempt.answers or {}).get(str(q.id)),
                earned=earned.get(q.id, 0.0),
            )
            for q in questions
        ]
    return AttemptOut(
        id=attempt.id,
        exam_id=attempt.exam_id,
        user_id=attempt.user_id,
        status=attempt.status,
        started_at=attempt.started_at,
        deadline_at=attempt.deadline_at,
        finished_at=attempt.finished_at,
        seconds_left=service.seconds_left(attempt),
        score=attempt.score,
        passed=attempt.passed,
        answers=dict(attempt.answers or {}),
        questions=[question_out(q) for q in questions],
        review=review,
    )


async def sparring_out(session: DbSession, row: SparringSession) -> SparringOut:
    turns = await service.sparring_turns(session, row)
    return SparringOut(
        id=row.id,
        scenario_id=row.scenario_id,
        user_id=row.user_id,
        status=row.status,
        steps_done=list(row.steps_done or []),
        turns=[
            SparringTurnOut(seq=t.seq, sender=t.sender, text=t.text, steps=list(t.steps or []), at=t.at)
            for t in turns
        ],
        step_score=row.step_score,
        quality_score=row.quality_score,
        score=row.score,
        feedback={k: v for k, v in (row.feedback or {}).items() if k != "quality_results"},
    )


# ---------------------------------------------------------------- materials


@router.get("/materials", response_model=list[MaterialOut])
async def materials(session: DbSession, _: User = allow(*OFFICE)) -> list[MaterialOut]:
    return [material_out(m) for m in await service.list_materials(session)]


@router.get("/materials/{material_id}", response_model=MaterialOut)
async def material(material_id: Id, session: DbSession, _: User = allow(*OFFICE)) -> MaterialOut:
    return material_out(await service.access_material(session, material_id))


@router.get("/materials/{material_id}/file", response_class=Response)
async def material_file(material_id: Id, session: DbSession, _: User = allow(*OFFICE)) -> Response:
    """The uploaded document of a material (a download)."""
    row = await service.access_material(session, material_id)
    return serve_attachment(await service.material_file(session, row))


@router.post("/materials", status_code=201, response_model=MaterialOut)
async def material_from_kb(
    body: MaterialFromKbIn, session: DbSession, user: User = allow(*MANAGERS)
) -> MaterialOut:
    """A material copied from a knowledge-base article."""
    row = await service.do_create_material_from_kb(
        session, Actor.of(user, "api"), body.kb_article_id, body.title
    )
    return material_out(row)


@router.post("/materials/upload", status_code=201, response_model=MaterialOut)
async def material_upload(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> MaterialOut:
    """A material from an uploaded document: multipart fields ``file`` (PDF, .docx, .txt) and ``title``."""
    form = await read_upload_form(request, session=session)
    file = form.file("file")
    if file is None:
        raise InvalidInput("请选择要上传的文件", code="file_missing")
    return material_out(
        await service.do_upload_material(session, user, form.value("title"), file.filename, file.data)
    )


# ---------------------------------------------------------------- banks (managers)


@router.post("/banks", status_code=201, response_model=BankOut)
async def create_bank(body: BankIn, session: DbSession, user: User = allow(*MANAGERS)) -> BankOut:
    """A new, empty question bank."""
    row = await service.do_create_bank(session, Actor.of(user, "api"), body)
    return BankOut(id=row.id, name=row.name, description=row.description)


@router.get("/banks/{bank_id}/questions", response_model=list[QuestionKeyOut])
async def questions(bank_id: Id, session: DbSession, _: User = allow(*MANAGERS)) -> list[QuestionKeyOut]:
    """A bank's questions with their keys (managers only)."""
    bank = await service.access_bank(session, bank_id)
    return [question_key_out(q) for q in await service.bank_questions(session, bank.id)]


@router.post("/banks/{bank_id}/questions", status_code=201, response_model=QuestionKeyOut)
async def add_question(
    bank_id: Id, body: QuestionIn, session: DbSession, user: User = allow(*MANAGERS)
) -> QuestionKeyOut:
    bank = await service.access_bank(session, bank_id)
    return question_key_out(await service.do_add_question(session, Actor.of(user, "api"), bank, body))


# ---------------------------------------------------------------- exams and attempts


@router.get("/exams", response_model=list[ExamOut])
async def exams(session: DbSession, _: User = allow(*OFFICE)) -> list[ExamOut]:
    return [exam_out(e) for e in await service.list_exams(session)]


@router.post("/exams", status_code=201, response_model=ExamOut)
async def create_exam(body: ExamIn, session: DbSession, user: User = allow(*MANAGERS)) -> ExamOut:
    return exam_out(await service.do_create_exam(session, Actor.of(user, "api"), body))


@router.get("/exams/{exam_id}/results", response_model=list[ResultRow])
async def results(exam_id: Id, session: DbSession, _: User = allow(*MANAGERS)) -> list[ResultRow]:
    """Every trainee's attempts at the exam (supervisors and admins)."""
    exam = await service.access_exam(session, exam_id)
    return [
        ResultRow(
            attempt_id=a.id,
            user_id=a.user_id,
            name=name,
            status=a.status,
            started_at=a.started_at,
            finished_at=a.finished_at,
            score=a.score,
            passed=a.passed,
        )
        for a, name in await service.exam_results(session, exam)
    ]


@router.post("/exams/{exam_id}/attempts", status_code=201, response_model=AttemptOut)
async def start_attempt(exam_id: Id, session: DbSession, user: User = allow(*OFFICE)) -> AttemptOut:
    """Start the exam (or resume the open attempt): the questions without their keys, and the deadline."""
    exam = await service.access_exam(session, exam_id)
    return await attempt_out(session, await service.do_start_attempt(session, user, exam))


@router.get("/attempts/mine", response_model=list[ResultRow])
async def my_attempts(session: DbSession, user: User = allow(*OFFICE)) -> list[ResultRow]:
    return [
        ResultRow(
            attempt_id=a.id,
            user_id=a.user_id,
            name=user.display_name,
            status=a.status,
            started_at=a.started_at,
            finished_at=a.finished_at,
            score=a.score,
            passed=a.passed,
        )
        for a in await service.my_attempts(session, user)
    ]


@router.get("/attempts/{attempt_id}", response_model=AttemptOut)
async def attempt(attempt_id: Id, session: DbSession, user: User = allow(*OFFICE)) -> AttemptOut:
    """One's own attempt (managers: anyone's); the review with keys once it is closed."""
    return await attempt_out(session, await service.access_attempt(session, user, attempt_id))


@router.put("/attempts/{attempt_id}/answers", response_model=AttemptOut)
async def save_answers(
    attempt_id: Id, body: AnswersIn, session: DbSession, user: User = allow(*OFFICE)
) -> AttemptOut:
    """Save answers before the deadline; after it: 409 ``attempt_expired`` (and the attempt is closed)."""
    row = await service.access_attempt(session, user, attempt_id)
    await service.do_save_answers(session, user, row, body.answers)
    return await attempt_out(session, row)


@router.post("/attempts/{attempt_id}/submit", response_model=AttemptOut)
async def submit(
    attempt_id: Id, body: AnswersIn, session: DbSession, user: User = allow(*OFFICE)
) -> AttemptOut:
    """Hand in (with any last answers): the score and the review with the keys."""
    row = await service.access_attempt(session, user, attempt_id)
    await service.do_submit_attempt(session, user, row, body.answers)
    return await attempt_out(session, row)


# ---------------------------------------------------------------- sparring


@router.get("/scenarios", response_model=list[ScenarioOut])
async def scenarios(session: DbSession, _: User = allow(*OFFICE)) -> list[ScenarioOut]:
    return [
        ScenarioOut(id=s.id, code=s.code, title=s.title, brief=service.script_of(s).brief)
        for s in await service.list_scenarios(session)
    ]


@router.post("/sparring", status_code=201, response_model=SparringOut)
async def start_sparring(
    body: SparringStartIn, session: DbSession, user: User = allow(*OFFICE)
) -> SparringOut:
    scenario = await service.access_scenario(session, body.scenario_id)
    return await sparring_out(session, await service.do_start_sparring(session, user, scenario))


@router.get("/sparring/{sparring_id}", response_model=SparringOut)
async def sparring(sparring_id: Id, session: DbSession, user: User = allow(*OFFICE)) -> SparringOut:
    return await sparring_out(session, await service.access_sparring(session, user, sparring_id))


@router.post("/sparring/{sparring_id}/turns", response_model=SparringOut)
async def say(sparring_id: Id, body: SayIn, session: DbSession, user: User = allow(*OFFICE)) -> SparringOut:
    """The trainee's message; the answer holds the persona's reply as the last turn."""
    row = await service.access_sparring(session, user, sparring_id)
    await service.do_sparring_say(session, user, row, body.text)
    return await sparring_out(session, row)


@router.post("/sparring/{sparring_id}/finish", response_model=SparringOut)
async def finish(sparring_id: Id, session: DbSession, user: User = allow(*OFFICE)) -> SparringOut:
    """End the session: the score (steps and quality) and the feedback."""
    row = await service.access_sparring(session, user, sparring_id)
    await service.do_finish_sparring(session, user, row)
    return await sparring_out(session, row)
