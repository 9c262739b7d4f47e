"""One row per message sent to a resident on WeChat or SMS, with its delivery status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import BlindIndex, EncryptedJSON, EncryptedString


class OutboundStatus(StrEnum):
    queued = "queued"  # waiting for the worker (or for quiet hours to end, or a retry)
    sending = "sending"  # handed to the provider; the result is not recorded yet
    sent = "sent"  # the provider accepted it
    delivered = "delivered"  # the provider's receipt says the phone got it
    failed = "failed"  # given up, with the reason
    skipped = "skipped"  # not sent on purpose: opted out, duplicate, nothing to send it with


STATUS_LABELS = {OutboundStatus.queued: "排队中", OutboundStatus.sending: "发送中", OutboundStatus.sent: "已发送",
                 OutboundStatus.delivered: "已送达", OutboundStatus.failed: "发送失败", OutboundStatus.skipped: "未发送"}


class Purpose(StrEnum):
    chat = "chat"  # an agent's or the bot's reply in a WeChat/SMS conversation
    appointment_confirmed = "appointment_confirmed"
    appointment_reminder = "appointment_reminder"
    ticket_progress = "ticket_progress"
    followup_invite = "followup_invite"
    guidance = "guidance"
    outage_notice = "outage_notice"
    heating_notice = "heating_notice"
    outage_restored = "outage_restored"
    emergency_alert = "emergency_alert"  # to staff: an emergency event's escalation step (gasdesk/emergency)


PURPOSE_LABELS = {Purpose.chat: "会话回复", Purpose.appointment_confirmed: "预约确认",
                  Purpose.appointment_reminder: "预约提醒", Purpose.ticket_progress: "工单进度",
                  Purpose.followup_invite: "回访邀请", Purpose.guidance: "办理指引", Purpose.outage_notice: "停气通知",
                  Purpose.heating_notice: "停暖通知", Purpose.outage_restored: "恢复供应通知",
                  Purpose.emergency_alert: "紧急事件通知"}


class OutboundMessage(Base):
    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_recipient_day", "recipient_index", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # wechat | sms
    purpose: Mapped[str] = mapped_column(String(30))
    # WeChat: custom (客服消息) or template; SMS: sms.
    method: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(EncryptedString)
    recipient_index: Mapped[str] = mapped_column(BlindIndex())
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact_identities.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"),
                                                        index=True)
    message_id: Mapped[int | None] = mapped_column(Integer)
    ticket_id: Mapped[int | None] = mapped_column(Integer, index=True)
    appointment_id: Mapped[int | None] = mapped_column(Integer, index=True)
    followup_id: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(EncryptedString)
    template_key: Mapped[str | None] = mapped_column(String(40))
    params: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    status: Mapped[str] = mapped_column(String(10), default=OutboundStatus.queued.value, index=True)
    reason: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_id: Mapped[str | None] = mapped_column(String(80), index=True)
    # One notice per (purpose, subject, recipient) — a reminder job running twice sends once.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    # A WeChat message that could not go out is re-sent by SMS: the SMS row points at it.
    fallback_of_id: Mapped[int | None] = mapped_column(Integer)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NoticeTemplate(Base):
    """An admin's mapping from a notice (purpose) to the provider's approved template on one channel:
    a WeChat template message id and its fields, or an SMS template code."""

    __tablename__ = "notice_templates"
    __table_args__ = (UniqueConstraint("channel", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    purpose: Mapped[str] = mapped_column(String(30))
    provider_template_id: Mapped[str] = mapped_column(String(80))
    # WeChat: template field → our parameter name ({"first": "title", "keyword1": "number"}); SMS: the
    # variable names in the provider's order (Tencent's parameters are positional).
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Text with {param} placeholders: the SMS body as approved (shown in the outbox), WeChat's preview.
    body: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
