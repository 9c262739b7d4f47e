"""Time: stored in UTC, shown in the utility's zone. Tests move the clock through ``set_now``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload
from zoneinfo import ZoneInfo

from gasdesk.config import get_settings

_frozen: datetime | None = None


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (or the frozen test time)."""
    return _frozen if _frozen is not None else datetime.now(UTC)


def set_now(moment: datetime | None) -> None:
    """Freeze the clock at ``moment`` (aware) or unfreeze it with ``None``."""
    global _frozen
    if moment is not None and moment.tzinfo is None:
        raise ValueError("set_now needs an aware datetime")
    _frozen = moment.astimezone(UTC) if moment else None


def as_utc(moment: datetime) -> datetime:
    """Treat naive datetimes read back from SQLite as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().display_timezone)


@overload
def to_local(moment: datetime) -> datetime: ...
@overload
def to_local(moment: None) -> None: ...
@overload
def to_local(moment: datetime | None) -> datetime | None: ...
def to_local(moment: datetime | None) -> datetime | None:
    """Convert a stored UTC time to the display zone (Asia/Shanghai by default)."""
    if moment is None:
        return None
    return as_utc(moment).astimezone(local_zone())


def format_local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    local = to_local(moment)
    return local.strftime(fmt) if local else ""
