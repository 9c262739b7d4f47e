"""Quality inspection over REST: scores (supervisors all, agents their own), adjustments, appeals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, STAFF_DESK
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.quality import service
from gasdesk.quality.schemas import AdjustIn, AppealIn, ResolveAppealIn, ScoreOut, score_out

router = APIRouter(prefix="/api/v1/quality", tags=["quality"])


@router.get("/scores", response_model=list[ScoreOut])
async def scores(session: DbSession, queue: bool = False, _: User = allow(*MANAGERS)) -> list[dict[str, Any]]:
    """Recent scores, newest first; ``queue=true``: sampled contacts awaiting review and open appeals."""
    rows = await (service.review_queue(session) if queue else service.recent_scores(session))
    return [score_out(r) for r in rows]


@router.get("/mine", response_model=list[ScoreOut])
async def mine(session: DbSession, user: User = allow(*STAFF_DESK)) -> list[dict[str, Any]]:
    """My own scores, newest first."""
    return [score_out(r) for r in await service.scores_of_agent(session, user.id)]


@router.get("/scores/{score_id}", response_model=ScoreOut)
async def score(score_id: Id, session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    return score_out(await service.access_score(session, user, score_id))


@router.post("/scores/{score_id}/adjust", response_model=ScoreOut)
async def adjust(score_id: Id, body: AdjustIn, session: DbSession, user: User = allow(*MANAGERS)) -> dict[str, Any]:
    """Set the score with a mandatory reason (audited)."""
    row = await service.access_score(session, user, score_id)
    return score_out(await service.do_adjust_score(session, user, row, score=body.score, reason=body.reason))


@router.post("/scores/{score_id}/appeal", response_model=ScoreOut)
async def appeal(score_id: Id, body: AppealIn, session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """Appeal my own score, once (audited)."""
    row = await service.access_score(session, user, score_id)
    return score_out(await service.do_appeal(session, user, row, reason=body.reason))


@router.post("/scores/{score_id}/appeal/resolve", response_model=ScoreOut)
async def resolve_appeal(score_id: Id, body: ResolveAppealIn, session: DbSession,
                         user: User = allow(*MANAGERS)) -> dict[str, Any]:
    """Uphold (with the new score) or reject an open appeal (audited)."""
    row = await service.access_score(session, user, score_id)
    return score_out(await service.do_resolve_appeal(session, user, row, outcome=body.outcome, note=body.note,
                                                     score=body.score))
