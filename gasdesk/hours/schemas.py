from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from gasdesk.fields import BoundedDate


class OverrideIn(BaseModel):
    line: str = Field(max_length=20)  # counters | hotline
    day: BoundedDate
    hours: str = Field(default="", max_length=20)  # "" = closed
    note: str = Field(default="", max_length=60)


class OverrideOut(BaseModel):
    id: int
    line: str
    day: date
    hours: str
    note: str


class OpeningStateOut(BaseModel):
    kind: str
    is_open: bool
    hours_today: str
    note: str
    day_kind: str
    holiday: str


class NoticeOut(BaseModel):
    text: str | None  # the holiday notice residents hear now, or null outside its window


class CalendarOut(BaseModel):
    warning: str | None  # the holiday library has no data for a day ahead: enter that year's overrides
