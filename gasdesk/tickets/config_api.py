"""Admin configuration of the work-order loop: routing rules, SLA policies, follow-up policies (audited)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.db import DbSession
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.fields import Id
from gasdesk.followups.models import FollowUpPolicy
from gasdesk.tickets.models import Priority, RoutingRule, SlaPolicy, Team, TicketType

router = APIRouter(prefix="/api/v1/config", tags=["configuration"])
TYPES = [t.value for t in TicketType]


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


def _check_type(value: str) -> str:
    if value not in TYPES:
        raise InvalidInput(f"未知工单类型 {value!r}；可选: {', '.join(TYPES)}", code="invalid_ticket_type")
    return value


def _rule_out(r: RoutingRule) -> dict[str, Any]:
    return {"id": r.id, "position": r.position, "name": r.name, "ticket_types": r.ticket_types,
            "districts": r.districts, "keywords": r.keywords, "customer_tags": r.customer_tags,
            "team_id": r.team_id, "handler_id": r.handler_id, "complaint_mode": r.complaint_mode,
            "priority": r.priority, "enabled": r.enabled}


async def _check_rule(session: Any, body: RoutingRuleIn) -> None:
    for t in body.ticket_types:
        _check_type(t)
    if body.team_id is not None and await session.get(Team, body.team_id) is None:
        raise InvalidInput("处理班组不存在", code="invalid_team")
    if body.handler_id is not None and await session.get(User, body.handler_id) is None:
        raise InvalidInput("处理人不存在", code="invalid_handler")


@router.get("/ticket-routing-rules")
async def list_rules(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
    return [_rule_out(r) for r in rows]


@router.post("/ticket-routing-rules", status_code=201)
async def create_rule(body: RoutingRuleIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    await _check_rule(session, body)
    rule = RoutingRule(**body.model_dump())
    session.add(rule)
    await session.flush()
    record_audit(session, Actor.of(admin, "api"), "config.ticket_routing_rule", "config", f"routing_rule:{rule.id}",
                 after=_rule_out(rule))
    return _rule_out(rule)


@router.put("/ticket-routing-rules/{rule_id}")
async def update_rule(rule_id: Id, body: RoutingRuleIn, session: DbSession,
                      admin: User = allow(Role.admin)) -> dict[str, Any]:
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("路由规则不存在", code="rule_not_found")
    await _check_rule(session, body)
    before = _rule_out(rule)
    for key, value in body.model_dump().items():
        setattr(rule, key, value)
    record_audit(session, Actor.of(admin, "api"), "config.ticket_routing_rule", "config", f"routing_rule:{rule.id}",
                 before=before, after=_rule_out(rule))
    return _rule_out(rule)


@router.get("/sla-policies")
async def list_sla(session: DbSession, _: User = allow(Role.admin, Role.supervisor)) -> list[dict[str, Any]]:
    rows = await session.scalars(select(SlaPolicy).order_by(SlaPolicy.ticket_type, SlaPolicy.priority))
    return [{"ticket_type": p.ticket_type, "priority": p.priority, "respond_minutes": p.respond_minutes,
             "resolve_minutes": p.resolve_minutes, "at_risk_ratio_pct": p.at_risk_ratio_pct} for p in rows]


@router.put("/sla-policies")
async def put_sla(body: SlaPolicyIn, session: DbSession, admin: User = allow(Role.admin)) -> dict[str, Any]:
    """Create or replace the deadlines for one (ticket type, priority); applies to tickets created from now on."""
    _check_type(body.ticket_type)
    Priority(body.priority)
    if body.resolve_minutes < body.respond_minutes:
        raise InvalidInput("办结时限不能短于响应时限", code="invalid_sla")
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.ticket_type == body.ticket_type,
                                                          SlaPolicy.priority == body.priority))
    before = None
    if policy is None:
        policy = SlaPolicy(ticket_type=body.ticket_type, priority=body.priority)
        session.add(policy)
    else:
        before = {"respond_minutes": policy.respond_minutes, "resolve_minutes": policy.resolve_minutes,
                  "at_risk_ratio_pct": policy.at_risk_ratio_pct}
    policy.respond_minutes, policy.resolve_minutes = body.respond_minutes, body.resolve_minutes
    policy.at_risk_ratio_pct = body.at_risk_ratio_pct
    await session.flush()
    record_audit(session, Actor.of(admin, "api"), "config.sla_policy", "config",
                 f"sla:{body.ticket_type}:{body.priority}", before=before, after=body.model_dump())
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
    _check_type(ticket_type)
    policy = await session.get(FollowUpPolicy, ticket_type)
    before = None
    if policy is None:
        policy = FollowUpPolicy(ticket_type=ticket_type)
        session.add(policy)
    else:
        before = {k: getattr(policy, k) for k in body.model_dump()}
    for key, value in body.model_dump().items():
        setattr(policy, key, value)
    await session.flush()
    record_audit(session, Actor.of(admin, "api"), "config.followup_policy", "config", f"followup:{ticket_type}",
                 before=before, after=body.model_dump())
    return {"ticket_type": ticket_type, **body.model_dump()}
