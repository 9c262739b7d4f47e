"""Outage notices (gasdesk/outages/service.py): the life cycle with its audit rows and events, which notices
concern an address down to the building or a customer on an imported list, content hashes, and the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from gasdesk import clock, db
from gasdesk.audit.models import AuditEntry
from gasdesk.broadcasts.models import Broadcast, BroadcastDelivery
from gasdesk.db import commit
from gasdesk.errors import Conflict, InvalidInput
from gasdesk.outages.models import OutageStatus
from gasdesk.outages.service import (
    AreaSpec,
    area_matches,
    check_outage,
    describe,
    do_close_outage,
    do_create_outage,
    do_import_outage_customers,
    do_publish_outage,
    do_update_outage,
    notices_for_customer,
    outages_affecting,
    parse_account_list,
)
from tests.factories import wo_actor

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai


@pytest.fixture(autouse=True)
def frozen() -> None:
    clock.set_now(T0)


def content(*areas: AreaSpec, kind: str = "gas", reason: str = "管网检修", note: str = "", hours: int = 6,
            planned: bool = True):
    return check_outage(kind=kind, planned=planned, areas=areas, starts_at=T0 - timedelta(hours=1),
                        ends_at=T0 + timedelta(hours=hours), expected_restore_at=T0 + timedelta(hours=hours),
                        reason=reason, progress_note=note)


XINGFU = AreaSpec(district="和平区", community="幸福里小区")


def home(building: str, community: str = "幸福里小区", district: str = "和平区") -> dict[str, str]:
    return {"district": district, "community": community, "building": building, "unit": "1", "room": "101"}


async def _audit(action: str, entity_id: int) -> list[AuditEntry]:
    async with db.sessionmaker()() as s:
        return list(await s.scalars(select(AuditEntry).where(AuditEntry.action == action,
                                                             AuditEntry.entity_id == str(entity_id))))


async def _deliveries() -> list[BroadcastDelivery]:
    async with db.sessionmaker()() as s:
        return list(await s.scalars(select(BroadcastDelivery).order_by(BroadcastDelivery.id)))


def test_check_outage_refuses_bad_content() -> None:
    with pytest.raises(InvalidInput, match="类型"):
        content(XINGFU, kind="water")
    with pytest.raises(InvalidInput, match="结束时间"):
        check_outage(kind="gas", areas=[XINGFU], starts_at=T0, ends_at=T0)
    with pytest.raises(InvalidInput, match="至少要填写区或小区"):
        content(AreaSpec(street="南京街", building="3"))
    with pytest.raises(InvalidInput, match="须填写小区"):
        content(AreaSpec(district="和平区", building="3"))
    # blank rows are dropped, duplicates collapse, buildings normalise like the address index
    checked = content(AreaSpec(), XINGFU, XINGFU, AreaSpec(district="和平区", community="阳光花园", building="三号楼"))
    assert checked.areas == (XINGFU, AreaSpec(district="和平区", community="阳光花园", building="3"))


@pytest.mark.no_database
def test_area_matching_by_level() -> None:
    whole_district = AreaSpec(district="和平区")
    building = AreaSpec(district="和平区", community="幸福里小区", building="3")
    assert area_matches(whole_district, district="和平", community="任何小区")
    assert not area_matches(whole_district, district="朝阳区", community="幸福里小区")
    assert area_matches(building, district="和平区", community="幸福里", building="3号楼")
    assert not area_matches(building, district="和平区", community="幸福里小区", building="4")
    # A resident who did not say the building may be affected: the bot mentions the notice; a broadcast does not.
    assert area_matches(building, district="和平区", community="幸福里小区")
    assert not area_matches(building, district="和平区", community="幸福里小区", exact=True)


async def test_life_cycle_is_audited_and_answers_follow_the_status(session, factory) -> None:
    customer = await factory.customer(address=home("3"))
    notice = await do_create_outage(session, wo_actor(), content(XINGFU))
    await commit(session)
    assert notice.status == OutageStatus.draft.value and notice.version == 0
    assert await outages_affecting(session, district="和平区", community="幸福里小区") == []  # drafts are private
    assert len(await _audit("outage.create", notice.id)) == 1

    queued = await do_publish_outage(session, wo_actor(), notice)
    await commit(session)
    assert queued == 1 and notice.status == "published" and notice.version == 1 and len(notice.content_hash) == 64
    [published] = await _audit("outage.publish", notice.id)
    assert published.changes["after"]["queued"] == 1
    assert [o.id for o in await outages_affecting(session, district="和平区", community="幸福里小区")] == [notice.id]
    assert [o.id for o in await notices_for_customer(session, customer.id)] == [notice.id]
    with pytest.raises(Conflict):
        await do_publish_outage(session, wo_actor(), notice)

    # an update that changes nothing residents read: no new version, nothing queued, still audited
    assert await do_update_outage(session, wo_actor(), notice, content(XINGFU)) == 0
    await commit(session)
    assert notice.version == 1 and notice.status == "published"
    assert len(await _audit("outage.update", notice.id)) == 1

    # a progress note is new content: version 2, the customer queued again for it
    assert await do_update_outage(session, wo_actor(), notice, content(XINGFU, note="抢修中，预计延后")) == 1
    await commit(session)
    assert notice.version == 2 and notice.status == "updated" and "抢修中" in describe(notice)

    assert await do_close_outage(session, wo_actor(), notice, note="已修复") == 1
    await commit(session)
    assert notice.status == "closed" and "已恢复供气" in describe(notice)
    assert await outages_affecting(session, district="和平区", community="幸福里小区") == []
    assert await notices_for_customer(session, customer.id) == []
    assert len(await _audit("outage.close", notice.id)) == 1
    async with db.sessionmaker()() as s:
        assert await s.scalar(select(func.count()).select_from(Broadcast)) == 3  # published, updated, closed


async def test_building_level_notice_reaches_only_that_building(session, factory) -> None:
    in_three = await factory.customer(address=home("3号楼"))
    in_four = await factory.customer(address=home("4"))
    elsewhere = await factory.customer(address=home("3", community="阳光花园"))
    notice = await do_create_outage(session, wo_actor(), content(AreaSpec(district="和平区", community="幸福里小区",
                                                                            building="三栋")))
    assert await do_publish_outage(session, wo_actor(), notice) == 1
    await commit(session)
    assert [d.customer_id for d in await _deliveries()] == [in_three.id]
    assert [o.id for o in await notices_for_customer(session, in_three.id)] == [notice.id]
    assert await notices_for_customer(session, in_four.id) == []
    assert await notices_for_customer(session, elsewhere.id) == []


async def test_district_spellings_and_kind(session, factory) -> None:
    customer = await factory.customer(address=home("1", district="和平"))  # stored without 区
    notice = await do_create_outage(session, wo_actor(), content(AreaSpec(district="和平区"), kind="heating"))
    assert await do_publish_outage(session, wo_actor(), notice) == 1
    await commit(session)
    assert [o.id for o in await notices_for_customer(session, customer.id, kind="heating")] == [notice.id]
    assert await notices_for_customer(session, customer.id, kind="gas") == []


async def test_imported_customer_list(session, factory) -> None:
    listed = await factory.customer(account_no="2100000001", address=home("9", community="别的小区"))
    other = await factory.customer(account_no="2100000002", address=home("9", community="别的小区"))
    notice = await do_create_outage(session, wo_actor(), content())
    with pytest.raises(InvalidInput, match="区域或导入用户名单"):
        await do_publish_outage(session, wo_actor(), notice)
    result = await do_import_outage_customers(session, wo_actor(), notice,
                                              "户号,备注\n2100000001,一号\n2100000001,重复\n2199999999,\nabc,坏\n")
    assert (result.matched, result.unknown, len(result.invalid), result.queued) == (1, 1, 1, 0)
    assert await do_publish_outage(session, wo_actor(), notice) == 1
    await commit(session)
    assert [d.customer_id for d in await _deliveries()] == [listed.id]
    assert [o.id for o in await notices_for_customer(session, listed.id)] == [notice.id]
    assert await notices_for_customer(session, other.id) == []
    # the list grows on a published notice: only the newcomer is queued
    result = await do_import_outage_customers(session, wo_actor(), notice, "2100000001\n2100000002\n")
    await commit(session)
    assert result.queued == 1 and sorted(d.customer_id for d in await _deliveries()) == sorted([listed.id, other.id])
    assert len(await _audit("outage.import_customers", notice.id)) == 2


@pytest.mark.no_database
def test_account_list_is_capped(monkeypatch) -> None:
    from gasdesk.outages import service

    monkeypatch.setattr(service, "MAX_IMPORTED_CUSTOMERS", 3)
    with pytest.raises(InvalidInput, match="最多 3 个户号"):
        parse_account_list("\n".join(f"21000000{i:02d}" for i in range(5)))
    assert parse_account_list("21000001\n21000002")[0] == ["21000001", "21000002"]


async def test_rest_api_life_cycle_and_roles(client, factory, session) -> None:
    customer = await factory.customer(address=home("3"))
    dispatcher = await factory.headers("dispatcher")
    body = {"kind": "gas", "planned": False, "title": "幸福里突发停气", "areas": [{"district": "和平区",
            "community": "幸福里小区"}], "starts_at": "2026-12-07T09:00:00+08:00", "ends_at": "2026-12-07T18:00:00+08:00",
            "reason": "第三方施工挖断管线"}
    assert (await client.post("/api/v1/outages/notices", json=body, headers=await factory.headers("agent"))
            ).status_code == 403
    created = await client.post("/api/v1/outages/notices", json=body, headers=dispatcher)
    assert created.status_code == 201, created.text
    outage_id = created.json()["id"]
    assert created.json()["status"] == "draft" and created.json()["status_label"] == "草稿"
    published = await client.post(f"/api/v1/outages/notices/{outage_id}/publish", headers=dispatcher)
    assert published.json() == {"id": outage_id, "status": "published", "version": 1, "queued": 1}
    same = await client.put(f"/api/v1/outages/notices/{outage_id}", json=body, headers=dispatcher)
    assert same.json()["queued"] == 0 and same.json()["version"] == 1
    mine = await client.get(f"/api/v1/outages/for-customer/{customer.id}", headers=await factory.headers("agent"))
    assert [o["id"] for o in mine.json()] == [outage_id] and "突发停气" in mine.json()[0]["text"]
    detail = (await client.get(f"/api/v1/outages/notices/{outage_id}", headers=dispatcher)).json()
    assert detail["deliveries"][0]["total"] == 1 and detail["deliveries"][0]["by_status"] == {"queued": 1}
    closed = await client.post(f"/api/v1/outages/notices/{outage_id}/close", json={"note": "已抢修完毕"},
                               headers=dispatcher)
    assert closed.json()["status"] == "closed" and closed.json()["queued"] == 1
    upload = await client.post(f"/api/v1/outages/notices/{outage_id}/customers", headers=dispatcher,
                               files={"file": ("list.csv", b"2100000001\n", "text/csv")})
    assert upload.status_code == 409
