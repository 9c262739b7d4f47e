"""Ticket routing: the first enabled rule (by position) whose conditions all match names the team/handler."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.tickets.models import RoutingRule


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
