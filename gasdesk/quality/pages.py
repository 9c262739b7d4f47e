"""Quality inspection pages: /quality for supervisors (review queue, sheets editor, weekly trends), one
contact's review (transcript, call recording, per-rule results, adjust, appeal), and /quality/mine for agents."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, STAFF_DESK, Role
from gasdesk.conversations.models import Conversation, Message
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError, InvalidInput
from gasdesk.fields import Id
from gasdesk.quality import service
from gasdesk.quality.models import (
    APPEAL_LABELS,
    REVIEW_LABELS,
    SAMPLE_LABELS,
    SHEET_STATUS_LABELS,
    QualitySheet,
)
from gasdesk.quality.rules import KIND_LABELS
from gasdesk.telephony.service import calls_of_conversation
from gasdesk.tickets.models import Team
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)
MAX_SHEET_CHARS = 50_000
STATUS_LABELS = {"pass": "通过", "fail": "未通过", "na": "不适用"}
SENDER_LABELS = {"resident": "居民", "agent": "坐席", "bot": "智能客服", "system": "系统"}


def _labels() -> dict[str, Any]:
    return {"sample_labels": SAMPLE_LABELS, "review_labels": REVIEW_LABELS, "appeal_labels": APPEAL_LABELS,
            "sheet_status_labels": SHEET_STATUS_LABELS, "kind_labels": KIND_LABELS, "status_labels": STATUS_LABELS,
            "sender_labels": SENDER_LABELS}


async def _overview(session: AsyncSession, *, shown: int | None = None) -> dict[str, Any]:
    sheets = await service.list_sheets(session)
    current = next((s for s in sheets if s.id == shown), None) or next(
        s for s in sheets if s.team_id is None and s.status == "active")
    queue = await service.review_queue(session)
    recent = await service.recent_scores(session, limit=50)
    weeks, by_agent = await service.weekly_trends(session, "agent")
    _, by_team = await service.weekly_trends(session, "team")
    teams = list(await session.scalars(select(Team).order_by(Team.id)))
    return {"sheets": sheets, "shown": current, "text": json.dumps(current.body, ensure_ascii=False, indent=2),
            "queue": queue, "recent": recent, "weeks": weeks, "by_agent": by_agent, "by_team": by_team,
            "teams": teams, "team_names": {t.id: t.name for t in teams}, "problems": [], "note": "",
            "names": await service.names_of(session, {r.agent_id for r in queue + recent}), **_labels()}


@router.get("/quality")
async def quality_page(request: Request, session: DbSession, sheet: Id | None = None,
                       _: User = allow(*MANAGERS)) -> Response:
    return render(request, "quality.html", await _overview(session, shown=sheet))


@router.get("/quality/mine")
async def my_quality(request: Request, session: DbSession, user: User = allow(*STAFF_DESK)) -> Response:
    rows = await service.scores_of_agent(session, user.id)
    weeks, trend = await service.weekly_trends(session, "agent", agent_id=user.id)
    return render(request, "quality_mine.html", {"rows": rows, "weeks": weeks, "trend": trend[0] if trend else None,
                                                 **_labels()})


@router.get("/quality/scores/{score_id}")
async def score_page(score_id: Id, request: Request, session: DbSession, user: User = allow(*STAFF_DESK)) -> Response:
    """One contact's inspection: transcript, recording, per-rule results; supervisors adjust or resolve the
    appeal, the agent appeals."""
    row = await service.access_score(session, user, score_id)
    conversation = await session.get(Conversation, row.conversation_id)
    messages = list(await session.scalars(select(Message).where(Message.conversation_id == row.conversation_id)
                                          .order_by(Message.seq)))
    sheet = await session.get(QualitySheet, row.sheet_id)
    calls = await calls_of_conversation(session, row.conversation_id)
    names = await service.names_of(session, {row.agent_id, row.reviewed_by, row.appeal_resolved_by})
    # message seq → the failed rules that point at it: the transcript marks each with its rules (not by colour
    # alone), so a reviewer sees at a glance which reply lost points and why
    flagged: dict[int, list[str]] = {}
    for r in row.results:
        if r["status"] == "fail":
            for seq in dict.fromkeys(e["seq"] for e in r["evidence"] if "seq" in e):
                flagged.setdefault(seq, []).append(r["label"])
    return render(request, "quality_score.html", {
        "row": row, "conversation": conversation, "messages": messages, "flagged": flagged,
        "sheet": sheet, "calls": calls, "names": names, "manager": Role(user.role) in MANAGERS,
        "own": row.agent_id == user.id, **_labels()})


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"JSON 格式错误：第 {exc.lineno} 行第 {exc.colno} 列", code="invalid_quality_sheet",
                           details={"problems": [f"JSON 格式错误：第 {exc.lineno} 行第 {exc.colno} 列"]}) from None


@router.post("/quality/sheets")
async def save_sheet(request: Request, session: DbSession, sheet: Annotated[str, Form(max_length=MAX_SHEET_CHARS)],
                     team_id: Annotated[str, Form(max_length=12)] = "", note: Annotated[str, Form(max_length=200)] = "",
                     activate: Annotated[str, Form(max_length=5)] = "", user: User = allow(*MANAGERS)) -> Response:
    """Save the edited sheet as a new version for a team (or the default sheet), and activate it if asked."""
    try:
        team = int(team_id) if team_id.strip() else None
        row = await service.do_save_sheet(session, Actor.of(user, "web"), team_id=team, body=_parse(sheet),
                                          note=note, activate=bool(activate))
    except (GasdeskError, ValueError) as exc:
        await rollback(session, user)
        context = await _overview(session)
        problems = (exc.details or {}).get("problems") if isinstance(exc, GasdeskError) and isinstance(
            exc.details, dict) else None
        context.update(text=sheet, note=note,
                       problems=problems or [exc.message if isinstance(exc, GasdeskError) else "班组无效"])
        return render(request, "quality.html", context, 422)
    return RedirectResponse(f"/quality?sheet={row.id}#sheets", status_code=303)


@router.post("/quality/sheets/{sheet_id}/activate")
async def activate_sheet(sheet_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    await service.do_activate_sheet(session, Actor.of(user, "web"), sheet_id)
    return RedirectResponse(f"/quality?sheet={sheet_id}#sheets", status_code=303)


@router.post("/quality/scores/{score_id}/adjust")
async def adjust_form(score_id: Id, session: DbSession, score: Annotated[float, Form(ge=0, le=100)],
                      reason: Annotated[str, Form(max_length=500)], user: User = allow(*MANAGERS)) -> Response:
    row = await service.access_score(session, user, score_id)
    await service.do_adjust_score(session, user, row, score=score, reason=reason)
    return RedirectResponse(f"/quality/scores/{score_id}", status_code=303)


@router.post("/quality/scores/{score_id}/review")
async def review_form(score_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    """Reviewed, score kept."""
    row = await service.access_score(session, user, score_id)
    await service.do_confirm_review(session, user, row)
    return RedirectResponse("/quality#queue", status_code=303)


@router.post("/quality/scores/{score_id}/appeal")
async def appeal_form(score_id: Id, session: DbSession, reason: Annotated[str, Form(max_length=500)],
                      user: User = allow(*STAFF_DESK)) -> Response:
    row = await service.access_score(session, user, score_id)
    await service.do_appeal(session, user, row, reason=reason)
    return RedirectResponse(f"/quality/scores/{score_id}", status_code=303)


@router.post("/quality/scores/{score_id}/appeal/resolve")
async def resolve_form(score_id: Id, session: DbSession, outcome: Annotated[str, Form(max_length=10)],
                       note: Annotated[str, Form(max_length=500)],
                       score: Annotated[str, Form(max_length=8)] = "", user: User = allow(*MANAGERS)) -> Response:
    row = await service.access_score(session, user, score_id)
    try:
        new_score = float(score) if score.strip() else None
    except ValueError:
        raise InvalidInput("分数应为数字", code="invalid_score") from None
    await service.do_resolve_appeal(session, user, row, outcome=outcome, note=note, score=new_score)
    return RedirectResponse(f"/quality/scores/{score_id}", status_code=303)
