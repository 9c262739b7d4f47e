"""Ticket routing: the first enabled rule (by position) whose conditions all match names the team/handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.tickets.models import TYPE_LABELS, RoutingRule, Team, TicketType

RULE_FIELDS = ("position", "name", "ticket_types", "districts", "keywords", "customer_tags", "team_id", "handler_id",
               "complaint_mode", "priority", "enabled")


@dataclass(frozen=True)
class RouteDecision:
    rule: RoutingRule | None
    team_id: int | None
    handler_id: int | None
    complaint_mode: str | None
    priority: str | None


def rule_matches(rule: RoutingRule, *, ticket_type: str, district: str | None, text: str,
                 customer_tags: list[str]) -> bool:
    if rule.ticket_types and ticket_type not in rule.ticket_types:
        return False
    if rule.districts and (district or "") not in rule.districts:
        return False
    if rule.keywords and not any(k in text for k in rule.keywords):
        return False
    if rule.customer_tags and not set(rule.customer_tags) & set(customer_tags):
        return False
    return True


async def route_ticket(session: AsyncSession, *, ticket_type: str, district: str | None, text: str,
                       customer_tags: list[str]) -> RouteDecision:
    rules = await session.scalars(select(RoutingRule).where(RoutingRule.enabled.is_(True))
                                  .order_by(RoutingRule.position, RoutingRule.id))
    for rule in rules:
        if rule_matches(rule, ticket_type=ticket_type, district=district, text=text, customer_tags=customer_tags):
            return RouteDecision(rule, rule.team_id, rule.handler_id, rule.complaint_mode, rule.priority)
    return RouteDecision(None, None, None, None, None)


def check_ticket_type(value: str) -> TicketType:
    """A ticket type from untrusted input (new tickets, configuration), or ``InvalidInput`` listing the
    valid ones."""
    try:
        return TicketType(value)
    except ValueError:
        options = "、".join(f"{TYPE_LABELS[t]}({t.value})" for t in TicketType)
        raise InvalidInput(f"未知工单类型 {value!r}；可选: {options}", code="invalid_ticket_type") from None


def routing_rule_out(rule: RoutingRule) -> dict[str, Any]:
    return {"id": rule.id, **{key: getattr(rule, key) for key in RULE_FIELDS}}


async def check_routing_rule(session: AsyncSession, data: dict[str, Any]) -> dict[str, Any]:
    """Validate a rule's references (types, team, handler); returns the fields to store."""
    for ticket_type in data.get("ticket_types") or []:
        check_ticket_type(ticket_type)
    if data.get("team_id") is not None and await session.get(Team, data["team_id"]) is None:
        raise InvalidInput("处理班组不存在", code="invalid_team")
    if data.get("handler_id") is not None and await session.get(User, data["handler_id"]) is None:
        raise InvalidInput("处理人不存在", code="invalid_handler")
    return {key: data[key] for key in RULE_FIELDS if key in data}


async def do_create_routing_rule(session: AsyncSession, actor: Actor, data: dict[str, Any]) -> RoutingRule:
    """Add a ticket routing rule (audited)."""
    rule = RoutingRule(**await check_routing_rule(session, data))
    session.add(rule)
    await session.flush()
    record_audit(session, actor, "config.ticket_routing_rule", "config", f"routing_rule:{rule.id}",
                 after=routing_rule_out(rule))
    return rule


async def do_update_routing_rule(session: AsyncSession, actor: Actor, rule_id: int,
                                 data: dict[str, Any]) -> RoutingRule:
    """Replace a routing rule's fields (audited with before and after)."""
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("路由规则不存在", code="rule_not_found")
    fields = await check_routing_rule(session, data)
    before = routing_rule_out(rule)
    for key, value in fields.items():
        setattr(rule, key, value)
    record_audit(session, actor, "config.ticket_routing_rule", "config", f"routing_rule:{rule.id}",
                 before=before, after=routing_rule_out(rule))
    return rule
