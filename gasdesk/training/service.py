"""Training (智能培训): materials, question banks, exams and their timed attempts, and AI sparring sessions.

Managers (``MANAGERS``) add materials (``do_create_material_from_kb`` copies a knowledge-base article;
``do_upload_material`` keeps an uploaded document sealed like a chat file), banks and questions, and exams.
Every desk (``OFFICE``) studies, takes exams and spars.

An attempt draws the exam's questions at random when it starts and gets a deadline (start + time limit). The
server enforces it: an answer or a hand-in after the deadline (``DEADLINE_GRACE``, for the request in flight)
is refused with ``AttemptExpired`` (409 ``attempt_expired``) and the attempt is closed then and there, scored on
what was saved before. Attempts nobody came back to are closed when anyone next lists them
(``close_expired_attempts``), so results tables never show a stale 答题中. The key of a question is only ever
sent with the review of a closed attempt (``schemas.AttemptOut.review``).

A sparring session (``sparring``) keeps its transcript as turns; each trainee turn records the steps it did
first, and the persona's reply follows from the steps done. ``do_finish_sparring`` scores the steps and the
quality sheet of the trainee's team on the transcript.

Every ``do_*`` writes an audit row; finished attempts and sessions emit ``training.completed`` after commit.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, Role
from gasdesk.clock import utcnow
from gasdesk.conversations.attachments import Attachment, check_upload, store_staff_file
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput, NotFound
from gasdesk.event_types import TrainingCompleted
from gasdesk.events import emit
from gasdesk.kb.models import KbArticle
from gasdesk.llm import llm_enabled, phrase_persona_line
from gasdesk.quality.rules import score_contact
from gasdesk.quality.service import active_sheet, sheet_body, team_of
from gasdesk.training.models import (
    AttemptStatus,
    Exam,
    ExamAttempt,
    Question,
    QuestionBank,
    SparringScenario,
    SparringSession,
    SparringStatus,
    SparringTurn,
    TrainingMaterial,
)
from gasdesk.training.scenarios import DEFAULT_SCENARIOS
from gasdesk.training.schemas import BankIn, ExamIn, QuestionIn
from gasdesk.training.scoring import QuestionView, score_attempt
from gasdesk.training.sparring import (
    ScenarioScript,
    TranscriptLine,
    check_script,
    combined_score,
    detect_steps,
    feedback,
    persona_reply,
    step_score,
    transcript_facts,
)

# Answers arriving this long after the deadline still count: the request was sent in time.
DEADLINE_GRACE = timedelta(seconds=3)
MAX_SPARRING_TURNS = 60  # trainee turns in one session
# Uploaded materials: documents only (no pictures), the chat file limits (conversations.attachments).
MATERIAL_TYPES = (".pdf", ".docx", ".txt")
MAX_TEXT_BODY = 200_000


class AttemptExpired(Conflict):
    """An answer or hand-in after the attempt's deadline."""


def is_manager(user: User) -> bool:
    return Role(user.role) in MANAGERS


# ---------------------------------------------------------------- materials


async def list_materials(session: AsyncSession) -> list[TrainingMaterial]:
    return list(
        await session.scalars(
            select(TrainingMaterial)
            .where(TrainingMaterial.active.is_(True))
            .order_by(TrainingMaterial.id.desc())
        )
    )


async def access_material(session: AsyncSession, material_id: int) -> TrainingMaterial:
    row = await session.get(TrainingMaterial, material_id)
    if row is None or not row.active:
        raise NotFound("学习资料不存在", code="material_not_found")
    return row


async def material_file(session: AsyncSession, material: TrainingMaterial) -> Attachment:
    row = await session.get(Attachment, material.attachment_id) if material.attachment_id else None
    if row is None:
        raise NotFound("该资料没有附件", code="file_not_found")
    return row


