"""Shapes of the report-file routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from gasdesk.fields import BoundedDate

ExportFormat = Literal["xlsx", "pdf"]
ExportGrain = Literal["day", "week", "month", "year"]


class ExportQuery(BaseModel):
    """What to export: the report's own query (grain, day, filters) and the file format."""

    format: ExportFormat = Field("xlsx", description="xlsx（含原生 Excel 图表）或 pdf")
    grain: ExportGrain = Field("day", description="日/周/月/年")
    day: BoundedDate | None = Field(None, description="所在日期（本地时间），缺省为今天")
    team: str | None = Field(None, max_length=40, description="班组编号")
    channel: str | None = Field(None, max_length=40, description="渠道")
    district: str | None = Field(None, max_length=40, description="区域")


class ReportFileOut(BaseModel):
    id: int
    report_key: str
    grain: str
    label: str
    fmt: str
    filename: str
    size: int
    created_at: datetime
    url: str
