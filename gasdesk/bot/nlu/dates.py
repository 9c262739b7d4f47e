"""Resolve colloquial Chinese date/time expressions (明天下午, 下周一, 3号, 晚上7点半) against ``now``.

Input is text that has been through ``normalize`` (half-width digits). Dates come back as ISO
``YYYY-MM-DD``; times as ``HH:MM`` when a clock time is given, otherwise the part of day
(上午/中午/下午/晚上).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gasdesk.clock import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"(?:\d{1,2}|[零〇一二两三四五六七八九十]{1,3})"
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
for _i in range(1, 8):
    _WEEKDAYS[str(_i)] = _i - 1

_RELATIVE_DAYS = (
    ("大后天", 3), ("大前天", -3), ("后天", 2), ("前天", -2), ("明天", 1), ("明日", 1), ("明儿", 1),
    ("明早", 1), ("明晚", 1), ("今天", 0), ("今日", 0), ("今儿", 0), ("今早", 0), ("今晚", 0),
    ("昨天", -1), ("昨晚", -1),
)
_RELATIVE_RE = re.compile("|".join(word for word, _ in _RELATIVE_DAYS))
_FULL_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?")
_MONTH_DAY = re.compile(rf"({_NUM})月({_NUM})[日号]?")
_WEEKDAY = re.compile(r"(这个?|本|下下个?|下个?|上个?)?(?:周|星期|礼拜)([一二三四五六日天七1-7])")
_WEEKEND = re.compile(r"(这个?|本|下个?)?周末")
# 3号 / 下个月5日, but not 3号楼, 5号线, 幸福路12号, 工单号.
_DAY_OF_MONTH = re.compile(
    rf"(?<![\d路街道巷弄区单a-z])(下个?月|这个?月|本月)?({_NUM})[号日](?![楼院线门口床房机栋座单元\d])"
)
_DAYS_LATER = re.compile(rf"({_NUM})天(?:后|以后|之后)")

_PARTS = (
    ("上午", "上午"), ("早上", "上午"), ("早晨", "上午"), ("清早", "上午"), ("明早", "上午"), ("今早", "上午"),
    ("中午", "中午"), ("下午", "下午"), ("午后", "下午"), ("傍晚", "晚上"), ("晚上", "晚上"), ("今晚", "晚上"),
    ("明晚", "晚上"), ("夜里", "晚上"), ("晚间", "晚上"),
)
_PART_RE = re.compile("|".join(word for word, _ in _PARTS))
_CLOCK_COLON = re.compile(r"(?<!\d)([01]?\d|2[0-3])[:：]([0-5]\d)(?!\d)")
_CLOCK = re.compile(rf"({_NUM})点(?:钟)?(半|一刻|三刻|({_NUM})分?)?")
_CN_HOUR_CONTEXT = re.compile(r"(上午|早上|中午|下午|晚上|傍晚|今晚|明晚|明早|今早|天|号|日|[一二三四五六日天])的?$")


def cn_number(token: str) -> int | None:
    """Parse 1–99 written in digits or Chinese numerals (三, 十二, 二十五, 两)."""
    if token.isdigit():
        return int(token)
    if "十" in token:
        tens, _, units = token.partition("十")
        high = _CN_DIGITS.get(tens, None) if tens else 1
        low = _CN_DIGITS.get(units, None) if units else 0
        if high is None or low is None:
            return None
        return high * 10 + low
    if len(token) == 1 and token in _CN_DIGITS:
        return _CN_DIGITS[token]
    return None


def local_now(now: datetime | None) -> datetime:
    """``now`` in Asia/Shanghai; naive values are taken as already local."""
    if now is None:
        now = utcnow()
    if now.tzinfo is None:
        return now.replace(tzinfo=SHANGHAI)
    return now.astimezone(SHANGHAI)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _add_month(day: date, months: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + months
    return index // 12, index % 12 + 1


def resolve_date(text: str, now: datetime | None = None) -> str | None:
    """The first date expression in ``text`` as ``YYYY-MM-DD``, or None."""
    today = local_now(now).date()
    if match := _FULL_DATE.search(text):
        found = _safe_date(int(match[1]), int(match[2]), int(match[3]))
        return found.isoformat() if found else None
    if match := _MONTH_DAY.search(text):
        month, day = cn_number(match[1]), cn_number(match[2])
        if month and day:
            found = _safe_date(today.year, month, day)
            if found and found < today:
                found = _safe_date(today.year + 1, month, day)
            if found:
                return found.isoformat()
    if match := _WEEKDAY.search(text):
        return _weekday(today, match[1] or "", _WEEKDAYS[match[2]]).isoformat()
    if match := _WEEKEND.search(text):
        return _weekday(today, match[1] or "", 5 if today.weekday() != 6 else 6).isoformat()
    if match := _RELATIVE_RE.search(text):
        offset = dict(_RELATIVE_DAYS)[match[0]]
        return (today + timedelta(days=offset)).isoformat()
    if match := _DAYS_LATER.search(text):
        days = cn_number(match[1])
        if days is not None and days <= 60:
            return (today + timedelta(days=days)).isoformat()
    if match := _DAY_OF_MONTH.search(text):
        return _day_of_month(today, match[1] or "", cn_number(match[2]))
    return None


def _weekday(today: date, prefix: str, weekday: int) -> date:
    monday = today - timedelta(days=today.weekday())
    if prefix.startswith("下下"):
        return monday + timedelta(weeks=2, days=weekday)
    if prefix.startswith("下"):
        return monday + timedelta(weeks=1, days=weekday)
    if prefix.startswith("上"):
        return monday - timedelta(weeks=1) + timedelta(days=weekday)
    if prefix:  # 这周六 / 本周六: this calendar week, Monday first
        return monday + timedelta(days=weekday)
    # A bare 周六 means the next one, today included.
    return today + timedelta(days=(weekday - today.weekday()) % 7)


def _day_of_month(today: date, prefix: str, day: int | None) -> str | None:
    if not day or day > 31:
        return None
    if prefix.startswith("下"):
        year, month = _add_month(today, 1)
        found = _safe_date(year, month, day)
    else:
        found = _safe_date(today.year, today.month, day)
        if found is None or (found < today and not prefix):
            year, month = _add_month(today, 1)
            found = _safe_date(year, month, day)
    return found.isoformat() if found else None


def resolve_time(text: str) -> str | None:
    """A clock time ``HH:MM`` when given, else the part of day, else None."""
    part_match = _PART_RE.search(text)
    part = dict(_PARTS)[part_match[0]] if part_match else None
    clock = _clock(text)
    if clock is None:
        return part
    hour, minute = clock
    if part in ("下午", "晚上") and hour < 12:
        hour += 12
    elif part == "中午" and hour < 11:
        hour += 12
    elif part is None and 1 <= hour <= 6:
        hour += 12  # "约3点" means the afternoon; nobody books a visit for 3 a.m.
    return f"{hour % 24:02d}:{minute:02d}"


def _clock(text: str) -> tuple[int, int] | None:
    if match := _CLOCK_COLON.search(text):
        return int(match[1]), int(match[2])
    for match in _CLOCK.finditer(text):
        hour = cn_number(match[1])
        if hour is None or hour > 24:
            continue
        # Chinese-numeral hours collide with 一点/两点 ("a bit"); demand clock context for them.
        if not match[1].isdigit() and not match[2] and not _CN_HOUR_CONTEXT.search(text[: match.start()]):
            continue
        minute = 0
        if match[2] == "半":
            minute = 30
        elif match[2] == "一刻":
            minute = 15
        elif match[2] == "三刻":
            minute = 45
        elif match[3]:
            minute = cn_number(match[3]) or 0
        if minute < 60:
            return hour, minute
    return None
