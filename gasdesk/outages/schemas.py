"""What the outage API accepts and answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gasdesk.fields import AwareDatetime
from gasdesk.schemas import IsoDatetime, Out


class OutageIn(BaseModel):
    kind: str
    district: str = Field(min_length=1, max_length=40)
    communities: list[str] = Field(default_factory=list, max_length=100)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=200)


class AreaIn(BaseModel):
    """One targeted area; a blank level covers the whole level above."""

    district: str = Field(default="", max_length=40)
    street: str = Field(default="", max_length=60)
    community: str = Field(default="", max_length=80)
    building: str = Field(default="", max_length=20)


class OutageNoticeIn(BaseModel):
    """A notice's content (create a draft, edit a draft, or update a published notice)."""

    kind: Literal["gas", "heating"]
    planned: bool = True
    title: str = Field(default="", max_length=80)
    areas: list[AreaIn] = Field(default_factory=list, max_length=200)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    expected_restore_at: AwareDatetime | None = None
    reason: str = Field(default="", max_length=200)
    progress_note: str = Field(default="", max_length=300)


class CloseIn(BaseModel):
    note: str = Field(default="", max_length=300)


# ---------------------------------------------------------------- responses


class OutageOut(Out):
    id: int
    kind: str
    district: str
    communities: list[str]
    starts_at: IsoDatetime
    ends_at: IsoDatetime
    reason: str
    text: str  # the notice as residents read it


class OutageAnnounced(Out):
    id: int
    text: str


class AreaOut(Out):
    district: str
    street: str
    community: str
    building: str


class VersionStatsOut(Out):
    broadcast_id: int
    created_at: IsoDatetime
    text: str
    total: int
    by_status: dict[str, int]
    by_channel: dict[str, int]


class OutageNoticeOut(Out):
    id: int
    kind: str
    planned: bool
    status: str
    status_label: str
    title: str
    areas: list[AreaOut]
    starts_at: IsoDatetime
    ends_at: IsoDatetime
    expected_restore_at: IsoDatetime | None
    reason: str
    progress_note: str
    version: int
    imported_customers: int
    text: str
    deliveries: list[VersionStatsOut]


class ChangeOut(Out):
    id: int
    status: str
    version: int
    queued: int  # deliveries queued by this change (0: nothing residents read changed)


class ImportOut(Out):
    matched: int
    unknown: int
    invalid: list[str]
    queued: int
