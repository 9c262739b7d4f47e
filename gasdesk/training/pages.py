"""Training pages. Trainees (every desk): /training (materials, exams, sparring), a material, an exam attempt with
its countdown (the page hands in by itself at the deadline; the server refuses anything later) and its result,
and a sparring session as a chat (htmx). Supervisors and admins: /admin/training (banks, exams, materials,
sparring results), a bank's questions with their keys, and an exam's results table."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, OFFICE
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.fields import Id
from gasdesk.kb.models import KbArticle
from gasdesk.kb.render import to_html
from gasdesk.training import service
from gasdesk.training.models import (
    ATTEMPT_STATUS_LABELS,
    KIND_LABELS,
    AttemptStatus,
    Exam,
    ExamAttempt,
    Question,
    QuestionKind,
    SparringScenario,
    SparringSession,
    SparringStatus,
)
from gasdesk.training.schemas import BankIn, ExamIn, QuestionIn, from_form
from gasdesk.web.templating import render
from gasdesk.web.uploads import read_upload_form

router = APIRouter(include_in_schema=False)
_LIST_SPLIT = re.compile(r"[,，、;；\s]+")

LABELS = {
    "kind_labels": {k.value: v for k, v in KIND_LABELS.items()},
    "status_labels": {k.value: v for k, v in ATTEMPT_STATUS_LABELS.items()},
}


# ---------------------------------------------------------------- trainees


async def _home_context(session: AsyncSession, user: User) -> dict[str, Any]:
    attempts = await service.my_attempts(session, user)
    latest: dict[int, ExamAttempt] = {}
    for a in attempts:  # newest first: the first seen per exam is the latest
        latest.setdefault(a.exam_id, a)
    scenarios = await service.list_scenarios(session)
    return {
        **LABELS,
        "materials": await service.list_materials(session),
        "exams": await service.list_exams(session),
        "latest": latest,
        "attempts": attempts,
        "scenarios": [(s, service.script_of(s)) for s in scenarios],
        "scenario_titles": {s.id: s.title for s in scenarios},
        "sparring": await service.my_sparring(session, user),
        "is_manager": service.is_manager(user),
    }


@router.get("/training")
async def training_home(request: Request, session: DbSession, user: User = allow(*OFFICE)) -> Response:
    return render(request, "training_home.html", await _home_context(session, user))


@router.get("/training/materials/{material_id}")
async def material_page(
    request: Request, material_id: Id, session: DbSession, _: User = allow(*OFFICE)
) -> Response:
    row = await service.access_material(session, material_id)
    return render(request, "training_material.html", {"material": row, "body_html": to_html(row.body)})


async def _home_error(request: Request, session: AsyncSession, user: User, exc: GasdeskError) -> Response:
    await rollback(session, user)
    context = await _home_context(session, user)
    context["error"] = exc.message
    return render(request, "training_home.html", context, exc.status_code)


@router.post("/training/exams/{exam_id}/start")
async def start_exam(
    request: Request, exam_id: Id, session: DbSession, user: User = allow(*OFFICE)
) -> Response:
    try:
        exam = await service.access_exam(session, exam_id)
        attempt = await service.do_start_attempt(session, user, exam)
    except GasdeskError as exc:
        return await _home_error(request, session, user, exc)
    return RedirectResponse(f"/training/attempts/{attempt.id}", status_code=303)


async def _attempt_context(session: AsyncSession, attempt: ExamAttempt) -> dict[str, Any]:
    exam = await session.get_one(Exam, attempt.exam_id)
    questions = await service.attempt_questions(session, attempt)
    earned = {r["question_id"]: r["earned"] for r in attempt.results or []}
    trainee = await session.get_one(User, attempt.user_id)
    return {
        **LABELS,
        "attempt": attempt,
        "exam": exam,
        "trainee": trainee,
        "questions": questions,
        "answers": attempt.answers or {},
        "earned": earned,
        "seconds_left": service.seconds_left(attempt),
        "is_open": attempt.status == AttemptStatus.open.value,
        "kinds": QuestionKind,
    }


@router.get("/training/attempts/{attempt_id}")
async def attempt_page(
    request: Request, attempt_id: Id, session: DbSession, user: User = allow(*OFFICE)
) -> Response:
    attempt = await service.access_attempt(session, user, attempt_id)
    return render(request, "training_attempt.html", await _attempt_context(session, attempt))


def _form_answers(form: Any, questions: list[Question]) -> dict[str, Any]:
    """The answers of the exam form: field ``q<id>`` per question (several values for multiple choice)."""
    answers: dict[str, Any] = {}
    for q in questions:
        name = f"q{q.id}"
        if q.kind == QuestionKind.multiple:
            values = [int(v) for v in form.getlist(name) if str(v).isdigit()]
            if values:
                answers[str(q.id)] = values
        elif q.kind == QuestionKind.single:
            value = str(form.get(name) or "")
            if value.isdigit():
                answers[str(q.id)] = int(value)
        elif q.kind == QuestionKind.true_false:
            value = str(form.get(name) or "")
            if value in ("true", "false"):
                answers[str(q.id)] = value == "true"
        else:
            text = str(form.get(name) or "").strip()[:2000]
            if text:
                answers[str(q.id)] = text
    return answers


@router.post("/training/attempts/{attempt_id}/submit")
async def submit_exam(
    request: Request, attempt_id: Id, session: DbSession, user: User = allow(*OFFICE)
) -> Response:
    """Hand in the exam form. Past the deadline the answers are refused (409) and the page shows the result of
    the attempt as closed by the server."""
    form = await request.form()
    attempt = await service.access_attempt(session, user, attempt_id)
    try:
        answers = _form_answers(form, await service.attempt_questions(session, attempt))
        await service.do_submit_attempt(session, user, attempt, answers)
    except GasdeskError as exc:
        await rollback(session, user)
        attempt = await service.access_attempt(session, user, attempt_id)
        context = await _attempt_context(session, attempt)
        context["error"] = exc.message
        return render(request, "training_attempt.html", context, exc.status_code)
    return RedirectResponse(f"/training/attempts/{attempt.id}", status_code=303)


@router.post("/training/sparring")
async def start_sparring(request: Request, session: DbSession, user: User = allow(*OFFICE)) -> Response:
    form = await request.form()
    try:
        scenario_id = str(form.get("scenario_id") or "")
        if not scenario_id.isdigit():
            raise InvalidInput("请选择陪练场景", code="invalid_input")
        scenario = await service.access_scenario(session, int(scenario_id))
        row = await service.do_start_sparring(session, user, scenario)
    except GasdeskError as exc:
        return await _home_error(request, session, user, exc)
    return RedirectResponse(f"/training/sparring/{row.id}", status_code=303)


async def _sparring_context(session: AsyncSession, row: SparringSession, user: User) -> dict[str, Any]:
    scenario = await session.get_one(SparringScenario, row.scenario_id)
    script = service.script_of(scenario)
    labels = {s.id: s.label for s in script.steps}
    return {
        "sparring": row,
        "scenario": scenario,
        "script": script,
        "turns": await service.sparring_turns(session, row),
        "step_labels": labels,
        "done_labels": [labels[s] for s in row.steps_done if s in labels],
        "is_open": row.status == SparringStatus.open.value,
        "is_mine": row.user_id == user.id,
        "trainee": await session.get_one(User, row.user_id),
    }


@router.get("/training/sparring/{sparring_id}")
async def sparring_page(
    request: Request, sparring_id: Id, session: DbSession, user: User = allow(*OFFICE)
) -> Response:
    row = await service.access_sparring(session, user, sparring_id)
    return render(request, "training_sparring.html", await _sparring_context(session, row, user))


@router.post("/training/sparring/{sparring_id}/say")
async def sparring_say(
    request: Request, sparring_id: Id, session: DbSession, user: User = allow(*OFFICE)
) -> Response:
    """htmx: the chat again with the trainee's line and the persona's answer (errors shown in place)."""
    htmx = request.headers.get("HX-Request") == "true"
    form = await request.form()
    row = await service.access_sparring(session, user, sparring_id)
    error = None
    try:
        await service.do_sparring_say(session, user, row, str(form.get("text") or "")[:500])
    except GasdeskError as exc:
        await rollback(session, user)
        row = await service.access_sparring(session, user, sparring_id)
        error = exc.message
    if not htmx and error is None:
        return RedirectResponse(f"/training/sparring/{row.id}", status_code=303)
    context = await _sparring_context(session, row, user)
    context["error"] = error
    return render(request, "training_sparring_chat.html" if htmx else "training_sparring.html", context)


@router.post("/training/sparring/{sparring_id}/finish")
async def sparring_finish(
    request: Request, sparring_id: Id, session: DbSession, user: User = allow(*OFFICE)
) -> Response:
    row = await service.access_sparring(session, user, sparring_id)
    try:
        await service.do_finish_sparring(session, user, row)
    except GasdeskError as exc:
        await rollback(session, user)
        row = await service.access_sparring(session, user, sparring_id)
        context = await _sparring_context(session, row, user)
        context["error"] = exc.message
        return render(request, "training_sparring.html", context, exc.status_code)
    return RedirectResponse(f"/training/sparring/{row.id}", status_code=303)


# ---------------------------------------------------------------- supervisors and admins


async def _admin_context(session: AsyncSession) -> dict[str, Any]:
    banks = await service.list_banks(session)
    counts = dict(
        (
            await session.execute(
                select(Question.bank_id, func.count())
                .where(Question.active.is_(True))
                .group_by(Question.bank_id)
            )
        ).all()
    )
    scenarios = await service.list_scenarios(session)
    return {
        **LABELS,
        "banks": banks,
        "bank_names": {b.id: b.name for b in banks},
        "question_counts": counts,
        "exams": await service.list_exams(session),
        "materials": await service.list_materials(session),
        "articles": list(
            await session.scalars(
                select(KbArticle).where(KbArticle.status == "published").order_by(KbArticle.title)
            )
        ),
        "scenarios": [(s, service.script_of(s)) for s in scenarios],
        "scenario_titles": {s.id: s.title for s in scenarios},
        "sparring": await service.recent_sparring(session),
    }


@router.get("/admin/training")
async def admin_page(request: Request, session: DbSession, _: User = allow(*MANAGERS)) -> Response:
    return render(request, "training_admin.html", await _admin_context(session))


async def _admin_change(
    request: Request,
    session: AsyncSession,
    user: User,
    change: Callable[[Actor], Awaitable[object]],
    back: str = "/admin/training",
) -> Response:
    """Run one change of the admin pages: back to ``back`` on success, or the admin page with the error."""
    try:
        await change(Actor.of(user, "web"))
    except GasdeskError as exc:
        await rollback(session, user)
        context = await _admin_context(session)
        context["error"] = exc.message
        return render(request, "training_admin.html", context, exc.status_code)
    return RedirectResponse(back, status_code=303)


@router.post("/admin/training/banks")
async def add_bank(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    form = await request.form()
    return await _admin_change(
        request,
        session,
        user,
        lambda actor: service.do_create_bank(
            session,
            actor,
            from_form(BankIn, {"name": form.get("name"), "description": form.get("description")}),
        ),
    )


@router.get("/admin/training/banks/{bank_id}")
async def bank_page(
    request: Request, bank_id: Id, session: DbSession, _: User = allow(*MANAGERS)
) -> Response:
    bank = await service.access_bank(session, bank_id)
    return render(
        request,
        "training_bank.html",
        {
            **LABELS,
            "bank": bank,
            "kinds": QuestionKind,
            "questions": await service.bank_questions(session, bank.id),
        },
    )


def question_form(form: Any) -> dict[str, Any]:
    """The add-question form as ``QuestionIn`` input: options one per line, correct options by their 1-based
    numbers (1,3), keywords separated by commas or 、."""
    kind = str(form.get("kind") or "")
    correct_text = str(form.get("correct") or "")
    numbers = [int(n) - 1 for n in _LIST_SPLIT.split(correct_text) if n.isdigit() and int(n) >= 1]
    value = str(form.get("value") or "")
    return {
        "kind": kind,
        "prompt": form.get("prompt"),
        "options": [line.strip() for line in str(form.get("options") or "").splitlines() if line.strip()],
        "correct": numbers,
        "value": {"true": True, "false": False}.get(value),
        "keywords": [k for k in _LIST_SPLIT.split(str(form.get("keywords") or "")) if k],
        "explanation": form.get("explanation") or "",
        "points": form.get("points") or 1,
    }


@router.post("/admin/training/banks/{bank_id}/questions")
async def add_question(
    request: Request, bank_id: Id, session: DbSession, user: User = allow(*MANAGERS)
) -> Response:
    form = await request.form()
    bank = await service.access_bank(session, bank_id)
    try:
        await service.do_add_question(
            session, Actor.of(user, "web"), bank, from_form(QuestionIn, question_form(form))
        )
    except GasdeskError as exc:
        await rollback(session, user)
        bank = await service.access_bank(session, bank_id)
        return render(
            request,
            "training_bank.html",
            {
                **LABELS,
                "bank": bank,
                "kinds": QuestionKind,
                "error": exc.message,
                "questions": await service.bank_questions(session, bank.id),
            },
            exc.status_code,
        )
    return RedirectResponse(f"/admin/training/banks/{bank.id}", status_code=303)


@router.post("/admin/training/exams")
async def add_exam(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    form = await request.form()
    fields = ("bank_id", "title", "question_count", "time_limit_min", "pass_mark")
    return await _admin_change(
        request,
        session,
        user,
        lambda actor: service.do_create_exam(
            session, actor, from_form(ExamIn, {k: form.get(k) for k in fields})
        ),
    )


@router.get("/admin/training/exams/{exam_id}/results")
async def results_page(
    request: Request, exam_id: Id, session: DbSession, _: User = allow(*MANAGERS)
) -> Response:
    exam = await service.access_exam(session, exam_id)
    rows = await service.exam_results(session, exam)
    finished = [a for a, _ in rows if a.score is not None]
    return render(
        request,
        "training_results.html",
        {
            **LABELS,
            "exam": exam,
            "rows": rows,
            "average": round(sum(a.score or 0 for a in finished) / len(finished), 1) if finished else None,
            "pass_rate": round(100 * sum(1 for a in finished if a.passed) / len(finished))
            if finished
            else None,
        },
    )


@router.post("/admin/training/materials")
async def add_material(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    form = await request.form()
    article = str(form.get("kb_article_id") or "")

    async def change(actor: Actor) -> object:
        if not article.isdigit():
            raise InvalidInput("请选择知识库文章", code="invalid_kb_article")
        return await service.do_create_material_from_kb(
            session, actor, int(article), str(form.get("title") or "")
        )

    return await _admin_change(request, session, user, change)


@router.post("/admin/training/materials/upload")
async def upload_material(request: Request, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    async def change(_: Actor) -> object:
        form = await read_upload_form(request, session=session)
        file = form.file("file")
        if file is None:
            raise InvalidInput("请选择要上传的文件", code="file_missing")
        return await service.do_upload_material(session, user, form.value("title"), file.filename, file.data)

    return await _admin_change(request, session, user, change)
