"""The ACD's configuration write path: skill groups, hand-off rules and agents' skills change only through
do_* functions that validate, store and write one audit row each; the API handlers only call them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.db import commit
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.routing.models import HandoffRule, SkillGroup
from gasdesk.routing.service import (
    agent_group_ids,
    agent_profile,
    do_assign_agent_skills,
    do_create_handoff_rule,
    do_update_skill_group,
)

ACTOR = Actor.system("acd-config-test", "test")
HOURS = {str(day): "08:00-20:00" for day in range(1, 8)}


async def _audits(session, action: str) -> list[AuditEntry]:
    session.expire_all()
    return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


async def _first_group(session) -> SkillGroup:
    return await session.scalar(select(SkillGroup).order_by(SkillGroup.id))


async def test_skill_group_update_is_stored_and_audited(session) -> None:
    group = await _first_group(session)
    group_id, old_name = group.id, group.name
    values = {"name": "夜间热线", "routing_mode": group.routing_mode, "sticky_returning": False, "queue_capacity": 80,
              "working_hours": HOURS, "default_handle_s": 300}
    await do_update_skill_group(session, ACTOR, group_id, values)
    await commit(session)
    session.expire_all()
    stored = await session.get(SkillGroup, group_id)
    assert (stored.name, stored.queue_capacity, stored.sticky_returning) == ("夜间热线", 80, False)
    assert stored.working_hours["1"] == "08:00-20:00"
    (audit,) = await _audits(session, "config.skill_group")
    assert audit.changes["before"]["name"] == old_name and audit.changes["after"]["name"] == "夜间热线"
    with pytest.raises(InvalidInput) as bad_mode:
        await do_update_skill_group(session, ACTOR, group_id, {**values, "routing_mode": "lottery"})
    assert bad_mode.value.code == "invalid_routing_mode"
    with pytest.raises(InvalidInput) as bad_hours:
        await do_update_skill_group(session, ACTOR, group_id, {**values, "working_hours": {"8": "08:00-20:00"}})
    assert bad_hours.value.code == "invalid_hours"


async def test_handoff_rule_is_created_and_audited(session) -> None:
    group = await _first_group(session)
    values = {"position": 3, "name": "说到投诉就转人工", "kind": "keyword", "params": {"keywords": ["投诉"]},
              "skill_group_id": group.id, "priority": 2, "enabled": True}
    rule = await do_create_handoff_rule(session, ACTOR, values)
    await commit(session)
    rule_id = rule.id
    session.expire_all()
    stored = await session.get(HandoffRule, rule_id)
    assert (stored.kind, stored.params, stored.priority) == ("keyword", {"keywords": ["投诉"]}, 2)
    (audit,) = await _audits(session, "config.handoff_rule")
    assert audit.entity_id == f"handoff_rule:{rule_id}" and audit.changes["after"]["name"] == "说到投诉就转人工"
    with pytest.raises(InvalidInput):
        await do_create_handoff_rule(session, ACTOR, {**values, "kind": "astrology"})
    with pytest.raises(NotFound):
        await do_create_handoff_rule(session, ACTOR, {**values, "skill_group_id": 99999})


async def test_agent_skills_are_assigned_and_audited(session, factory) -> None:
    agent = await factory.user("agent")
    group_id, agent_id = (await _first_group(session)).id, agent.id
    await do_assign_agent_skills(session, ACTOR, agent, [group_id, group_id], 12)
    await commit(session)
    assert await agent_group_ids(session, agent_id) == [group_id]
    assert (await agent_profile(session, agent_id)).max_concurrent == 12
    (audit,) = await _audits(session, "config.agent_skills")
    assert audit.changes["before"] == {"skill_group_ids": []}
    assert audit.changes["after"] == {"skill_group_ids": [group_id], "max_concurrent": 12}
    with pytest.raises(NotFound):
        await do_assign_agent_skills(session, ACTOR, await session.get(type(agent), agent_id), [99999], None)


async def test_the_api_handler_goes_through_the_same_write_path(client, factory, session) -> None:
    headers = await factory.headers("admin")
    group = await _first_group(session)
    response = await client.put(f"/api/v1/skill-groups/{group.id}", headers=headers, json={
        "name": "燃气抢修", "routing_mode": group.routing_mode, "working_hours": HOURS})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "燃气抢修"
    (audit,) = await _audits(session, "config.skill_group")
    assert audit.source == "api" and audit.changes["after"]["name"] == "燃气抢修"
