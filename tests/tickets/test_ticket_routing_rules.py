"""Ticket routing with the default rules from the migrations, edited in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from gasdesk.db import commit
from gasdesk.tickets.models import RoutingRule, Team
from gasdesk.tickets.routing import route_ticket
from tests.factories import wo_audit_rows, wo_ticket


async def _team(session, team_id: int | None) -> str | None:
    team = await session.get(Team, team_id) if team_id else None
    return team.name if team else None


async def _rule_named(session, prefix: str) -> RoutingRule:
    return await session.scalar(select(RoutingRule).where(RoutingRule.name.startswith(prefix)))


async def _tagged_customer(factory, session, *tags: str):
    customer = await factory.customer(name="王秀英")
    customer.tags = list(tags)
    await commit(session)
    return customer


@pytest.mark.parametrize(
    ("ticket_type", "description", "team", "priority", "rule"),
    [
        ("gas_leak", "厨房里有很重的煤气味", "燃气抢修调度中心", "urgent", "燃气泄漏"),
        ("no_gas", "家里突然没气了", "燃气抢修调度中心", "high", "无气"),
        ("complaint", "维修师傅迟到两个小时还态度差", "客服投诉处理组", "high", "投诉"),
        ("repair", "家里暖气片不热", "热力维修调度", "normal", "供暖问题"),
        ("consultation", "地暖什么时候开始供暖", "热力维修调度", "normal", "供暖问题"),
        ("repair", "燃气灶打不着火", "燃气抢修调度中心", "normal", "其他"),
        ("info_change", "更改联系电话", "燃气抢修调度中心", "normal", "其他"),
    ],
)
async def test_default_rules(session, events, ticket_type, description, team, priority, rule) -> None:
    ticket = await wo_ticket(session, ticket_type, description=description)
    assert await _team(session, ticket.team_id) == team
    assert ticket.priority == priority
    assert ticket.routing_rule.startswith(rule)
    created = [e for e in events if e.type == "ticket.created"]
    assert [e.payload["ticket_id"] for e in created] == [ticket.id]
    audit = await wo_audit_rows(session, "ticket", ticket.id, "ticket.create")
    assert len(audit) == 1 and audit[0].changes["after"]["team_id"] == ticket.team_id
    assert [(e.action, e.to_status) for e in ticket.events] == [("create", "new")]


async def test_lonely_resident_repair_is_high_priority(session, factory) -> None:
    customer = await _tagged_customer(factory, session, "独居")
    ticket = await wo_ticket(session, "repair", customer_id=customer.id, description="燃气表不走字")
    assert ticket.priority == "high" and ticket.routing_rule.startswith("独居")
    assert await _team(session, ticket.team_id) == "燃气抢修调度中心"
    plain = await wo_ticket(session, "repair", customer_id=(await factory.customer()).id, description="燃气表不走字")
    assert plain.priority == "normal"
    # the tag rule only covers repair and no_gas
    complaint = await wo_ticket(session, "complaint", customer_id=customer.id, description="客服电话打不通")
    assert complaint.routing_rule.startswith("投诉")


async def test_explicit_priority_overrides_the_rule(session) -> None:
    ticket = await wo_ticket(session, "gas_leak", priority="high", description="楼道有煤气味")
    assert ticket.priority == "high" and await _team(session, ticket.team_id) == "燃气抢修调度中心"


async def test_disabling_a_rule_changes_the_result(session) -> None:
    before = await route_ticket(session, ticket_type="repair", district=None, text="暖气不热", customer_tags=[])
    assert before.team_id == 3
    heating = await _rule_named(session, "供暖问题")
    heating.enabled = False
    await commit(session)
    ticket = await wo_ticket(session, "repair", description="暖气不热")
    assert ticket.routing_rule.startswith("其他") and ticket.team_id == 1
    # and with the catch-all disabled too, nothing matches: no team
    await session.execute(update(RoutingRule).where(RoutingRule.name.startswith("其他")).values(enabled=False))
    await commit(session)
    orphan = await wo_ticket(session, "repair", description="暖气不热")
    assert orphan.team_id is None and orphan.routing_rule is None and orphan.priority == "normal"


async def test_rule_order_matters(session, factory) -> None:
    customer = await _tagged_customer(factory, session, "独居")
    first = await wo_ticket(session, "repair", customer_id=customer.id, description="暖气不热")
    assert first.routing_rule.startswith("独居") and first.priority == "high" and first.team_id == 1
    heating = await _rule_named(session, "供暖问题")
    heating.position = 35  # now evaluated before the 独居 rule (40)
    await commit(session)
    second = await wo_ticket(session, "repair", customer_id=customer.id, description="暖气不热")
    assert second.routing_rule.startswith("供暖问题") and second.team_id == 3 and second.priority == "normal"


async def test_district_condition_and_handler(session) -> None:
    from tests.factories import staff_user

    handler = await staff_user(session, "dispatcher")
    session.add(RoutingRule(position=5, name="浑南区报修 → 指定调度", ticket_types=["repair"], districts=["浑南区"],
                            keywords=[], customer_tags=[], team_id=3, handler_id=handler.id, enabled=True))
    await commit(session)
    inside = await wo_ticket(session, "repair", district="浑南区", description="燃气表漏气")
    outside = await wo_ticket(session, "repair", district="和平区", description="燃气表漏气")
    assert (inside.team_id, inside.handler_id) == (3, handler.id)
    assert outside.handler_id is None and outside.routing_rule.startswith("其他")
    from gasdesk.notifications.models import Notification

    notes = list(await session.scalars(select(Notification).where(Notification.user_id == handler.id)))
    assert [n.kind for n in notes] == ["ticket.new"] and inside.number in notes[0].title
