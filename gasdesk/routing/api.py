"""Admin configuration of the ACD: skill groups, hand-off rules, agents' skills and capacity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.auth.service import access_user
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput
from gasdesk.fields import Id
from gasdesk.opening_hours import check_weekly_hours
from gasdesk.routing import service as acd
from gasdesk.routing.models import HandoffKind, HandoffRule, RoutingMode, SkillGroup

router = APIRouter(prefix="/api/v1", tags=["routing"])


class SkillGroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    routing_mode: str = RoutingMode.longest_idle.value
    sticky_returning: bool = True
    queue_capacity: int = Field(default=50, ge=1, le=10000)
    working_hours: dict[str, str]
    default_handle_s: int = Field(default=240, ge=10, le=7200)


class HandoffRuleIn(BaseModel):
    position: int = Field(ge=0, le=10000)
    name: str = Field(min_length=1, max_length=60)
    kind: str
    params: dict[str, Any] = {}
    skill_group_id: Id
    priority: int = Field(default=0, ge=0, le=10)
    enabled: bool = True


class AgentSkillsIn(BaseModel):
    skill_group_ids: list[Id] = Field(max_length=50)
    max_concurrent: int | None = Field(default=None, ge=1, le=50)


def _group_out(g: SkillGroup) -> dict[str, Any]:
    return {"id": g.id, "code": g.code, "name": g.name, "routing_mode": g.routing_mode,
            "sticky_returning": g.sticky_returning, "queue_capacity": g.queue_capacity,
            "working_hours": g.working_hours, "default_handle_s": g.default_handle_s, "open_now": acd.is_group_open(g)}


@router.get("/skill-groups")
async def list_groups(session: DbSession, _: User = allow(Role.admin, Role.supervisor, Role.agent)) -> list[dict]:
    return [_group_out(g) for g in await session.scalars(select(SkillGroup).order_by(SkillGroup.id))]


@router.put("/skill-groups/{group_id}")
async def update_group(group_id: Id, body: SkillGroupIn, session: DbSession,
                       admin: User = allow(Role.admin)) -> dict[str, Any]:
    group = await acd.get_group(session, group_id)
    try:
        RoutingMode(body.routing_mode)
    except ValueError:
        raise InvalidInput(f"未知分配方式 {body.routing_mode}", code="invalid_routing_mode") from None
    before = _group_out(group)
    group.name, group.routing_mode, group.sticky_returning = body.name, body.routing_mode, body.sticky_returning
    group.queue_capacity, group.default_handle_s = body.queue_capacity, body.default_handle_s
    group.working_hours = check_weekly_hours(body.working_hours)
    after = _group_out(group)
    record_audit(session, Actor.of(admin, "api"), "config.skill_group", "config", f"skill_group:{group.id}",
                 before=before, after=after)
    return after


@router.get("/handoff-rules")
async def list_rules(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rules = await session.scalars(select(HandoffRule).order_by(HandoffRule.position, HandoffRule.id))
    return [{"id": r.id, "position": r.position, "name": r.name, "kind": r.kind, "params": r.params,
             "skill_group_id": r.skill_group_id, "priority": r.priority, "enabled": r.enabled} for r in rules]


@router.post("/handoff-rules", status_code=201)
async def create_rule(body: HandoffRuleIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    try:
        HandoffKind(body.kind)
    except ValueError:
        raise InvalidInput(f"未知规则类型 {body.kind}", code="invalid_rule_kind") from None
    await acd.get_group(session, body.skill_group_id)
    rule = HandoffRule(**body.model_dump())
    session.add(rule)
    await session.flush()
    record_audit(session, Actor.of(admin, "api"), "config.handoff_rule", "config", f"handoff_rule:{rule.id}",
                 after=body.model_dump())
    return {"id": rule.id, **body.model_dump()}


@router.put("/agents/{user_id}/skills")
async def set_agent_skills(user_id: Id, body: AgentSkillsIn, session: DbSession,
                           admin: User = allow(Role.admin, Role.supervisor)) -> dict[str, Any]:
    user = await access_user(session, user_id)
    for gid in body.skill_group_ids:
        await acd.get_group(session, gid)
    before = {"skill_group_ids": await acd.agent_group_ids(session, user.id)}
    await acd.do_set_skills(session, user, body.skill_group_ids, body.max_concurrent)
    record_audit(session, Actor.of(admin, "api"), "config.agent_skills", "user", user.id, before=before,
                 after=body.model_dump())
    return {"user_id": user.id, **body.model_dump()}
