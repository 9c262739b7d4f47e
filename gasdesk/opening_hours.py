"""Weekly opening hours ("08:30-17:00" per ISO weekday), shared by branches and skill groups."""

from __future__ import annotations

import re
from datetime import time

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
