"""Requests and answers of the development simulator."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gasdesk.schemas import Out


class FollowerAction(BaseModel):
    openid: str = Field(min_length=8, max_length=64)
    text: str | None = Field(default=None, max_length=2000)
    event: Literal["subscribe", "unsubscribe", "CLICK"] | None = None
    event_key: str | None = Field(default=None, max_length=128)


class CallbackResult(Out):
    status: int
    reply: str
    error: dict[str, str] | None


class ReceivedMessage(Out):
    kind: str | None
    text: str
    at: float | None


class FollowerInbox(Out):
    messages: list[ReceivedMessage]


class PhoneNumber(BaseModel):
    phone: str = Field(min_length=11, max_length=20)


class PhoneText(BaseModel):
    phone: str = Field(min_length=11, max_length=20)
    text: str = Field(min_length=1, max_length=500)


class PhoneInbox(Out):
    messages: list[ReceivedMessage]
