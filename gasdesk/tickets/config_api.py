"""Admin configuration of the work-order loop: routing rules, SLA policies, follow-up policies (audited)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from gasdesk.audit.service import Actor
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.followups.models import FollowUpPolicy
from gasdesk.followups.service import do_set_followup_policy
from gasdesk.tickets.models import RoutingRule, SlaPolicy
from gasdesk.tickets.routing import do_create_routing_rule, do_update_routing_rule, routing_rule_out
from gasdesk.tickets.sla import do_set_sla_policy

router = APIRouter(prefix="/api/v1/config", tags=["configuration"])


class RoutingRuleIn(BaseModel):
    position: int = Field(ge=0, le=10000)
    name: str = Field(min_length=1, max_length=60)
    ticket_types: list[str] = []
    districts: list[str] = []
    keywords: list[str] = []
    customer_tags: list[str] = []
    team_id: Id | None = None
    handler_id: Id | None = None
    complaint_mode: Literal["live_agent", "ticket"] | None = None
    priority: Literal["urgent", "high", "normal", "low"] | None = None
    enabled: bool = True


class SlaPolicyIn(BaseModel):
    ticket_type: str
    priority: Literal["urgent", "high", "normal", "low"]
    respond_minutes: int = Field(ge=1, le=60 * 24 * 30)
    resolve_minutes: int = Field(ge=1, le=60 * 24 * 90)
    at_risk_ratio_pct: int = Field(default=80, ge=10, le=99)


class FollowUpPolicyIn(BaseModel):
    enabled: bool = True
    delay_minutes: int = Field(ge=0, le=60 * 24 * 30)
    max_attempts: int = Field(ge=1, le=10)
    retry_minutes: int = Field(ge=5, le=60 * 24 * 14)
    on_dissatisfied: Literal["reopen", "complaint", "none"] = "reopen"
    dissatisfied_max_score: int = Field(default=2, ge=1, le=4)


@router.get("/ticket-routing-rules")
async def list_rules(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
    return [routing_rule_out(r) for r in rows]


@router.post("/ticket-routing-rules", status_code=201)
async def create_rule(body: RoutingRuleIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    rule = await do_create_routing_rule(session, Actor.of(admin, "api"), body.model_dump())
    return routing_rule_out(rule)


@router.put("/ticket-routing-rules/{rule_id}")
async def update_rule(rule_id: Id, body: RoutingRuleIn, session: DbSession,
                      admin: User = allow(Role.admin)) -> dict[str, Any]:
    rule = await do_update_routing_rule(session, Actor.of(admin, "api"), rule_id, body.model_dump())
    return routing_rule_out(rule)


@router.get("/sla-policies")
async def list_sla(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(SlaPolicy).order_by(SlaPolicy.ticket_type, SlaPolicy.priority))
    return [{"ticket_type": p.ticket_type, "priority": p.priority, "respond_minutes": p.respond_minutes,
             "resolve_minutes": p.resolve_minutes, "at_risk_ratio_pct": p.at_risk_ratio_pct} for p in rows]


@router.put("/sla-policies")
async def put_sla(body: SlaPolicyIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Create or replace the deadlines for one (ticket type, priority); applies to tickets created from now on."""
    await do_set_sla_policy(session, Actor.of(admin, "api"), **body.model_dump())
    return body.model_dump()


@router.get("/followup-policies")
async def list_followup(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(FollowUpPolicy).order_by(FollowUpPolicy.ticket_type))
    return [{"ticket_type": p.ticket_type, "enabled": p.enabled, "delay_minutes": p.delay_minutes,
             "max_attempts": p.max_attempts, "retry_minutes": p.retry_minutes, "on_dissatisfied": p.on_dissatisfied,
             "dissatisfied_max_score": p.dissatisfied_max_score} for p in rows]


@router.put("/followup-policies/{ticket_type}")
async def put_followup(ticket_type: str, body: FollowUpPolicyIn, session: DbSession,
                       admin: User = allow(Role.admin)) -> dict[str, Any]:
    """When to survey a resolved ticket of this type, how often to retry, and what a bad answer does."""
    await do_set_followup_policy(session, Actor.of(admin, "api"), ticket_type, body.model_dump())
    return {"ticket_type": ticket_type, **body.model_dump()}