async def do_create_material_from_kb(
    session: AsyncSession, actor: Actor, article_id: int, title: str = ""
) -> TrainingMaterial:
    """A material with a copy of a knowledge-base article (a later edit of the article does not change what
    trainees studied). Audited."""
    article = await session.get(KbArticle, article_id)
    if article is None:
        raise InvalidInput("知识库文章不存在", code="invalid_kb_article")
    row = TrainingMaterial(
        title=(title.strip() or article.title)[:200],
        body=article.answer,
        source="kb",
        kb_article_id=article.id,
        created_by=actor.user_id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    record_audit(
        session,
        actor,
        "training.material_add",
        "training_material",
        row.id,
        after={"title": row.title, "source": "kb", "kb_article_id": article.id},
    )
    return row


def _text_of(filename: str, data: bytes) -> str:
    """The readable text of a .txt upload (UTF-8 or GBK); other documents are downloaded, not shown."""
    if Path(filename).suffix.lower() != ".txt":
        return ""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)[:MAX_TEXT_BODY]
        except UnicodeDecodeError:
            continue
    raise InvalidInput("无法识别文本文件的编码，请另存为 UTF-8", code="file_type")


async def do_upload_material(
    session: AsyncSession, user: User, title: str, filename: str, data: bytes
) -> TrainingMaterial:
    """A material from an uploaded document (PDF, Word or text; the chat upload limits), stored sealed. Audited."""
    if Path(filename or "").suffix.lower() not in MATERIAL_TYPES:
        raise InvalidInput("学习资料支持 PDF、Word（.docx）和文本（.txt）文件", code="file_type")
    kind = check_upload(filename, data)
    title = (title or "").strip() or Path(filename).stem
    if len(title) > 200:
        raise InvalidInput("标题太长", code="invalid_input")
    body = _text_of(filename, data)
    attachment = await store_staff_file(session, user.id, filename, data, kind, "training")
    row = TrainingMaterial(
        title=title,
        body=body,
        source="upload",
        attachment_id=attachment.id,
        created_by=user.id,
        created_at=attachment.created_at,
    )
    session.add(row)
    await session.flush()
    record_audit(
        session,
        Actor.of(user),
        "training.material_add",
        "training_material",
        row.id,
        after={"title": title, "source": "upload", "file": attachment.name, "size": len(data)},
    )
    return row


# ---------------------------------------------------------------- banks and questions


async def list_banks(session: AsyncSession) -> list[QuestionBank]:
    return list(await session.scalars(select(QuestionBank).order_by(QuestionBank.id)))


async def access_bank(session: AsyncSession, bank_id: int) -> QuestionBank:
    row = await session.get(QuestionBank, bank_id)
    if row is None:
        raise NotFound("题库不存在", code="bank_not_found")
    return row


async def bank_questions(session: AsyncSession, bank_id: int, *, active_only: bool = True) -> list[Question]:
    query = select(Question).where(Question.bank_id == bank_id).order_by(Question.id)
    if active_only:
        query = query.where(Question.active.is_(True))
    return list(await session.scalars(query))


async def do_create_bank(session: AsyncSession, actor: Actor, data: BankIn) -> QuestionBank:
    """A new, empty question bank (the name is unique). Audited."""
    name = data.name.strip()
    if await session.scalar(select(QuestionBank.id).where(QuestionBank.name == name)):
        raise Conflict("题库名称已存在", code="bank_name_taken")
    row = QuestionBank(
        name=name, description=data.description.strip(), created_by=actor.user_id, created_at=utcnow()
    )
    session.add(row)
    await session.flush()
    record_audit(session, actor, "training.bank_add", "training_bank", row.id, after={"name": row.name})
    return row


