"""Types and checks for untrusted input, shared by every route, schema, form and socket frame.

Past these ranges a value cannot name a row or a sensible day, and the database driver or date arithmetic
fails with an OverflowError or asyncpg DataError: a 500. Declaring the range on the field turns that into a
422 ``invalid_input`` naming the field, and puts the bounds into the OpenAPI document. The text checks at the
end find what no backend can store (used by gasdesk.web.input_guard, the socket frames and gasdesk.db).

Use them as the annotation (``customer_id: Id``, ``offset: Annotated[Count, Query()] = 0``). Do not write
``x: Id = Query(...)``: FastAPI then takes the bounds from ``Query`` alone and silently drops these.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

# Every id, count and sequence column is INTEGER: int4 on PostgreSQL. SQLite would hold 2^63 − 1, but the
# API must answer the same on both backends.
MAX_DB_INT = 2**31 - 1

Id = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
"""A row id: path, query, form, JSON body or socket frame."""

Count = Annotated[int, Field(ge=0, le=MAX_DB_INT)]
"""A non-negative integer compared or stored in SQL: offsets, message sequence numbers."""

# Dates and times people type into a utility's service desk. Far enough either side for any real record,
# and far enough from year 1 and 9999 that adding weeks or converting between zones cannot overflow.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)

BoundedDate = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]
"""A calendar day between 1900-01-01 and 2999-12-31."""


def check_aware_datetime(value: datetime) -> datetime:
    """A point in time must say its zone (a naive time is ambiguous by eight hours between UTC and Beijing),
    and lie between 1900 and 2999."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("timezone_required", "时间需带时区，例如 2026-12-01T09:00:00+08:00")
    if not EARLIEST_DAY <= value.date() <= LATEST_DAY:
        raise PydanticCustomError("datetime_out_of_range", "时间须在 1900 年至 2999 年之间")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(check_aware_datetime)]
"""An ISO-8601 date-time with a zone offset (``Z`` or ``+08:00``); a naive one is a 422."""


# NUL cannot be stored in PostgreSQL text; a surrogate left in a Python str is an unpaired one (from a JSON
# "\ud800" escape) and has no UTF-8 encoding, so neither database nor response can carry it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable_chars(text: str) -> bool:
    """True if ``text`` holds a NUL or an unpaired surrogate."""
    return _UNSTORABLE.search(text) is not None


def json_value_problem(value: Any) -> str | None:
    """What makes a parsed JSON value unusable, in Chinese, or None: a NUL or an unpaired surrogate in any
    string (keys too), or a non-finite number (``NaN``, ``Infinity``, ``1e999``: not JSON, and PostgreSQL
    refuses them in json columns)."""
    stack = [value]
    while stack:  # iterative: no recursion limit to hit on deeply nested input
        item = stack.pop()
        if isinstance(item, str):
            if has_unstorable_chars(item):
                return "含有无法保存的字符（如 \\u0000）"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "含有无效数字（NaN、Infinity 或超出范围）"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_id(value: object) -> int | None:
    """An id typed into an HTML form or query string: ASCII digits within ``Id``'s range, else None.
    (``str.isdigit`` also accepts "²" and other digits ``int()`` refuses or the database cannot hold.)"""
    text = str(value if value is not None else "").strip()
    if not text or len(text) > 10 or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 1 <= number <= MAX_DB_INT else None
