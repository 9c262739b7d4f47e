from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from gasdesk.fields import BoundedDate


class HolidayOut(BaseModel):
    day: date
    hours: str
    note: str


class BranchOut(BaseModel):
    id: int
    name: str
    district: str
    address: str
    phone: str
    weekly_hours: dict[str, str]
    services: list[str]
    holidays: list[HolidayOut]
    open_now: bool
    hours_today: str


class BranchIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    district: str = Field(min_length=1, max_length=40)
    address: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=1, max_length=40)
    weekly_hours: dict[str, str]
    services: list[str] = []
    is_active: bool = True


class HolidayIn(BaseModel):
    day: BoundedDate
    hours: str = Field(default="", max_length=20)
    note: str = Field(default="", max_length=60)
