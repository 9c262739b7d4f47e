"""What the rostering API and forms accept and answer."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, Field, field_validator

from gasdesk.fields import BoundedDate, Id
from gasdesk.schemas import IsoDatetime, M, Out, model_from_form

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


class RulesIn(BaseModel):
    """The rules every roster keeps (stored as JSON in ``roster_settings``)."""

    history_weeks: int = Field(4, ge=1, le=26)  # forecast from the mean of the last N whole weeks
    agents_per_contact: float = Field(0.25, gt=0, le=10)  # agents per contact in a half hour
    min_agents: int = Field(0, ge=0, le=50)  # floor in any half hour that expects contacts
    min_rest_hours: float = Field(11, ge=0, le=24)
    max_consecutive_days: int = Field(6, ge=1, le=14)
    max_shifts_per_week: int = Field(5, ge=1, le=7)
    max_shifts_per_month: int = Field(22, ge=1, le=31)
    time_limit_s: int = Field(20, ge=1, le=300)  # the solver's default time limit


class ShiftIn(BaseModel):
    code: str = Field(min_length=1, max_length=20, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=20)
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[03]0$")  # HH:MM on a half hour
    hours: float = Field(gt=0, le=24)  # whole half hours
    covers_contacts: bool = True
    night: bool = False
    min_staff: int = Field(0, ge=0, le=50)
    duty_role: str | None = Field(None, max_length=30)
    skill_ids: list[Id] = Field(default_factory=list, max_length=20)
    roles: list[str] = Field(default_factory=lambda: ["agent", "supervisor"], max_length=6)
    active: bool = True

    @field_validator("hours")
    @classmethod
    def _half_hours(cls, value: float) -> float:
        if abs(value * 2 - round(value * 2)) > 1e-9:
            raise ValueError("班次时长须为半小时的整数倍")
        return value


class LeaveIn(BaseModel):
    user_id: Id
    start_day: BoundedDate
    end_day: BoundedDate
    note: str = Field("", max_length=60)


class PreferenceIn(BaseModel):
    user_id: Id
    kind: str = Field(pattern=r"^(prefer|avoid)$")
    shift_id: Id | None = None
    weekday: int | None = Field(None, ge=0, le=6)


class GenerateIn(BaseModel):
    month: str = Field(pattern=MONTH_RE.pattern)  # YYYY-MM
    time_limit_s: int | None = Field(None, ge=1, le=300)


class CellIn(BaseModel):
    user_id: Id
    day: BoundedDate
    shift_id: Id | None = None  # None: day off


class ViolationOut(Out):
    user_id: int
    day: date
    code: str
    message: str


class AssignmentOut(Out):
    user_id: int
    day: date
    shift_id: int
    shift_code: str
    starts_at: IsoDatetime
    ends_at: IsoDatetime
    duty_role: str | None


class UnmetOut(Out):
    day: date
    slot: int  # half hour of the day, 0 = 00:00–00:30
    short: int


class RosterOut(Out):
    id: int
    month: date
    status: str
    solve_status: str
    objective: float | None
    solve_seconds: float
    unmet_total: int
    unmet: list[UnmetOut]
    assignments: list[AssignmentOut]
    violations: list[ViolationOut]


class CellOut(Out):
    assignment: AssignmentOut | None
    unmet_total: int
    violations: list[ViolationOut]


class ForecastOut(Out):
    history_weeks: int
    agents_per_contact: float
    contacts: list[list[float]]  # weekday (Monday first) × 48 half hours: mean contacts
    agents: list[list[int]]  # agents needed


class MyShiftOut(Out):
    day: date
    shift_code: str
    shift_name: str
    starts_at: IsoDatetime
    ends_at: IsoDatetime
    duty_role: str | None


def parse_month(text: str) -> date:
    """'2027-01' → date(2027, 1, 1); ValueError otherwise."""
    match = MONTH_RE.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1900 <= int(match.group(1)) <= 2999:
        raise ValueError(text)
    return date(int(match.group(1)), int(match.group(2)), 1)


# ------------------------------------------------------------------ the pages' forms

FORM_FIELD_LABELS = {
    "history_weeks": "历史周数",
    "agents_per_contact": "每进线所需坐席",
    "min_agents": "最少坐席",
    "min_rest_hours": "最短休息小时",
    "max_consecutive_days": "最多连续工作天数",
    "max_shifts_per_week": "每周最多班次",
    "max_shifts_per_month": "每月最多班次",
    "time_limit_s": "求解时限",
    "code": "班次代码",
    "name": "班次名称",
    "start": "开始时间",
    "hours": "时长",
    "min_staff": "每日最少人数",
    "user_id": "人员",
    "start_day": "开始日期",
    "end_day": "结束日期",
    "note": "备注",
    "kind": "类型",
    "shift_id": "班次",
    "weekday": "星期",
    "day": "日期",
    "month": "月份",
    "skill_ids": "技能组",
    "roles": "适用角色",
}


def from_form(model: type[M], data: dict[str, Any]) -> M:
    """``model`` from this domain's page form fields (``gasdesk.schemas.model_from_form`` with its labels)."""
    return model_from_form(model, data, FORM_FIELD_LABELS)


def shift_form(form: Any) -> dict[str, Any]:
    """A shift template's form fields (checkboxes and multi-selects) as ``ShiftIn`` input."""
    return {
        "code": form.get("code"),
        "name": form.get("name"),
        "start": form.get("start"),
        "hours": form.get("hours"),
        "covers_contacts": form.get("covers_contacts") == "on",
        "night": form.get("night") == "on",
        "min_staff": form.get("min_staff") or 0,
        "duty_role": form.get("duty_role") or None,
        "skill_ids": [v for v in form.getlist("skill_ids") if v],
        "roles": [v for v in form.getlist("roles") if v],
        "active": form.get("active") == "on",
    }
