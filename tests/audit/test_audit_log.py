"""Every change through a ``do_*`` function leaves an audit row and (after commit) an event;
the audit log is append-only in the ORM and in the database; it can be browsed and filtered."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from gasdesk.audit.models import AuditEntry, AuditLogIsAppendOnly
from gasdesk.audit.service import Actor, diff
from gasdesk.auth.models import User
from gasdesk.auth.service import do_create_user, do_update_user
from gasdesk.branches.service import access_branch, do_save_branch, do_set_holiday
from gasdesk.customers.models import Customer
from gasdesk.customers.schemas import AddressIn, CustomerIn, CustomerPatch
from gasdesk.customers.service import access_customer, do_create_customer, do_update_customer
from gasdesk.db import commit, rollback, sessionmaker
from tests.factories import make_id_card

ACTOR = Actor(None, "auditor-test", "cli")
HOURS = {"1": "08:30-17:00", "2": "08:30-17:00", "3": "08:30-17:00", "4": "08:30-17:00", "5": "08:30-17:00",
         "6": "09:00-12:00", "7": ""}


async def audit_rows(action: str) -> list[AuditEntry]:
    async with sessionmaker()() as s:
        return list(await s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


async def test_create_and_update_customer_are_audited(session, events) -> None:
    actor_user = await do_create_user(session, ACTOR, username="agentx", password="long-enough-pw", role="agent")
    await commit(session)
    actor = Actor.of(actor_user, "api")
    events.clear()
    card = make_id_card(601)
    customer = await do_create_customer(session, actor, CustomerIn(
        name="张三", phones=["13800000001"], id_card=card, tags=["老年人"],
        address=AddressIn(district="和平区", community="幸福里小区", building="1", unit="1", room="101")))
    assert events == [], "events are published only after commit"
    await commit(session)
    assert [(e.type, e.payload) for e in events] == [("customer.created", {"customer_id": customer.id})]

    async with sessionmaker()() as s:
        stored = await access_customer(s, customer.id)
    assert stored.name == "张三" and [p.phone for p in stored.phones] == ["13800000001"] and stored.id_card == card
    [created] = await audit_rows("customer.create")
    assert (created.actor_id, created.actor_name, created.source) == (actor_user.id, "agentx", "api")
    assert (created.entity_type, created.entity_id) == ("customer", str(customer.id))
    assert created.changes == {"before": None, "after": {"name": "张三", "phones": ["13800000001"], "id_card": card,
                                                         "tags": ["老年人"]}}

    events.clear()
    await do_update_customer(session, actor, customer, CustomerPatch(name="张叁", phones=["13800000002", "13800000001"]))
    await commit(session)
    assert [(e.type, e.payload) for e in events] == [("customer.updated", {"customer_id": customer.id})]
    [updated] = await audit_rows("customer.update")
    assert updated.actor_name == "agentx" and updated.entity_id == str(customer.id)
    assert updated.changes == {
        "before": {"name": "张三", "phones": ["13800000001"]},
        "after": {"name": "张叁", "phones": ["13800000002", "13800000001"]},
    }
    async with sessionmaker()() as s:
        stored = await access_customer(s, customer.id)
    assert stored.name == "张叁"
    assert {p.phone: p.is_primary for p in stored.phones} == {"13800000002": True, "13800000001": False}

    # a patch that changes nothing writes nothing
    events.clear()
    await do_update_customer(session, actor, customer, CustomerPatch(name="张叁"))
    await commit(session)
    assert events == [] and len(await audit_rows("customer.update")) == 1


async def test_rolled_back_change_leaves_no_audit_and_no_event(session, events) -> None:
    await do_create_customer(session, ACTOR, CustomerIn(name="回滚", phones=["13800000009"]))
    await rollback(session)
    assert events == []
    assert await audit_rows("customer.create") == []
    async with sessionmaker()() as s:
        assert await s.scalar(select(Customer.id)) is None


async def test_create_and_update_user_are_audited(session, events) -> None:
    user = await do_create_user(session, ACTOR, username="Li.Lei", password="long-enough-pw", role="dispatcher",
                                display_name="李雷")
    await commit(session)
    assert [(e.type, e.payload) for e in events] == [("user.created", {"user_id": user.id, "role": "dispatcher"})]
    [created] = await audit_rows("user.create")
    assert (created.actor_id, created.actor_name, created.entity_type, created.entity_id) == \
        (None, "auditor-test", "user", str(user.id))
    assert created.changes == {"before": None, "after": {"username": "li.lei", "display_name": "李雷",
                                                         "role": "dispatcher", "is_active": True}}

    events.clear()
    old_hash = user.password_hash
    await do_update_user(session, ACTOR, user, role="supervisor", password="another-long-pw")
    await commit(session)
    assert [(e.type, e.payload) for e in events] == [("user.updated", {"user_id": user.id})]
    [updated] = await audit_rows("user.update")
    assert updated.changes == {"before": {"role": "dispatcher"}, "after": {"role": "supervisor", "password": "(changed)"}}
    async with sessionmaker()() as s:
        stored = await s.get(User, user.id)
    assert stored.role == "supervisor" and stored.password_hash != old_hash and stored.session_epoch == 1
    assert old_hash not in str(updated.changes) and stored.password_hash not in str(updated.changes)


async def test_save_branch_and_holiday_are_audited(session, events) -> None:
    admin = await do_create_user(session, ACTOR, username="boss", password="long-enough-pw", role="admin")
    await commit(session)
    actor = Actor.of(admin, "api")
    events.clear()
    branch = await do_save_branch(session, actor, branch=None, name="和平区营业厅", district="和平区",
                                  address="南京南街 1 号", phone="024-1", weekly_hours=HOURS, services=["缴费"])
    await commit(session)
    assert [(e.type, e.payload) for e in events] == [("branch.saved", {"branch_id": branch.id})]
    [created] = await audit_rows("branch.create")
    assert (created.actor_name, created.entity_type, created.entity_id) == ("boss", "branch", str(branch.id))
    assert created.changes["before"] is None and created.changes["after"]["weekly_hours"] == HOURS

    events.clear()
    await do_save_branch(session, actor, branch=branch, name="和平区中心营业厅", district="和平区",
                         address="南京南街 1 号", phone="024-1", weekly_hours={**HOURS, "7": "09:00-12:00"},
                         services=["缴费"])
    await commit(session)
    assert [e.type for e in events] == ["branch.saved"]
    [updated] = await audit_rows("branch.update")
    assert updated.changes == {
        "before": {"name": "和平区营业厅", "weekly_hours": HOURS},
        "after": {"name": "和平区中心营业厅", "weekly_hours": {**HOURS, "7": "09:00-12:00"}},
    }

    await do_set_holiday(session, actor, branch, date(2027, 2, 10), "", "春节")
    await commit(session)
    await do_set_holiday(session, actor, branch, date(2027, 2, 10), "09:00-12:00", "春节值班")
    await commit(session)
    first, second = await audit_rows("branch.holiday")
    assert first.entity_id == str(branch.id) and first.actor_name == "boss"
    assert first.changes == {"before": None, "after": {"day": "2027-02-10", "hours": "", "note": "春节"}}
    assert second.changes == {"before": {"hours": "", "note": "春节"}, "after": {"hours": "09:00-12:00", "note": "春节值班"}}
    async with sessionmaker()() as s:
        stored = await access_branch(s, branch.id)
    assert stored.name == "和平区中心营业厅"
    assert [(h.day, h.hours, h.note) for h in stored.holidays] == [(date(2027, 2, 10), "09:00-12:00", "春节值班")]


async def test_set_holiday_emits_an_event(session, events) -> None:
    branch = await do_save_branch(session, ACTOR, branch=None, name="铁西营业厅", district="铁西区", address="x",
                                  phone="1", weekly_hours=HOURS)
    await commit(session)
    events.clear()
    await do_set_holiday(session, ACTOR, branch, date(2027, 1, 1), "", "元旦")
    await commit(session)
    assert [e.type for e in events] == ["branch.saved"]


async def test_audit_rows_cannot_be_changed_through_the_orm(session) -> None:
    await do_create_customer(session, ACTOR, CustomerIn(name="甲", phones=["13800000011"]))
    await commit(session)
    entry = await session.scalar(select(AuditEntry))
    entry.action = "customer.tampered"
    with pytest.raises(AuditLogIsAppendOnly):
        await session.flush()
    await rollback(session)
    entry = await session.scalar(select(AuditEntry))
    await session.delete(entry)
    with pytest.raises(AuditLogIsAppendOnly):
        await session.flush()
    await rollback(session)
    assert [r.action for r in await audit_rows("customer.create")] == ["customer.create"]


@pytest.mark.parametrize("statement", [
    "UPDATE audit_entries SET action = 'customer.tampered'",
    "UPDATE audit_entries SET changes = NULL",
    "DELETE FROM audit_entries",
])
async def test_audit_rows_cannot_be_changed_with_raw_sql(session, statement: str) -> None:
    await do_create_customer(session, ACTOR, CustomerIn(name="乙", phones=["13800000012"]))
    await commit(session)
    with pytest.raises(DBAPIError, match="append-only"):
        await session.execute(text(statement))
    await rollback(session)
    [row] = await audit_rows("customer.create")
    assert row.changes["after"]["name"] == "乙"


def test_diff_keeps_only_changed_fields() -> None:
    assert diff({"a": 1, "b": 2}, {"a": 1, "b": 3}) == {"before": {"b": 2}, "after": {"b": 3}}
    assert diff(None, {"a": 1}) == {"before": None, "after": {"a": 1}}
    assert diff({"a": 1}, {"a": 1}) == {"before": None, "after": None}
    assert diff({"gone": 1}, {"new": 2}) == {"before": {"gone": 1}, "after": {"new": 2}}


# ---------------------------------------------------------------- browsing


async def _history(factory, client) -> dict[str, object]:
    """Some history by two different people through the API."""
    admin = await factory.user("admin", username="admin1")
    agent = await factory.user("agent", username="agent7")
    admin_h = {"Authorization": f"Bearer {await factory.token(admin)}"}
    agent_h = {"Authorization": f"Bearer {await factory.token(agent)}"}
    created = await client.post("/api/v1/customers", headers=agent_h,
                                json={"name": "王五", "phones": ["13800000021"]})
    assert created.status_code == 201
    cid = created.json()["id"]
    assert (await client.patch(f"/api/v1/customers/{cid}", headers=agent_h, json={"tags": ["VIP"]})).status_code == 200
    other = await client.post("/api/v1/customers", headers=admin_h, json={"name": "赵六", "phones": ["13800000022"]})
    assert (await client.post("/api/v1/users", headers=admin_h, json={
        "username": "newbie", "password": "long-enough-pw", "role": "agent"})).status_code == 201
    return {"admin": admin_h, "customer_id": cid, "other_id": other.json()["id"]}


async def test_audit_api_filters(factory, client) -> None:
    h = await _history(factory, client)
    sup = await factory.headers("supervisor")

    async def query(**params: str) -> dict:
        response = await client.get("/api/v1/audit", headers=sup, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    everything = await query()
    assert everything["total"] >= 4 + 3  # factory users are audited too
    ids = [i["id"] for i in everything["items"]]
    assert ids == sorted(ids, reverse=True), "newest first"

    customer_actions = await query(action="customer.")
    assert sorted(i["action"] for i in customer_actions["items"]) == ["customer.create", "customer.create",
                                                                      "customer.update"]
    assert {i["action"] for i in (await query(entity_type="user"))["items"]} == {"user.create"}
    one = await query(entity_type="customer", entity_id=str(h["customer_id"]))
    assert [i["action"] for i in one["items"]] == ["customer.update", "customer.create"]
    assert one["items"][0]["changes"] == {"before": {"tags": []}, "after": {"tags": ["VIP"]}}
    assert one["items"][0]["actor_name"] == "agent7" and one["items"][0]["source"] == "api"
    by_agent = await query(actor="agent7")  # the agent's API token (issued) and the customer (twice)
    assert sorted(i["action"] for i in by_agent["items"]) == ["auth.token_issue", "customer.create", "customer.update"]
    assert {i["entity_id"] for i in by_agent["items"] if i["entity_type"] == "customer"} == {str(h["customer_id"])}
    by_admin = await query(actor="admin1", action="customer.create")
    assert [i["entity_id"] for i in by_admin["items"]] == [str(h["other_id"])]
    assert (await query(actor="nobody"))["total"] == 0
    page = await query(limit="1", offset="1")
    assert len(page["items"]) == 1 and page["items"][0]["id"] == ids[1] and page["total"] == everything["total"]


async def test_audit_api_is_for_admins_and_supervisors(factory, client) -> None:
    for role, status in [("admin", 200), ("supervisor", 200), ("agent", 403), ("dispatcher", 403)]:
        response = await client.get("/api/v1/audit", headers=await factory.headers(role))
        assert response.status_code == status, role


@pytest.mark.parametrize("role", ["admin", "supervisor"])
async def test_audit_page_renders(factory, client, role: str) -> None:
    h = await _history(factory, client)
    headers = {**await factory.headers(role), "Accept": "text/html"}
    response = await client.get("/admin/audit", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for text_ in ["审计日志", "操作人", "变更（前 → 后）", "customer.create", "agent7", "王五"]:
        assert text_ in response.text
    filtered = await client.get("/admin/audit", headers=headers,
                                params={"entity_type": "customer", "entity_id": str(h["customer_id"])})
    assert filtered.status_code == 200
    assert "共 2 条" in filtered.text and "赵六" not in filtered.text and "VIP" in filtered.text
    empty = await client.get("/admin/audit", headers=headers, params={"actor": "nobody"})
    assert "没有符合条件的记录" in empty.text
