"""The configuration write path of the work-order loop: routing rules, SLA policies and follow-up policies
change only through their do_* functions, which validate, store and write one audit row each."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.db import commit
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.followups.models import FollowUpPolicy
from gasdesk.followups.service import do_set_followup_policy
from gasdesk.tickets.models import RoutingRule, SlaPolicy
from gasdesk.tickets.routing import do_create_routing_rule, do_update_routing_rule
from gasdesk.tickets.sla import do_set_sla_policy

ACTOR = Actor.system("config-test", "test")
RULE = {"position": 7, "name": "铁西区安检", "ticket_types": ["repair"], "districts": ["铁西区"], "keywords": [],
        "customer_tags": [], "team_id": None, "handler_id": None, "complaint_mode": None, "priority": "high",
        "enabled": True}


async def _audits(session, action: str) -> list[AuditEntry]:
    session.expire_all()
    return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


async def test_routing_rule_create_and_update_store_and_audit_before_and_after(session) -> None:
    rule = await do_create_routing_rule(session, ACTOR, RULE)
    await commit(session)
    rule_id = rule.id
    await do_update_routing_rule(session, ACTOR, rule_id, {**RULE, "districts": ["铁西区", "于洪区"], "enabled": False})
    await commit(session)
    session.expire_all()
    stored = await session.get(RoutingRule, rule_id)
    assert stored.districts == ["铁西区", "于洪区"] and stored.enabled is False and stored.priority == "high"
    created, updated = await _audits(session, "config.ticket_routing_rule")
    assert created.changes["after"]["name"] == "铁西区安检" and created.entity_id == f"routing_rule:{rule_id}"
    assert updated.changes["before"]["districts"] == ["铁西区"]
    assert updated.changes["after"]["districts"] == ["铁西区", "于洪区"] and updated.changes["after"]["enabled"] is False


async def test_routing_rule_refuses_unknown_types_teams_and_rules(session) -> None:
    with pytest.raises(InvalidInput) as bad_type:
        await do_create_routing_rule(session, ACTOR, {**RULE, "ticket_types": ["teleport"]})
    assert bad_type.value.code == "invalid_ticket_type"
    with pytest.raises(InvalidInput) as bad_team:
        await do_create_routing_rule(session, ACTOR, {**RULE, "team_id": 99999})
    assert bad_team.value.code == "invalid_team"
    with pytest.raises(NotFound):
        await do_update_routing_rule(session, ACTOR, 99999, RULE)
    assert await _audits(session, "config.ticket_routing_rule") == []


async def test_sla_policy_is_created_then_replaced_with_an_audit_row_each_time(session) -> None:
    await do_set_sla_policy(session, ACTOR, ticket_type="repair", priority="urgent", respond_minutes=10,
                            resolve_minutes=60, at_risk_ratio_pct=80)
    await commit(session)
    await do_set_sla_policy(session, ACTOR, ticket_type="repair", priority="urgent", respond_minutes=5,
                            resolve_minutes=45, at_risk_ratio_pct=70)
    await commit(session)
    rows = list(await session.scalars(select(SlaPolicy).where(SlaPolicy.ticket_type == "repair",
                                                              SlaPolicy.priority == "urgent")))
    assert [(r.respond_minutes, r.resolve_minutes, r.at_risk_ratio_pct) for r in rows] == [(5, 45, 70)]
    audits = await _audits(session, "config.sla_policy")
    assert audits[-1].changes["before"] == {"respond_minutes": 10, "resolve_minutes": 60, "at_risk_ratio_pct": 80}
    assert audits[-1].changes["after"]["resolve_minutes"] == 45 and audits[-1].entity_id == "sla:repair:urgent"
    with pytest.raises(InvalidInput) as bad:
        await do_set_sla_policy(session, ACTOR, ticket_type="repair", priority="urgent", respond_minutes=60,
                                resolve_minutes=30, at_risk_ratio_pct=80)
    assert bad.value.code == "invalid_sla"


async def test_followup_policy_is_set_and_audited(session) -> None:
    values = {"enabled": True, "delay_minutes": 120, "max_attempts": 2, "retry_minutes": 60,
              "on_dissatisfied": "complaint", "dissatisfied_max_score": 2}
    await do_set_followup_policy(session, ACTOR, "repair", values)
    await commit(session)
    session.expire_all()
    policy = await session.get(FollowUpPolicy, "repair")
    assert (policy.delay_minutes, policy.on_dissatisfied) == (120, "complaint")
    audit = (await _audits(session, "config.followup_policy"))[-1]
    assert audit.changes["after"]["delay_minutes"] == 120 and audit.entity_id == "followup:repair"
    with pytest.raises(InvalidInput):
        await do_set_followup_policy(session, ACTOR, "teleport", values)