async def do_add_question(
    session: AsyncSession, actor: Actor, bank: QuestionBank, data: QuestionIn
) -> Question:
    """Add a question (validated with its key by ``QuestionIn``) to ``bank``. Audited (without the key)."""
    row = Question(
        bank_id=bank.id,
        kind=data.kind.value,
        prompt=data.prompt.strip(),
        options=data.stored_options(),
        key=data.key(),
        explanation=data.explanation.strip(),
        points=data.points,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    record_audit(
        session,
        actor,
        "training.question_add",
        "training_bank",
        bank.id,
        after={"question_id": row.id, "kind": row.kind, "points": row.points},
    )
    return row


# ---------------------------------------------------------------- exams


async def list_exams(session: AsyncSession, *, active_only: bool = True) -> list[Exam]:
    query = select(Exam).order_by(Exam.id.desc())
    if active_only:
        query = query.where(Exam.active.is_(True))
    return list(await session.scalars(query))


async def access_exam(session: AsyncSession, exam_id: int) -> Exam:
    row = await session.get(Exam, exam_id)
    if row is None or not row.active:
        raise NotFound("考试不存在", code="exam_not_found")
    return row


async def do_create_exam(session: AsyncSession, actor: Actor, data: ExamIn) -> Exam:
    """An exam drawing ``question_count`` questions from a bank that has at least that many. Audited."""
    bank = await session.get(QuestionBank, data.bank_id)
    if bank is None:
        raise InvalidInput("题库不存在", code="invalid_bank")
    available = len(await bank_questions(session, bank.id))
    if data.question_count > available:
        raise InvalidInput(
            f"题库“{bank.name}”只有 {available} 道题，少于考试题目数量", code="not_enough_questions"
        )
    row = Exam(
        bank_id=bank.id,
        title=data.title.strip(),
        question_count=data.question_count,
        time_limit_min=data.time_limit_min,
        pass_mark=data.pass_mark,
        created_by=actor.user_id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    record_audit(
        session,
        actor,
        "training.exam_add",
        "training_exam",
        row.id,
        after={
            "title": row.title,
            "bank_id": bank.id,
            "question_count": row.question_count,
            "time_limit_min": row.time_limit_min,
            "pass_mark": row.pass_mark,
        },
    )
    return row


# ---------------------------------------------------------------- attempts


async def attempt_questions(session: AsyncSession, attempt: ExamAttempt) -> list[Question]:
    """The attempt's questions in the order drawn (a question deleted since is left out)."""
    rows = {
        q.id: q for q in await session.scalars(select(Question).where(Question.id.in_(attempt.question_ids)))
    }
    return [rows[i] for i in attempt.question_ids if i in rows]


async def do_start_attempt(session: AsyncSession, user: User, exam: Exam) -> ExamAttempt:
    """Start (or resume: one open attempt per trainee and exam) an attempt; its questions are drawn at random.
    Audited."""
    await close_expired_attempts(session, user_id=user.id)
    open_row = await session.scalar(
        select(ExamAttempt).where(
            ExamAttempt.exam_id == exam.id,
            ExamAttempt.user_id == user.id,
            ExamAttempt.status == AttemptStatus.open.value,
        )
    )
    if open_row is not None:
        return open_row
    pool = [q.id for q in await bank_questions(session, exam.bank_id)]
    if len(pool) < exam.question_count:
        raise Conflict("题库题目不足，暂时无法开始考试", code="not_enough_questions")
    now = utcnow()
    row = ExamAttempt(
        exam_id=exam.id,
        user_id=user.id,
        question_ids=random.sample(pool, exam.question_count),
        answers={},
        status=AttemptStatus.open.value,
        started_at=now,
        deadline_at=now + timedelta(minutes=exam.time_limit_min),
    )
    session.add(row)
    await session.flush()
    record_audit(
        session,
        Actor.of(user),
        "training.attempt_start",
        "training_attempt",
        row.id,
        after={"exam_id": exam.id, "questions": len(row.question_ids)},
    )
    return row


async def access_attempt(session: AsyncSession, user: User, attempt_id: int) -> ExamAttempt:
    """The attempt, to its trainee or a manager (anyone else: not found). One past its deadline is closed
    first, so what is read is its result."""
    row = await session.get(ExamAttempt, attempt_id)
    if row is None or (row.user_id != user.id and not is_manager(user)):
        raise NotFound("答卷不存在", code="attempt_not_found")
    if row.status == AttemptStatus.open.value and utcnow() > row.deadline_at + DEADLINE_GRACE:
        await _close_attempt(session, Actor.system("培训", "job"), row, AttemptStatus.expired)
    return row


def seconds_left(attempt: ExamAttempt) -> int:
    if attempt.status != AttemptStatus.open.value:
        return 0
    return max(0, int((attempt.deadline_at - utcnow()).total_seconds()))


async def _close_attempt(
    session: AsyncSession, actor: Actor, attempt: ExamAttempt, status: AttemptStatus
) -> None:
    """Score the attempt on its saved answers and close it. Audited; ``training.completed`` after commit."""
    exam = await session.get_one(Exam, attempt.exam_id)
    questions = await attempt_questions(session, attempt)
    score, scores = score_attempt(
        [QuestionView(q.id, q.kind, q.key, q.points) for q in questions], attempt.answers or {}
    )
    attempt.status, attempt.finished_at = status.value, utcnow()
    attempt.score, attempt.passed = score, score >= exam.pass_mark
    attempt.results = [s.as_dict() for s in scores]
    await session.flush()
    record_audit(
        session,
        actor,
        "training.attempt_submit" if status == AttemptStatus.submitted else "training.attempt_expire",
        "training_attempt",
        attempt.id,
        after={"exam_id": exam.id, "user_id": attempt.user_id, "score": score, "passed": attempt.passed},
    )
    emit(
        session,
        TrainingCompleted(
            kind="exam", record_id=attempt.id, user_id=attempt.user_id, score=score, passed=attempt.passed
        ),
    )


async def close_expired_attempts(
    session: AsyncSession, *, exam_id: int | None = None, user_id: int | None = None
) -> int:
    """Close every open attempt (of an exam, of a trainee) whose deadline has passed; how many."""
    query = select(ExamAttempt).where(
        ExamAttempt.status == AttemptStatus.open.value, ExamAttempt.deadline_at < utcnow() - DEADLINE_GRACE
    )
    if exam_id is not None:
        query = query.where(ExamAttempt.exam_id == exam_id)
    if user_id is not None:
        query = query.where(ExamAttempt.user_id == user_id)
    rows = list(await session.scalars(query))
    for row in rows:
        await _close_attempt(session, Actor.system("培训", "job"), row, AttemptStatus.expired)
    return len(rows)


async def check_answering(session: AsyncSession, user: User, attempt: ExamAttempt) -> None:
    """Only the trainee answers, only while the attempt is open and before its deadline. Past the deadline
    the attempt is closed (committed) and ``AttemptExpired`` raised."""
    if attempt.user_id != user.id:
        raise NotFound("答卷不存在", code="attempt_not_found")
    if attempt.status == AttemptStatus.open.value and utcnow() > attempt.deadline_at + DEADLINE_GRACE:
        await _close_attempt(session, Actor.system("培训", "job"), attempt, AttemptStatus.expired)
    if attempt.status == AttemptStatus.expired.value:
        await commit(
            session
        )  # a close made by this request (here or in access_attempt) stands although it fails
        raise AttemptExpired(
            "考试时间已到，答案未被接受；试卷已按截止前保存的答案自动交卷", code="attempt_expired"
        )
    if attempt.status != AttemptStatus.open.value:
        raise AttemptExpired("本次考试已交卷，不能再修改答案", code="attempt_closed")


def _checked_answers(attempt: ExamAttempt, answers: dict[str, Any]) -> dict[str, Any]:
    known = {str(i) for i in attempt.question_ids}
    unknown = [k for k in answers if k not in known]
    if unknown:
        raise InvalidInput("答案中有不属于本试卷的题目", code="invalid_question")
    return {k: v for k, v in answers.items() if v is not None and v != "" and v != []}


async def do_save_answers(
    session: AsyncSession, user: User, attempt: ExamAttempt, answers: dict[str, Any]
) -> None:
    """Save answers (merged into those saved before) while the attempt is open. Audited (which questions)."""
    await check_answering(session, user, attempt)
    merged = {**(attempt.answers or {}), **_checked_answers(attempt, answers)}
    attempt.answers = merged
    await session.flush()
    record_audit(
        session,
        Actor.of(user),
        "training.attempt_answer",
        "training_attempt",
        attempt.id,
        after={"questions": sorted(answers, key=int)},
    )


async def do_submit_attempt(
    session: AsyncSession, user: User, attempt: ExamAttempt, answers: dict[str, Any] | None = None
) -> ExamAttempt:
    """Hand in (with last answers, if any): scored, closed, audited, ``training.completed``."""
    await check_answering(session, user, attempt)
    if answers:
        attempt.answers = {**(attempt.answers or {}), **_checked_answers(attempt, answers)}
    await _close_attempt(session, Actor.of(user), attempt, AttemptStatus.submitted)
    return attempt


async def my_attempts(session: AsyncSession, user: User) -> list[ExamAttempt]:
    await close_expired_attempts(session, user_id=user.id)
    return list(
        await session.scalars(
            select(ExamAttempt).where(ExamAttempt.user_id == user.id).order_by(ExamAttempt.id.desc())
        )
    )


async def exam_results(session: AsyncSession, exam: Exam) -> list[tuple[ExamAttempt, str]]:
    """Every attempt at ``exam`` with its trainee's name, newest first (expired ones closed first)."""
    await close_expired_attempts(session, exam_id=exam.id)
    rows = await session.execute(
        select(ExamAttempt, User.display_name)
        .join(User, User.id == ExamAttempt.user_id)
        .where(ExamAttempt.exam_id == exam.id)
        .order_by(ExamAttempt.id.desc())
    )
    return [(a, name) for a, name in rows]


# ---------------------------------------------------------------- sparring scenarios


async def list_scenarios(session: AsyncSession) -> list[SparringScenario]:
    return list(
        await session.scalars(
            select(SparringScenario)
            .where(SparringScenario.active.is_(True))
            .order_by(SparringScenario.position, SparringScenario.id)
        )
    )


async def access_scenario(session: AsyncSession, scenario_id: int) -> SparringScenario:
    row = await session.get(SparringScenario, scenario_id)
    if row is None or not row.active:
        raise NotFound("陪练场景不存在", code="scenario_not_found")
    return row


def script_of(scenario: SparringScenario) -> ScenarioScript:
    return ScenarioScript.model_validate(scenario.script)


async def do_save_scenario(
    session: AsyncSession, actor: Actor, code: str, title: str, script: Any, position: int = 100
) -> SparringScenario:
    """Create or replace the scenario ``code`` with a validated script. Audited."""
    body = check_script(script).model_dump()
    row = await session.scalar(select(SparringScenario).where(SparringScenario.code == code))
    before = None if row is None else {"title": row.title, "script": row.script}
    if row is None:
        row = SparringScenario(code=code, created_at=utcnow())
        session.add(row)
    row.title, row.script, row.position, row.active = title, body, position, True
    await session.flush()
    record_audit(
        session,
        actor,
        "training.scenario_save",
        "training_scenario",
        row.id,
        before=before,
        after={"title": title, "script": body},
    )
    return row


async def do_install_default_scenarios(session: AsyncSession, actor: Actor) -> int:
    """The built-in scenarios that are missing (by code); how many were added."""
    have = set(await session.scalars(select(SparringScenario.code)))
    added = 0
    for position, (code, title, script) in enumerate(DEFAULT_SCENARIOS):
        if code not in have:
            await do_save_scenario(session, actor, code, title, script, position=position)
            added += 1
    return added


# ---------------------------------------------------------------- sparring sessions


async def sparring_turns(session: AsyncSession, sparring: SparringSession) -> list[SparringTurn]:
    return list(
        await session.scalars(
            select(SparringTurn).where(SparringTurn.session_id == sparring.id).order_by(SparringTurn.seq)
        )
    )


async def _persona_says(script: ScenarioScript, line: str) -> str:
    """The persona's line, reworded by the LLM when one is configured (the script's words otherwise)."""
    if llm_enabled():
        return await phrase_persona_line(script.persona, line) or line
    return line


def _add_turn(
    session: AsyncSession,
    sparring: SparringSession,
    seq: int,
    sender: str,
    text: str,
    steps: list[str] | None = None,
) -> SparringTurn:
    turn = SparringTurn(
        session_id=sparring.id, seq=seq, sender=sender, text=text, steps=steps or [], at=utcnow()
    )
    session.add(turn)
    return turn


async def do_start_sparring(session: AsyncSession, user: User, scenario: SparringScenario) -> SparringSession:
    """A new session with the persona's opening line. Audited."""
    script = script_of(scenario)
    row = SparringSession(
        scenario_id=scenario.id,
        user_id=user.id,
        status=SparringStatus.open.value,
        steps_done=[],
        said=[],
        started_at=utcnow(),
        feedback={},
    )
    session.add(row)
    await session.flush()
    _add_turn(session, row, 1, "persona", await _persona_says(script, script.opening))
    await session.flush()
    record_audit(
        session,
        Actor.of(user),
        "training.sparring_start",
        "training_sparring",
        row.id,
        after={"scenario": scenario.code},
    )
    return row


async def access_sparring(session: AsyncSession, user: User, sparring_id: int) -> SparringSession:
    """The session, to its trainee or a manager (anyone else: not found)."""
    row = await session.get(SparringSession, sparring_id)
    if row is None or (row.user_id != user.id and not is_manager(user)):
        raise NotFound("陪练记录不存在", code="sparring_not_found")
    return row


def _check_own_open(user: User, sparring: SparringSession) -> None:
    if sparring.user_id != user.id:
        raise NotFound("陪练记录不存在", code="sparring_not_found")
    if sparring.status != SparringStatus.open.value:
        raise Conflict("本次陪练已结束", code="sparring_finished")


async def do_sparring_say(
    session: AsyncSession, user: User, sparring: SparringSession, text: str
) -> SparringTurn:
    """The trainee says ``text``: the steps it does first are recorded, and the persona answers (the answer
    is returned). Audited (the steps, not the words)."""
    _check_own_open(user, sparring)
    text = text.strip()
    if not text:
        raise InvalidInput("请输入回复内容", code="invalid_input")
    turns = await sparring_turns(session, sparring)
    if sum(1 for t in turns if t.sender == "trainee") >= MAX_SPARRING_TURNS:
        raise Conflict("本次陪练对话轮数已达上限，请结束陪练查看评分", code="sparring_too_long")
    scenario = await session.get_one(SparringScenario, sparring.scenario_id)
    script = script_of(scenario)
    done = set(sparring.steps_done)
    new = [s for s in detect_steps(script, text) if s not in done]
    seq = turns[-1].seq + 1 if turns else 1
    _add_turn(session, sparring, seq, "trainee", text, new)
    reply = persona_reply(script, done, new, set(sparring.said))
    sparring.steps_done = [*sparring.steps_done, *new]
    sparring.said = [*sparring.said, *reply.said]
    answer = _add_turn(session, sparring, seq + 1, "persona", await _persona_says(script, reply.text))
    await session.flush()
    record_audit(
        session,
        Actor.of(user),
        "training.sparring_turn",
        "training_sparring",
        sparring.id,
        after={"seq": seq, "steps": new},
    )
    return answer


async def do_finish_sparring(session: AsyncSession, user: User, sparring: SparringSession) -> SparringSession:
    """End the session and score it: the scenario's steps (weighted) and the quality sheet of the trainee's team
    on the transcript, with feedback. Audited; ``training.completed``."""
    _check_own_open(user, sparring)
    scenario = await session.get_one(SparringScenario, sparring.scenario_id)
    script = script_of(scenario)
    turns = await sparring_turns(session, sparring)
    if not any(t.sender == "trainee" for t in turns):
        raise Conflict("还没有回复过居民，无法评分", code="sparring_empty")
    now = utcnow()
    facts = transcript_facts(
        script, [TranscriptLine(t.seq, t.sender, t.text, t.at) for t in turns], sparring.started_at, now
    )
    sheet = sheet_body(await active_sheet(session, await team_of(session, user.id)))
    scored = score_contact(sheet, facts)
    done = set(sparring.steps_done)
    steps = step_score(script, done)
    sparring.status, sparring.finished_at = SparringStatus.finished.value, now
    sparring.step_score, sparring.quality_score = steps, scored.score
    sparring.score = combined_score(script, steps, scored.score)
    sparring.feedback = feedback(script, done, scored)
    await session.flush()
    record_audit(
        session,
        Actor.of(user),
        "training.sparring_finish",
        "training_sparring",
        sparring.id,
        after={
            "scenario": scenario.code,
            "score": sparring.score,
            "step_score": steps,
            "quality_score": scored.score,
        },
    )
    emit(
        session,
        TrainingCompleted(
            kind="sparring", record_id=sparring.id, user_id=user.id, score=float(sparring.score), passed=None
        ),
    )
    return sparring


async def my_sparring(session: AsyncSession, user: User, limit: int = 20) -> list[SparringSession]:
    return list(
        await session.scalars(
            select(SparringSession)
            .where(SparringSession.user_id == user.id)
            .order_by(SparringSession.id.desc())
            .limit(limit)
        )
    )


async def recent_sparring(session: AsyncSession, limit: int = 100) -> list[tuple[SparringSession, str]]:
    """Finished sessions of everyone with the trainee's name, newest first (for supervisors)."""
    rows = await session.execute(
        select(SparringSession, User.display_name)
        .join(User, User.id == SparringSession.user_id)
        .where(SparringSession.status == SparringStatus.finished.value)
        .order_by(SparringSession.id.desc())
        .limit(limit)
    )
    return [(s, name) for s, name in rows]
