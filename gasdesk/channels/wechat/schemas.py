"""Requests and answers of the WeChat admin API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gasdesk.schemas import Out


class WeChatMenuIn(BaseModel):
    button: list[dict[str, Any]] = Field(max_length=3, description="WeChat's menu: up to 3 entries, 5 below each")


class WeChatMenuOut(Out):
    button: list[dict[str, Any]]
