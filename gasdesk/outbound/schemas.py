"""What the outbound API accepts and answers: the messages sent to residents, and the admin's notice
templates. Recipients are always masked (138****8000, an openid shortened)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gasdesk.schemas import IsoDatetime, Out


class NoticeTemplateIn(BaseModel):
    """One notice's provider template. ``fields``: provider variable (Aliyun name, Tencent position "1"…, WeChat
    field "keyword1"…) → the notice's parameter, in the provider's order."""

    model_config = ConfigDict(extra="forbid")

    provider_template_id: str = Field(min_length=1, max_length=80)
    fields: dict[str, str] = Field(default_factory=dict, max_length=20)
    body: str = Field(default="", max_length=500)
    enabled: bool = True


# ---------------------------------------------------------------- responses


class OutboundOut(Out):
    id: int
    channel: str
    method: str
    purpose: str
    purpose_label: str
    recipient: str  # masked
    status: str
    status_label: str
    reason: str | None
    reason_label: str
    preview: str
    attempts: int
    ticket_id: int | None
    appointment_id: int | None
    conversation_id: int | None
    message_id: int | None  # the chat message it carries (a reply in a WeChat/SMS conversation)
    customer_id: int | None
    created_at: IsoDatetime
    sent_at: IsoDatetime | None
    delivered_at: IsoDatetime | None


class NoticeTemplateOut(Out):
    channel: str
    purpose: str
    label: str
    provider_template_id: str
    fields: dict[str, str]
    body: str
    enabled: bool
    updated_at: IsoDatetime | None
