"""What the smart-tag API accepts and answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gasdesk.fields import Id
from gasdesk.schemas import IsoDatetime, Out


class RuleIn(BaseModel):
    tag: str = Field(min_length=1, max_length=20)
    colour: str = Field(default="#607d8b", max_length=7)
    kind: Literal["intent", "keyword", "address", "outage_area"]
    target: Literal["customer", "conversation", "both"] | None = None
    # intent: {"intents": [...]}; keyword: {"keywords": [...]}; address: {"district": "朝阳区", "communities": [...]};
    # outage_area: {"days": 90, "min_count": 3}
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class RuleOut(Out):
    id: int
    tag: str
    colour: str
    kind: str
    kind_label: str
    target: str
    target_label: str
    params: dict[str, Any]
    summary: str  # the condition in words, for lists
    enabled: bool
    updated_at: IsoDatetime


class TagIn(BaseModel):
    """A tag an agent puts on a customer or on a conversation (exactly one of the two)."""

    tag: str = Field(min_length=1, max_length=20)
    customer_id: Id | None = None
    conversation_id: Id | None = None


class TagOut(Out):
    id: int
    tag: str
    colour: str
    source: str  # rule | manual | system
    source_label: str
    created_at: IsoDatetime


class ConversationTags(Out):
    """Everything the console's customer panel shows about tags for one conversation."""

    conversation_id: int
    stranger: bool  # a number / WeChat identity first seen with no customer, still not linked
    conversation_tags: list[TagOut]
    customer_tags: list[TagOut]
    known_tags: list[str]  # tag names the rules use (offered when adding by hand)


class Badge(Out):
    conversation_id: int
    stranger: bool
    tags: list[TagOut]  # the conversation's and its customer's tags


class AddressQuery(BaseModel):
    """An address lookup: the district and a community name or a full address (a POST: addresses stay out of
    URLs and access logs)."""

    district: str = Field(default="", max_length=40)
    text: str = Field(min_length=1, max_length=120)


class LinkDecision(BaseModel):
    address_id: Id
    ref: str = Field(min_length=3, max_length=40)  # from the lookup: conv:12, ticket:5, link:3


class AddressRow(Out):
    id: int
    display: str
    customer_id: int
    customer_name: str


class LinkEntry(Out):
    address_id: int
    address: str
    kind: str  # phone | wechat
    kind_label: str
    shown: str  # masked for agents (138****5555; openid shortened), in full for supervisors and admins
    status: str  # linked | confirmed | suggested
    status_label: str
    via: list[str]
    first_seen: IsoDatetime | None
    last_seen: IsoDatetime | None
    ref: str | None  # what confirm/remove take (suggested and confirmed entries)


class AddressLookup(Out):
    addresses: list[AddressRow]
    entries: list[LinkEntry]
    truncated: bool


class LinkOut(Out):
    id: int
    address_id: int
    kind: str
    status: str
