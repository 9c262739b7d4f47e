"""Branch hours, holiday overrides and the admin API."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gasdesk import clock
from gasdesk.audit.service import Actor
from gasdesk.branches.service import (
    access_branch,
    check_hours,
    check_weekly_hours,
    do_save_branch,
    do_set_holiday,
)
from gasdesk.db import commit, sessionmaker
from gasdesk.errors import Conflict, InvalidInput
from gasdesk.hours.service import opening_state

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = {"1": "08:30-17:00", "2": "08:30-17:00", "3": "08:30-17:00", "4": "08:30-17:00", "5": "08:30-17:00",
         "6": "09:00-16:00", "7": ""}
ACTOR = Actor.system("branch-test")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.mark.parametrize(("raw", "expected"), [
    ("08:30-17:00", "08:30-17:00"), (" 08：30-17：00 ", "08:30-17:00"), ("08:30~17:00", "08:30-17:00"),
    ("08:30—17:00", "08:30-17:00"), ("08:30～17:00", "08:30-17:00"), ("", ""), ("00:00-23:59", "00:00-23:59"),
    ("18:00-24:00", "18:00-24:00"),
])
def test_check_hours_accepts(raw: str, expected: str) -> None:
    assert check_hours(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ("8:30-17:00", "格式"), ("08:30-24:30", "格式"), ("24:00-24:00", "格式"), ("08:60-17:00", "格式"), ("08:30", "格式"),
    ("全天", "格式"), ("17:00-08:30", "开始必须早于结束"), ("09:00-09:00", "开始必须早于结束"),
])
def test_check_hours_rejects(raw: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        check_hours(raw)
    assert info.value.code == "invalid_hours"


def test_check_weekly_hours() -> None:
    assert check_weekly_hours({"1": "08:30-17:00"}) == {"1": "08:30-17:00", **{d: "" for d in "234567"}}
    with pytest.raises(InvalidInput, match="未知的星期"):
        check_weekly_hours({"8": "08:30-17:00"})
    with pytest.raises(InvalidInput, match="未知的星期"):
        check_weekly_hours({"Mon": "08:30-17:00"})


async def test_opening_status_with_holidays(session) -> None:
    branch = await do_save_branch(session, ACTOR, branch=None, name="和平区中心营业厅", district="和平区",
                                  address="南京南街 128 号", phone="024-23416600", weekly_hours=HOURS)
    await commit(session)
    # 2027-01-04 is a Monday, 2027-01-09 a Saturday, 2027-01-10 a Sunday
    assert (await opening_state(session, branch, local(2027, 1, 4, 8, 29))).is_open is False
    status = (await opening_state(session, branch, local(2027, 1, 4, 8, 30)))
    assert (status.is_open, status.hours_today) == (True, "08:30-17:00")
    assert (await opening_state(session, branch, local(2027, 1, 4, 16, 59))).is_open is True
    assert (await opening_state(session, branch, local(2027, 1, 4, 17, 0))).is_open is False
    late = await do_save_branch(session, ACTOR, branch=None, name="夜间服务点", district="和平区", address="x",
                                phone="1", weekly_hours={"1": "18:00-24:00"})
    assert (await opening_state(session, late, local(2027, 1, 4, 23, 59, 59))).is_open is True
    assert (await opening_state(session, late, local(2027, 1, 4, 17, 59))).is_open is False
    assert (await opening_state(session, branch, local(2027, 1, 9, 10, 0))).hours_today == "09:00-16:00"
    sunday = (await opening_state(session, branch, local(2027, 1, 10, 10, 0)))
    assert (sunday.is_open, sunday.hours_today, sunday.note) == (False, "", "今日休息")

    await do_set_holiday(session, ACTOR, branch, date(2027, 1, 4), "", "元旦调休")
    await do_set_holiday(session, ACTOR, branch, date(2027, 1, 10), "08:30-12:00", "调休上班")
    await do_set_holiday(session, ACTOR, branch, date(2027, 1, 8), "08:30-15:00", "提前下班")
    await commit(session)
    closed = (await opening_state(session, branch, local(2027, 1, 4, 10, 0)))
    assert (closed.is_open, closed.hours_today, closed.note) == (False, "", "元旦调休")
    worked = (await opening_state(session, branch, local(2027, 1, 10, 10, 0)))
    assert (worked.is_open, worked.hours_today, worked.note) == (True, "08:30-12:00", "调休上班")
    assert (await opening_state(session, branch, local(2027, 1, 10, 12, 30))).is_open is False
    assert (await opening_state(session, branch, local(2027, 1, 8, 16, 0))).is_open is False
    assert (await opening_state(session, branch, local(2027, 1, 11, 10, 0))).is_open is True, "the next Monday is normal again"

    # the local date decides, not the UTC date: 2027-01-04 07:30 in Shanghai is still 2027-01-03 in UTC
    clock.set_now(local(2027, 1, 4, 7, 30))
    assert (await opening_state(session, branch)).note == "元旦调休"

    # a holiday entry can be replaced, and it is validated
    await do_set_holiday(session, ACTOR, branch, date(2027, 1, 4), "09:00-11:00", "半天")
    await commit(session)
    assert (await opening_state(session, branch, local(2027, 1, 4, 10, 0))).is_open is True
    with pytest.raises(InvalidInput):
        await do_set_holiday(session, ACTOR, branch, date(2027, 1, 5), "12:00-09:00", "")
    async with sessionmaker()() as s:
        fresh = await access_branch(s, branch.id)
    assert [h.day for h in fresh.holidays] == [date(2027, 1, 4), date(2027, 1, 8), date(2027, 1, 10)]


async def test_save_branch_validation(session) -> None:
    await do_save_branch(session, ACTOR, branch=None, name="铁西区营业厅", district="铁西区", address="兴华北街",
                         phone="024-1", weekly_hours=HOURS)
    await commit(session)
    with pytest.raises(Conflict):
        await do_save_branch(session, ACTOR, branch=None, name=" 铁西区营业厅 ", district="铁西区", address="x",
                             phone="1", weekly_hours=HOURS)
    with pytest.raises(InvalidInput, match="不能为空"):
        await do_save_branch(session, ACTOR, branch=None, name="新网点", district="铁西区", address=" ",
                             phone="1", weekly_hours=HOURS)
    with pytest.raises(InvalidInput, match="营业时间"):
        await do_save_branch(session, ACTOR, branch=None, name="新网点", district="铁西区", address="x",
                             phone="1", weekly_hours={"1": "17:00-09:00"})


async def test_branch_api_crud_as_admin(client, factory) -> None:
    clock.set_now(local(2027, 2, 10, 10, 0))  # a Wednesday in the Spring Festival
    admin = await factory.headers("admin")
    body = {"name": "沈河区营业厅", "district": "沈河区", "address": "青年大街 219 号", "phone": "024-24128800",
            "weekly_hours": HOURS, "services": ["缴费", "开户"]}
    created = await client.post("/api/v1/branches", headers=admin, json=body)
    assert created.status_code == 201, created.text
    branch = created.json()
    assert branch["name"] == "沈河区营业厅" and branch["weekly_hours"] == HOURS and branch["services"] == ["缴费", "开户"]
    assert branch["holidays"] == []

    assert (await client.get("/api/v1/branches", headers=admin)).json()[0]["open_now"] is True
    holiday = await client.put(f"/api/v1/branches/{branch['id']}/holidays", headers=admin,
                               json={"day": "2027-02-10", "hours": "", "note": "春节"})
    assert holiday.status_code == 200
    assert holiday.json()["open_now"] is False and holiday.json()["hours_today"] == ""
    assert holiday.json()["holidays"] == [{"day": "2027-02-10", "hours": "", "note": "春节"}]

    updated = await client.put(f"/api/v1/branches/{branch['id']}", headers=admin,
                               json={**body, "phone": "024-24128801", "weekly_hours": {**HOURS, "7": "09:00-12:00"}})
    assert updated.status_code == 200
    assert updated.json()["phone"] == "024-24128801" and updated.json()["weekly_hours"]["7"] == "09:00-12:00"
    assert len(updated.json()["holidays"]) == 1, "saving the branch keeps its holidays"

    other = await client.post("/api/v1/branches", headers=admin, json={**body, "name": "浑南区营业厅", "district": "浑南区"})
    listing = await client.get("/api/v1/branches", headers=await factory.headers("field_crew"),
                               params={"district": "浑南区"})
    assert [b["id"] for b in listing.json()] == [other.json()["id"]]
    assert len((await client.get("/api/v1/branches", headers=admin)).json()) == 2

    audit = (await client.get("/api/v1/audit", headers=admin, params={"action": "branch."})).json()
    assert sorted(i["action"] for i in audit["items"]) == ["branch.create", "branch.create", "branch.holiday",
                                                           "branch.update"]


async def test_branch_api_errors(client, factory) -> None:
    admin = await factory.headers("admin")
    body = {"name": "皇姑区营业厅", "district": "皇姑区", "address": "黄河南大街 77 号", "phone": "024-1",
            "weekly_hours": HOURS}
    bad_hours = await client.post("/api/v1/branches", headers=admin, json={**body, "weekly_hours": {"1": "9-5"}})
    assert bad_hours.status_code == 422 and bad_hours.json()["error"]["code"] == "invalid_hours"
    bad_day = await client.post("/api/v1/branches", headers=admin, json={**body, "weekly_hours": {"0": ""}})
    assert bad_day.status_code == 422 and "未知的星期" in bad_day.json()["error"]["message"]
    missing = await client.post("/api/v1/branches", headers=admin, json={**body, "name": ""})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid_input"
    created = await client.post("/api/v1/branches", headers=admin, json=body)
    assert created.status_code == 201
    dup = await client.post("/api/v1/branches", headers=admin, json=body)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "branch_name_taken"
    bad_holiday = await client.put(f"/api/v1/branches/{created.json()['id']}/holidays", headers=admin,
                                   json={"day": "2027-02-10", "hours": "18:00-09:00"})
    assert bad_holiday.status_code == 422
    bad_date = await client.put(f"/api/v1/branches/{created.json()['id']}/holidays", headers=admin,
                                json={"day": "2027-02-30"})
    assert bad_date.status_code == 422
    nope = await client.put("/api/v1/branches/9999/holidays", headers=admin, json={"day": "2027-02-10"})
    assert nope.status_code == 404 and nope.json()["error"]["code"] == "branch_not_found"
    agent = await client.post("/api/v1/branches", headers=await factory.headers("agent"),
                              json={**body, "name": "坐席建的"})
    assert agent.status_code == 403
    assert len((await client.get("/api/v1/branches", headers=admin)).json()) == 1
