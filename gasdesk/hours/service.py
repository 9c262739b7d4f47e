"""Whether a service line or branch is open, local overrides (audited), and the holiday notice residents hear.

``opening_state(session, kind, at)`` is the one answer to "open now?" everywhere: the hand-off to people, the
IVR's hours node, the bot's branch answers, the branch API. It loads the :class:`Schedule` of ``kind`` (weekly
hours, statutory holidays and 调休 workdays from the national calendar, local overrides) and asks
``opening_hours.state_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.branches.models import BranchHoliday, ServiceBranch
from gasdesk.clock import to_local, utcnow
from gasdesk.config import get_settings
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.hours.models import SERVICE_LINE_LABELS, HoursOverride, ServiceLine
from gasdesk.opening_hours import (
    WEEKDAYS,
    DayHours,
    DayKind,
    DayOverride,
    OpeningState,
    Schedule,
    calendar_covers,
    check_hours,
    day_hours,
    state_at,
)
from gasdesk.routing.models import SkillGroup

# What counts as a holiday's 调休 workday: one with the holiday's name within this many days of it.
WORKDAY_REACH = timedelta(days=14)
ROUND_THE_CLOCK = "00:00-24:00"
WEEKDAY_NAMES = "一二三四五六日"
# Counters' default week when no branch exists (notices still need to know which days are weekends).
DEFAULT_COUNTER_WEEK = {d: ("08:30-17:00" if int(d) <= 5 else "") for d in WEEKDAYS}

Kind = str | ServiceBranch | SkillGroup
"""``"counters"``, ``"hotline"``, ``"branch:<id>"``, ``"group:<id or code>"``, or a loaded branch or group."""


def local_now(at: datetime | None = None) -> datetime:
    return to_local(at or utcnow())


# ----------------------------------------------------------------- schedules


async def line_overrides(session: AsyncSession, line: ServiceLine) -> dict[date, DayOverride]:
    rows = await session.scalars(select(HoursOverride).where(HoursOverride.line == line.value))
    return {row.day: DayOverride(row.hours, row.note) for row in rows}


async def _branch_days(session: AsyncSession, branch_id: int) -> dict[date, DayOverride]:
    # Queried rather than ``branch.holidays``: a branch loaded without them must not lazy-load under asyncio.
    rows = await session.scalars(select(BranchHoliday).where(BranchHoliday.branch_id == branch_id))
    return {row.day: DayOverride(row.hours, row.note) for row in rows}


async def load_schedule(session: AsyncSession, kind: Kind) -> Schedule:
    """The schedule of a service line, branch or skill group. A branch follows the counters' line (statutory
    holidays, the line's overrides) and then its own days; a skill group follows the hotline's line."""
    if isinstance(kind, ServiceBranch):
        overrides = await line_overrides(session, ServiceLine.counters) | await _branch_days(session, kind.id)
        return Schedule(kind.weekly_hours or {}, True, overrides)
    if isinstance(kind, SkillGroup):
        return Schedule(kind.working_hours or {}, get_settings().hotline_observes_holidays,
                        await line_overrides(session, ServiceLine.hotline))
    if kind == ServiceLine.counters.value:
        first = await session.scalar(select(ServiceBranch).where(ServiceBranch.is_active)
                                     .order_by(ServiceBranch.id).limit(1))
        weekly = first.weekly_hours if first is not None else DEFAULT_COUNTER_WEEK
        return Schedule(weekly, True, await line_overrides(session, ServiceLine.counters))
    if kind == ServiceLine.hotline.value:
        group = await session.scalar(select(SkillGroup).order_by(SkillGroup.id).limit(1))
        weekly = group.working_hours if group is not None else {d: ROUND_THE_CLOCK for d in WEEKDAYS}
        return Schedule(weekly, get_settings().hotline_observes_holidays,
                        await line_overrides(session, ServiceLine.hotline))
    prefix, _, ref = kind.partition(":")
    if prefix == "branch" and ref.isdigit():
        branch = await session.get(ServiceBranch, int(ref))
        if branch is None:
            raise NotFound("营业网点不存在", code="branch_not_found")
        return await load_schedule(session, branch)
    if prefix == "group" and ref:
        group = await session.get(SkillGroup, int(ref)) if ref.isdigit() else await session.scalar(
            select(SkillGroup).where(SkillGroup.code == ref))
        if group is None:
            raise NotFound(f"技能组 {ref} 不存在", code="skill_group_not_found")
        return await load_schedule(session, group)
    raise InvalidInput(f"未知的服务时间类别 {kind!r}", code="invalid_hours_kind")


async def opening_state(session: AsyncSession, kind: Kind, at: datetime | None = None) -> OpeningState:
    """Is ``kind`` open at ``at`` (default now), with today's hours and why they differ from the usual."""
    return state_at(await load_schedule(session, kind), local_now(at))


async def special_days(session: AsyncSession, kind: Kind, start: date, days: int) -> list[tuple[date, DayHours]]:
    """The days of the next ``days`` from ``start`` whose hours are not the ordinary weekly ones: statutory
    holidays, 调休 workdays, local overrides (the bot lists them with a branch)."""
    schedule = await load_schedule(session, kind)
    found = []
    for offset in range(days + 1):
        day = start + timedelta(days=offset)
        hours = day_hours(schedule, day)
        if hours.kind not in (DayKind.workday, DayKind.weekend):
            found.append((day, hours))
    return found


# ----------------------------------------------------------------- local overrides (admin write path)


