"""opening_state: weekly hours, statutory holidays and 调休 from chinese_calendar, local overrides, the data's end."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.branches.service import do_save_branch, do_set_holiday
from gasdesk.db import commit
from gasdesk.hours.service import calendar_warning, do_delete_override, do_set_override, opening_state
from gasdesk.opening_hours import DayKind, calendar_covers, calendar_day
from gasdesk.routing.models import SkillGroup

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEK = {"1": "08:30-17:00", "2": "08:30-17:00", "3": "08:30-17:00", "4": "08:30-17:00", "5": "08:30-17:00",
        "6": "", "7": ""}
ADMIN = Actor.system("hours-test")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_the_calendar_knows_2026_holidays_and_adjusted_workdays_but_not_2027() -> None:
    assert calendar_day(date(2026, 10, 1)).kind is DayKind.holiday
    assert calendar_day(date(2026, 10, 1)).holiday == "国庆"
    assert calendar_day(date(2026, 10, 10)).kind is DayKind.adjusted_workday  # a Saturday worked for 国庆
    assert calendar_day(date(2026, 2, 14)).kind is DayKind.adjusted_workday  # 春节调休
    assert calendar_day(date(2026, 10, 9)).kind is DayKind.workday
    assert calendar_day(date(2026, 10, 11)).kind is DayKind.weekend
    assert calendar_covers(date(2026, 12, 31)) and not calendar_covers(date(2027, 1, 1))
    assert calendar_day(date(2027, 10, 1)) == calendar_day(date(2027, 10, 1))
    assert calendar_day(date(2027, 10, 1)).kind is DayKind.workday and not calendar_day(date(2027, 10, 1)).covered
    # the admin is warned about the missing year, looking 90 days ahead
    assert "2027" in (calendar_warning(at(2026, 12, 4, 10, 0)) or "")
    assert calendar_warning(at(2026, 6, 1, 10, 0)) is None


async def test_branches_close_on_statutory_holidays_and_open_on_adjusted_workdays(session) -> None:
    branch = await do_save_branch(session, ADMIN, branch=None, name="和平营业厅", district="和平区", address="x",
                                  phone="024-1", weekly_hours=WEEK)
    await commit(session)
    holiday = await opening_state(session, branch, at(2026, 10, 2, 10, 0))
    assert (holiday.is_open, holiday.hours_today, holiday.kind, holiday.holiday) == (False, "", DayKind.holiday, "国庆")
    assert holiday.note == "国庆放假"
    worked = await opening_state(session, branch, at(2026, 10, 10, 10, 0))  # Saturday, 调休
    assert (worked.is_open, worked.hours_today, worked.kind) == (True, "08:30-17:00", DayKind.adjusted_workday)
    assert worked.note == "国庆调休上班"
    assert (await opening_state(session, branch, at(2026, 10, 10, 17, 30))).is_open is False
    assert (await opening_state(session, branch, at(2026, 10, 11, 10, 0))).is_open is False  # ordinary Sunday
    assert (await opening_state(session, f"branch:{branch.id}", at(2026, 10, 9, 10, 0))).is_open is True

    # the counters' line override applies to every branch; the branch's own day wins over it
    await do_set_override(session, ADMIN, line="counters", day=date(2026, 10, 9), hours="", note="系统升级")
    await commit(session)
    closed = await opening_state(session, branch, at(2026, 10, 9, 10, 0))
    assert (closed.is_open, closed.note) == (False, "系统升级")
    await do_set_holiday(session, ADMIN, branch, date(2026, 10, 9), "09:00-12:00", "本厅照常")
    await commit(session)
    assert (await opening_state(session, branch, at(2026, 10, 9, 10, 0))).is_open is True
    # an override can open a statutory holiday, too (a duty counter)
    await do_set_override(session, ADMIN, line="counters", day=date(2026, 10, 3), hours="10:00-15:00", note="值班")
    await commit(session)
    duty = await opening_state(session, branch, at(2026, 10, 3, 11, 0))
    assert (duty.is_open, duty.hours_today, duty.note) == (True, "10:00-15:00", "值班")


async def test_the_hotline_ignores_holidays_by_default_but_follows_its_overrides(session) -> None:
    group = SkillGroup(code="heat", name="热力", working_hours={d: "08:00-20:00" for d in "1234567"})
    session.add(group)
    await commit(session)
    assert (await opening_state(session, group, at(2026, 10, 1, 10, 0))).is_open is True
    assert (await opening_state(session, "group:heat", at(2026, 10, 1, 21, 0))).is_open is False
    row = await do_set_override(session, ADMIN, line="hotline", day=date(2026, 10, 1), hours="09:00-12:00",
                                note="国庆值班")
    await commit(session)
    assert (await opening_state(session, group, at(2026, 10, 1, 13, 0))).is_open is False
    assert (await opening_state(session, group, at(2026, 10, 1, 10, 0))).is_open is True
    await do_delete_override(session, ADMIN, row.id)
    await commit(session)
    assert (await opening_state(session, group, at(2026, 10, 1, 13, 0))).is_open is True
    actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "hours_override")))
    assert actions == ["hours.override", "hours.override_delete"]


async def test_where_the_library_stops_overrides_carry_the_2027_schedule(session) -> None:
    branch = await do_save_branch(session, ADMIN, branch=None, name="沈河营业厅", district="沈河区", address="x",
                                  phone="024-2", weekly_hours=WEEK)
    await commit(session)
    assert (await opening_state(session, branch, at(2027, 10, 1, 10, 0))).is_open is True  # no data: a Friday
    await do_set_override(session, ADMIN, line="counters", day=date(2027, 10, 1), hours="", note="国庆")
    await commit(session)
    closed = await opening_state(session, branch, at(2027, 10, 1, 10, 0))
    assert (closed.is_open, closed.kind, closed.holiday) == (False, DayKind.holiday, "国庆")
