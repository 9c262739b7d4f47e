"""Edges of the notification API: one wire form for REST answers and live pushes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(description="emergency.gas_leak、sla.breached、ticket.assigned、security …")
    kind_label: str = Field(description="类别的中文名称")
    urgent: bool = Field(description="需要醒目提示（燃气泄漏等）")
    title: str
    body: str
    link: str | None = Field(description="站内链接，如 /tickets/12")
    created_at: datetime
    read: bool


class NotificationList(BaseModel):
    items: list[NotificationOut]
    unread: int = Field(description="当前用户的未读通知总数")


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    marked: int = Field(description="本次标记为已读的条数")
    unread: int
