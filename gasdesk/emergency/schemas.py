"""What the emergency API accepts and sends; the page forms' parsing lives here too (``*_from_form``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gasdesk.clock import local_zone
from gasdesk.errors import InvalidInput
from gasdesk.fields import AwareDatetime, Id
from gasdesk.schemas import IsoDatetime, Out

Level = Annotated[int, Field(ge=1, le=4, description="风险等级 1–4（Ⅰ级最严重）")]
Minutes = Annotated[int, Field(ge=1, le=240)]
StepNumber = Annotated[int, Field(ge=1, le=6)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyStepIn(In):
    users: list[Id] = Field(default_factory=list, max_length=50, description="用户 id")
    duty_roles: list[str] = Field(default_factory=list, max_length=10,
                                  description="值班岗位：shift_lead 值班长、repair_dispatch 抢修调度、safety_lead 安检主管")
    channels: list[str] = Field(max_length=4, description="in_app、sms、wechat、phone")
    timeout_min: Minutes = Field(description="确认时限（分钟），超时通知下一步")
    next_step: StepNumber | None = Field(default=None, description="超时后执行的步骤序号（从 1 起）；省略为下一步，null 为结束")


class PolicyIn(In):
    steps: list[PolicyStepIn] = Field(max_length=6)

    def raw_steps(self) -> list[dict[str, Any]]:
        """The steps as the checker takes them: an omitted ``next_step`` means "the following step"."""
        return [step.model_dump(exclude_unset=True) | {"channels": step.channels, "timeout_min": step.timeout_min}
                for step in self.steps]


class PolicyStepOut(Out):
    users: list[int]
    duty_roles: list[str]
    channels: list[str]
    timeout_min: int
    next_step: int | None


class PolicyOut(Out):
    level: int
    level_label: str
    version: int = Field(description="0：内置默认，尚未保存")
    steps: list[PolicyStepOut]
    saved_at: IsoDatetime | None


class DutyIn(In):
    user_id: Id
    duty_role: str = Field(max_length=30)
    starts_at: AwareDatetime = Field(description="带时区")
    ends_at: AwareDatetime = Field(description="带时区")


class DutyOut(Out):
    id: int
    user_id: int
    user_name: str
    duty_role: str
    duty_role_label: str
    starts_at: IsoDatetime
    ends_at: IsoDatetime
    on_duty_now: bool


class StaffContactIn(In):
    mobile: str = Field(default="", max_length=20)
    wechat_openid: str = Field(default="", max_length=64)


class StaffContactOut(Out):
    user_id: int
    mobile_masked: str
    wechat: bool


class DeclareIn(In):
    level: Level
    title: str = Field(max_length=120)
    description: str = Field(default="", max_length=2000)


class CloseIn(In):
    summary: str = Field(max_length=2000)


class CancelIn(In):
    reason: str = Field(max_length=500)


class NotificationRowOut(Out):
    id: int
    seq: int
    step: int
    user_id: int | None
    user_name: str
    duty_role: str | None
    duty_role_label: str
    channel: str
    channel_label: str
    status: str = Field(description="sent、queued（见 delivery；电话：等待外呼）、unavailable、no_contact、no_one_on_duty；"
                                    "电话另有 calling、answered、failed、skipped（原因见 reason）")
    status_label: str
    reason: str | None
    reason_label: str = Field(default="", description="电话通知的结果说明（按1确认、无人接听、占线……）")
    delivery: str | None = Field(description="短信/微信的外发状态：queued、sending、sent、delivered、failed、skipped")
    delivery_label: str | None
    sent_at: IsoDatetime
    after_s: int
    acknowledged_at: IsoDatetime | None


class EmergencyOut(Out):
    id: int
    number: str
    level: int
    level_label: str
    source: str
    source_label: str
    title: str
    description: str
    status: str
    status_label: str
    ticket_id: int | None
    outage_id: int | None
    policy_version: int
    steps_total: int
    step: int | None
    seq: int
    next_due_at: IsoDatetime | None
    exhausted: bool
    opened_at: IsoDatetime
    elapsed_s: int
    acknowledged_at: IsoDatetime | None
    acknowledged_by: str | None
    acknowledged_via: str | None
    ack_after_s: int | None
    closed_at: IsoDatetime | None
    closed_by: str | None
    summary: str | None
    cancel_reason: str | None
    actions: list[str]
    notifications: list[NotificationRowOut]


def int_or_none(value: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput("请填写整数", code="invalid_number") from None


def policy_from_form(form: dict[str, list[str]], max_steps: int) -> list[dict[str, Any]]:
    """The admin page's policy form → raw steps: ``s<i>_users`` / ``s<i>_duty`` / ``s<i>_channels`` (repeated),
    ``s<i>_timeout``, ``s<i>_next`` (a number, "end", or empty for the following step). Rows with no
    recipients and no timeout are left out (the form always offers a few empty rows)."""
    steps = []
    for i in range(1, max_steps + 1):
        users = [int_or_none(v) for v in form.get(f"s{i}_users", []) if v.strip()]
        duty = form.get(f"s{i}_duty", [])
        channels = form.get(f"s{i}_channels", [])
        timeout = (form.get(f"s{i}_timeout") or [""])[0]
        if not users and not duty and not timeout.strip():
            continue
        step: dict[str, Any] = {"users": users, "duty_roles": duty, "channels": channels,
                                "timeout_min": int_or_none(timeout)}
        following = (form.get(f"s{i}_next") or [""])[0].strip()
        if following == "end":
            step["next_step"] = None
        elif following:
            step["next_step"] = int_or_none(following)
        steps.append(step)
    return steps


def local_datetime(value: str) -> datetime:
    """A ``datetime-local`` form value (the display zone's wall time) → an aware datetime."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("时间格式应为 2026-12-07T08:00", code="invalid_duty_time") from None
    return moment.replace(tzinfo=local_zone()) if moment.tzinfo is None else moment
