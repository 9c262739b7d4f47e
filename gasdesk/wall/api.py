"""Wall REST API: the snapshot the wall shows, its thresholds (admins set them), the agent's own dashboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS, STAFF_DESK, WALL_VIEWERS, Role
from gasdesk.db import DbSession, after_commit
from gasdesk.wall.live import refresh_walls
from gasdesk.wall.schemas import AgentDashboard, WallSnapshot, WallThresholds, WallThresholdsIn
from gasdesk.wall.service import agent_dashboard, do_set_thresholds, thresholds, wall_snapshot

router = APIRouter(prefix="/api/v1", tags=["wall"])


@router.get("/wall/snapshot", response_model=WallSnapshot)
async def snapshot(session: DbSession, _: User = allow(*WALL_VIEWERS)) -> dict[str, Any]:
    """What the wall shows now (the same object ``/ws/wall`` pushes)."""
    return await wall_snapshot(session)


@router.get("/wall/thresholds", tags=["configuration"], response_model=WallThresholds)
async def get_thresholds(session: DbSession, _: User = allow(*MANAGERS)) -> dict[str, Any]:
    """Each metric's amber and red thresholds (a tile is amber/red above them; null: never)."""
    return {metric: t.as_dict() for metric, t in (await thresholds(session)).items()}


@router.put("/wall/thresholds", tags=["configuration"], response_model=WallThresholds)
async def put_thresholds(body: WallThresholdsIn, session: DbSession,
                         admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Set some metrics' thresholds (``waiting``, ``longest_wait_s``, ``sla_breached``, ``sla_at_risk``,
    ``emergencies``); amber must be below red. Audited."""
    saved = await do_set_thresholds(session, Actor.of(admin, "api"),
                                    body.model_dump(exclude_unset=True, exclude_none=True))
    after_commit(session, refresh_walls)
    return {metric: t.as_dict() for metric, t in saved.items()}


@router.get("/agent/dashboard", response_model=AgentDashboard)
async def my_dashboard(session: DbSession, user: User = allow(*STAFF_DESK)) -> dict[str, Any]:
    """The caller's own day: contacts handled, average handle time, ratings and 回访 scores, QA results."""
    return await agent_dashboard(session, user)
