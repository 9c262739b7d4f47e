"""Follow-up (回访) REST API: the surveys, satisfaction outcomes, and the per-ticket-type policies (admins)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.clock import utcnow
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.followups.models import FollowUpPolicy, FollowUpSurvey
from gasdesk.followups.schemas import FollowUpOut, FollowUpOutcomes, FollowUpPolicyIn, FollowUpPolicyOut
from gasdesk.followups.service import do_set_followup_policy, followup_outcomes

router = APIRouter(prefix="/api/v1", tags=["followups"])


@router.get("/followups", response_model=list[FollowUpOut])
async def list_followups(session: DbSession, status: str | None = None, ticket_id: Id | None = None,
                         _: User = allow(Role.admin, Role.supervisor, Role.agent)) -> list[dict[str, Any]]:
    query = select(FollowUpSurvey).order_by(FollowUpSurvey.id.desc()).limit(200)
    if status:
        query = query.where(FollowUpSurvey.status == status)
    if ticket_id:
        query = query.where(FollowUpSurvey.ticket_id == ticket_id)
    return [{"id": f.id, "ticket_id": f.ticket_id, "channel": f.channel, "status": f.status, "attempts": f.attempts,
             "due_at": f.due_at, "score": f.score, "solved": f.solved, "comment": f.comment, "outcome": f.outcome,
             "category": f.category, "answered_at": f.answered_at} for f in await session.scalars(query)]


@router.get("/reports/followups", response_model=FollowUpOutcomes)
async def outcomes(session: DbSession, days: int = Query(30, ge=1, le=366),
                   _: User = allow(Role.admin, Role.supervisor)) -> dict[str, Any]:
    """Satisfaction trend per day and per problem category."""
    until = utcnow()
    return await followup_outcomes(session, until - timedelta(days=days), until)


@router.get("/config/followup-policies", tags=["configuration"], response_model=list[FollowUpPolicyOut])
async def list_followup(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(FollowUpPolicy).order_by(FollowUpPolicy.ticket_type))
    return [{"ticket_type": p.ticket_type, "enabled": p.enabled, "delay_minutes": p.delay_minutes,
             "max_attempts": p.max_attempts, "retry_minutes": p.retry_minutes, "on_dissatisfied": p.on_dissatisfied,
             "dissatisfied_max_score": p.dissatisfied_max_score} for p in rows]


@router.put("/config/followup-policies/{ticket_type}", tags=["configuration"], response_model=FollowUpPolicyOut)
async def put_followup(ticket_type: str, body: FollowUpPolicyIn, session: DbSession,
                       admin: User = allow(Role.admin)) -> dict[str, Any]:
    """When to survey a resolved ticket of this type, how often to retry, and what a bad answer does."""
    await do_set_followup_policy(session, Actor.of(admin, "api"), ticket_type, body.model_dump())
    return {"ticket_type": ticket_type, **body.model_dump()}
