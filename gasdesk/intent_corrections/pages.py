"""The review page of intent corrections (/admin/bot/corrections, supervisors and admins): approve or reject
each pending correction in place (htmx), and see which model the bot runs on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.bot.nlu.model_store import read_deployment
from gasdesk.db import DbSession, rollback
from gasdesk.errors import GasdeskError
from gasdesk.fields import Id
from gasdesk.intent_corrections import service
from gasdesk.intent_corrections.api import correction_out
from gasdesk.intent_corrections.models import STATUS_LABELS, CorrectionStatus
from gasdesk.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 200


async def _context(session: AsyncSession, status: str) -> dict[str, Any]:
    rows, total = await service.list_corrections(session, status=status, limit=PAGE_SIZE)
    ids = {r.created_by for r in rows if r.created_by} | {r.reviewed_by for r in rows if r.reviewed_by}
    names: dict[int, str] = {}
    if ids:
        names = {
            i: n for i, n in await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
        }
    return {
        "rows": [correction_out(r) for r in rows],
        "total": total,
        "status": status,
        "names": names,
        "statuses": [(s.value, STATUS_LABELS[s]) for s in CorrectionStatus],
        "deployment": read_deployment(),
    }


@router.get("/admin/bot/corrections")
async def corrections_page(
    request: Request, session: DbSession, status: str = "pending", user: User = allow(*MANAGERS)
) -> Response:
    if status not in CorrectionStatus.__members__:
        status = CorrectionStatus.pending.value
    return render(request, "bot_corrections.html", await _context(session, status))


@router.post("/admin/bot/corrections/{correction_id}/review")
async def review_form(
    request: Request,
    correction_id: Id,
    session: DbSession,
    decision: Annotated[str, Form()] = "",
    user: User = allow(*MANAGERS),
) -> Response:
    """htmx: the list again with the outcome (an error in place, since htmx swaps only 2xx answers; a plain form
    post gets the error's own status)."""
    error = notice = None
    status_code = 200
    try:
        row = await service.access_correction(session, user, correction_id)
        row = await service.do_review_correction(session, user, row, decision)
        notice = f"已{STATUS_LABELS[CorrectionStatus(row.status)]}：#{row.id}（{service.INTENT_NAMES[row.intent]}）"
    except GasdeskError as exc:
        await rollback(session, user)
        error = exc.message
        if request.headers.get("HX-Request") != "true":
            status_code = exc.status_code
    context = await _context(session, CorrectionStatus.pending.value)
    context.update(error=error, notice=notice)
    template = (
        "bot_corrections_list.html" if request.headers.get("HX-Request") == "true" else "bot_corrections.html"
    )
    return render(request, template, context, status_code)
