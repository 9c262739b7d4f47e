"""Admin configuration of the ACD: skill groups, hand-off rules, agents' skills and capacity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.auth.service import access_user
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.routing import service as acd
from gasdesk.routing.models import HandoffRule, SkillGroup
from gasdesk.routing.schemas import (
    AgentSkillsIn,
    AgentSkillsOut,
    HandoffRuleIn,
    HandoffRuleOut,
    SkillGroupIn,
    SkillGroupOut,
)

router = APIRouter(prefix="/api/v1", tags=["routing"])


@router.get("/skill-groups", response_model=list[SkillGroupOut])
async def list_groups(session: DbSession, _: User = allow(Role.admin, Role.supervisor, Role.agent)) -> list[dict]:
    groups = await session.scalars(select(SkillGroup).order_by(SkillGroup.id))
    return [await acd.skill_group_out(session, g) for g in groups]


@router.put("/skill-groups/{group_id}", response_model=SkillGroupOut)
async def update_group(group_id: Id, body: SkillGroupIn, session: DbSession,
                       admin: User = allow(Role.admin)) -> dict[str, Any]:
    group = await acd.do_update_skill_group(session, Actor.of(admin, "api"), group_id, body.model_dump())
    return await acd.skill_group_out(session, group)


@router.get("/handoff-rules", response_model=list[HandoffRuleOut])
async def list_rules(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rules = await session.scalars(select(HandoffRule).order_by(HandoffRule.position, HandoffRule.id))
    return [{"id": r.id, "position": r.position, "name": r.name, "kind": r.kind, "params": r.params,
             "skill_group_id": r.skill_group_id, "priority": r.priority, "enabled": r.enabled} for r in rules]


@router.post("/handoff-rules", status_code=201, response_model=HandoffRuleOut)
async def create_rule(body: HandoffRuleIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    rule = await acd.do_create_handoff_rule(session, Actor.of(admin, "api"), body.model_dump())
    return {"id": rule.id, **body.model_dump()}


@router.put("/agents/{user_id}/skills", response_model=AgentSkillsOut)
async def set_agent_skills(user_id: Id, body: AgentSkillsIn, session: DbSession,
                           admin: User = allow(Role.admin, Role.supervisor)) -> dict[str, Any]:
    user = await access_user(session, user_id)
    await acd.do_assign_agent_skills(session, Actor.of(admin, "api"), user, body.skill_group_ids, body.max_concurrent)
    return {"user_id": user.id, **body.model_dump()}