def check_line(line: str) -> ServiceLine:
    try:
        return ServiceLine(line)
    except ValueError:
        raise InvalidInput(f"未知的服务线 {line!r}（counters 营业厅 / hotline 热线）", code="invalid_service_line") from None


async def list_overrides(session: AsyncSession, since: date | None = None) -> list[HoursOverride]:
    query = select(HoursOverride)
    if since is not None:
        query = query.where(HoursOverride.day >= since)
    return list(await session.scalars(query.order_by(HoursOverride.day, HoursOverride.line)))


async def do_set_override(session: AsyncSession, actor: Actor, *, line: str, day: date, hours: str,
                          note: str) -> HoursOverride:
    """Set one day's hours of a service line ("" = closed), replacing an earlier entry for that day; audited."""
    value = check_line(line)
    hours = check_hours(hours)
    note = (note or "").strip()[:60]
    row = await session.scalar(select(HoursOverride).where(HoursOverride.line == value.value, HoursOverride.day == day))
    before = row.snapshot() if row is not None else None
    if row is None:
        row = HoursOverride(line=value.value, day=day, created_at=utcnow())
        session.add(row)
    row.hours, row.note = hours, note
    await session.flush()
    record_audit(session, actor, "hours.override", "hours_override", row.id, before=before, after=row.snapshot())
    return row


async def do_delete_override(session: AsyncSession, actor: Actor, override_id: int) -> None:
    """Remove a local override (the calendar's hours apply again); audited."""
    row = await session.get(HoursOverride, override_id)
    if row is None:
        raise NotFound("该日期安排不存在", code="hours_override_not_found")
    before = row.snapshot()
    await session.execute(delete(HoursOverride).where(HoursOverride.id == override_id))
    record_audit(session, actor, "hours.override_delete", "hours_override", override_id, before=before)


def calendar_warning(at: datetime | None = None) -> str | None:
    """An admin warning when the holiday library has no data for a day the notices look at (today up to
    90 days ahead): those days count as ordinary weekdays until overrides are entered."""
    today = local_now(at).date()
    for ahead in (0, 90):
        day = today + timedelta(days=ahead)
        if not calendar_covers(day):
            return (f"节假日库（chinese_calendar）尚无 {day.year} 年的法定节假日和调休数据：这些日期按普通工作日/周末计算。"
                    f"请在下方逐日添加 {day.year} 年的放假和调休安排，或升级 chinese_calendar。")
    return None


# ----------------------------------------------------------------- the holiday notice


@dataclass(frozen=True)
class HolidayNotice:
    holiday: str
    first: date
    last: date
    workdays: tuple[date, ...]
    text: str


def _day(d: date, ref: date | None = None) -> str:
    return f"{d.day}日" if ref is not None and ref.month == d.month else f"{d.month}月{d.day}日"


def _span(first: date, last: date) -> str:
    return _day(first) if first == last else f"{_day(first)}至{_day(last, first)}"


async def _hotline_text(session: AsyncSession) -> str:
    number = get_settings().service_hotline
    if get_settings().hotline_observes_holidays:
        return f"热线 {number} 节假日期间按值班安排服务"
    groups = list(await session.scalars(select(SkillGroup)))
    if any(all((g.working_hours or {}).get(d) == ROUND_THE_CLOCK for d in WEEKDAYS) for g in groups):
        return f"热线 {number} 24 小时服务"
    return f"热线 {number} 照常服务"


async def holiday_notice(session: AsyncSession, at: datetime | None = None) -> HolidayNotice | None:
    """The counters' next named closure (a statutory holiday, or overrides closing days with a note) when it
    starts within ``holiday_notice_days`` or is under way, with its 调休 workdays, as one sentence for the
    bot, the IVR and the web chat: "国庆期间营业厅 10月1日至7日休息，10月10日（周六）调休正常上班；热线 96777 24
    小时服务". None outside that window."""
    today = local_now(at).date()
    schedule = await load_schedule(session, ServiceLine.counters.value)

    def closed_name(day: date) -> str:
        hours = day_hours(schedule, day)
        return hours.holiday if hours.kind is DayKind.holiday and not hours.hours else ""

    horizon = get_settings().holiday_notice_days
    first: date | None = None
    for offset in range(horizon + 1):
        if closed_name(today + timedelta(days=offset)):
            first = today + timedelta(days=offset)
            break
    if first is None:
        return None
    name = closed_name(first)
    while closed_name(first - timedelta(days=1)) == name:
        first -= timedelta(days=1)
    last = first
    while closed_name(last + timedelta(days=1)) == name:
        last += timedelta(days=1)
    workdays = []
    day = first - WORKDAY_REACH
    while day <= last + WORKDAY_REACH:
        hours = day_hours(schedule, day)
        if hours.kind is DayKind.adjusted_workday and hours.holiday == name and day >= today:
            workdays.append(day)
        day += timedelta(days=1)
    text = f"{name}期间营业厅 {_span(first, last)}休息"
    if workdays:
        text += "，" + "、".join(f"{_day(d)}（周{WEEKDAY_NAMES[d.weekday()]}）" for d in workdays) + "调休正常上班"
    text += "；" + await _hotline_text(session)
    return HolidayNotice(name, first, last, tuple(workdays), text)


def line_label(line: str) -> str:
    """营业厅 / 热线 for a stored line code."""
    return next((label for key, label in SERVICE_LINE_LABELS.items() if key.value == line), line)
