"""Opening hours, shared by branches and skill groups: weekly hours ("08:30-17:00" per ISO weekday), the
national holiday calendar (statutory holidays and 调休 workdays) and local overrides, folded into one
:class:`Schedule`; ``hours.service.opening_state`` loads the schedule of a line or branch and asks
:func:`state_at`. Pure computation: no database here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum

import chinese_calendar

from gasdesk.errors import InvalidInput

HOURS_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$")
WEEKDAYS = ("1", "2", "3", "4", "5", "6", "7")
WEEKDAY_LABELS = {"1": "周一", "2": "周二", "3": "周三", "4": "周四", "5": "周五", "6": "周六", "7": "周日"}


def check_hours(value: str) -> str:
    """"08:30-17:00" (24:00 allowed as an end), or "" for closed."""
    value = (value or "").strip().replace("：", ":").replace("—", "-").replace("～", "-").replace("~", "-")
    if value == "":
        return ""
    if not HOURS_RE.match(value):
        raise InvalidInput(f"营业时间格式应为 08:30-17:00，收到 {value!r}", code="invalid_hours")
    start, end = value.split("-")
    if start >= end:
        raise InvalidInput(f"营业时间的开始必须早于结束: {value}", code="invalid_hours")
    return value


def check_weekly_hours(hours: dict[str, str]) -> dict[str, str]:
    unknown = set(hours) - set(WEEKDAYS)
    if unknown:
        raise InvalidInput(f"未知的星期: {sorted(unknown)}（用 1–7 表示周一到周日）", code="invalid_hours")
    return {day: check_hours(hours.get(day, "")) for day in WEEKDAYS}


def within(hours: str, moment: time) -> bool:
    """Is the local time ``moment`` inside ``hours``?"""
    if not hours:
        return False
    start_s, end_s = hours.split("-")
    if moment < time.fromisoformat(start_s):
        return False
    return end_s == "24:00" or moment < time.fromisoformat(end_s)


# ----------------------------------------------------------------- the calendar and one day's hours

# chinese_calendar's holiday names (English) → how residents call them.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节", "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节", "National Day": "国庆", "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


class DayKind(StrEnum):
    workday = "workday"
    weekend = "weekend"
    holiday = "holiday"  # a statutory holiday (or a local override closing the day with a note)
    adjusted_workday = "adjusted_workday"  # 调休: a weekend day worked in exchange for a holiday
    override = "override"  # a local override changing the hours of an ordinary day


@dataclass(frozen=True)
class CalendarDay:
    """What the national calendar says about a day; ``covered`` is False when the library has no data for
    its year (then only weekdays and local overrides count)."""

    day: date
    kind: DayKind
    holiday: str = ""  # 国庆, 春节… for holidays and their 调休 workdays
    covered: bool = True


def calendar_day(day: date) -> CalendarDay:
    """Statutory holidays and 调休 workdays from ``chinese_calendar`` (offline data, updated each year when the
    State Council publishes the schedule); an ordinary weekday/weekend when its data stops before ``day``."""
    weekend = day.isoweekday() >= 6
    plain = DayKind.weekend if weekend else DayKind.workday
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return CalendarDay(day, plain, covered=False)
    label = HOLIDAY_NAMES.get(name or "", name or "")
    if name and is_holiday:
        return CalendarDay(day, DayKind.holiday, label)
    if name and not is_holiday and weekend:
        return CalendarDay(day, DayKind.adjusted_workday, label)
    return CalendarDay(day, plain)


def calendar_covers(day: date) -> bool:
    """Whether the holiday library has data for ``day``'s year."""
    return calendar_day(day).covered


@dataclass(frozen=True)
class DayOverride:
    """A local exception for one day: ``hours`` "" = closed; ``note`` says why (e.g. 国庆, 设备检修)."""

    hours: str
    note: str = ""


@dataclass(frozen=True)
class Schedule:
    """When one service line or branch is open: weekly hours, whether statutory holidays close it (and 调休
    workdays open it with the workday hours), and local overrides — those of the service line first, then the
    branch's own, later ones winning."""

    weekly: Mapping[str, str]
    observes_holidays: bool = True
    overrides: Mapping[date, DayOverride] = field(default_factory=dict)


@dataclass(frozen=True)
class DayHours:
    hours: str  # "" = closed all day
    kind: DayKind
    note: str = ""
    holiday: str = ""


def workday_hours(weekly: Mapping[str, str]) -> str:
    """The hours of an ordinary workday (the first of Monday–Friday that has hours): what a 调休 weekend works."""
    return next((weekly.get(d, "") for d in WEEKDAYS[:5] if weekly.get(d, "")), "")


def day_hours(schedule: Schedule, day: date) -> DayHours:
    """The hours of ``schedule`` on the local date ``day``: override, else statutory holiday / 调休, else weekly."""
    override = schedule.overrides.get(day)
    cal = calendar_day(day) if schedule.observes_holidays else CalendarDay(day, DayKind.workday)
    if override is not None:
        if not override.hours:
            return DayHours("", DayKind.holiday if override.note else DayKind.override, override.note, override.note)
        weekend = day.isoweekday() >= 6 and not schedule.weekly.get(str(day.isoweekday()), "")
        kind = DayKind.adjusted_workday if weekend else DayKind.override
        return DayHours(override.hours, kind, override.note, override.note if weekend else "")
    if cal.kind is DayKind.holiday:
        return DayHours("", DayKind.holiday, f"{cal.holiday}放假", cal.holiday)
    if cal.kind is DayKind.adjusted_workday:
        return DayHours(workday_hours(schedule.weekly), DayKind.adjusted_workday, f"{cal.holiday}调休上班", cal.holiday)
    weekly = schedule.weekly.get(str(day.isoweekday()), "")
    return DayHours(weekly, DayKind.weekend if day.isoweekday() >= 6 else DayKind.workday)


@dataclass(frozen=True)
class OpeningState:
    """Open now? and today's hours with the reason when they differ from the weekly ones."""

    is_open: bool
    hours_today: str
    note: str
    kind: DayKind
    holiday: str = ""


def state_at(schedule: Schedule, local: datetime) -> OpeningState:
    """The opening state of ``schedule`` at the local (display-zone) time ``local``."""
    today = day_hours(schedule, local.date())
    is_open = within(today.hours, local.time())
    note = today.note or ("" if today.hours else "今日休息")
    return OpeningState(is_open, today.hours, note, today.kind, today.holiday)
