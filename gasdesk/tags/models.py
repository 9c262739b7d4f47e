"""Tag rules, the tags they (or agents) put on customers, conversations and contact identities, and the links
agents confirmed or removed between an address and a phone number or WeChat identity.

Tag names and colours are staff-chosen labels and stay plain (like ``customers.tags``); an address link's value
is a phone number or an openid, so it is encrypted and found by its blind index (the same index as the
customers' phones and the contact identities, so one number is one key everywhere).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, TimestampMixin, UTCDateTime
from gasdesk.security.crypto import BlindIndex, EncryptedString


class RuleKind(StrEnum):
    intent = "intent"  # an intent the bot read in a resident message of the conversation
    keyword = "keyword"  # a keyword in the resident's own text
    address = "address"  # the home's district / community (旧改小区)
    outage_area = (
        "outage_area"  # the home's area had at least N outage notices in the last D days (频繁停气区域)
    )


class RuleTarget(StrEnum):
    customer = "customer"
    conversation = "conversation"
    both = "both"


class TagSource(StrEnum):
    rule = "rule"  # a rule matched when a conversation closed
    manual = "manual"  # an agent added it
    system = "system"  # 陌生号码: a number or WeChat identity seen for the first time, with no customer


class LinkStatus(StrEnum):
    confirmed = "confirmed"
    removed = "removed"


RULE_KIND_LABELS = {
    RuleKind.intent: "机器人意图",
    RuleKind.keyword: "关键词",
    RuleKind.address: "地址/小区",
    RuleKind.outage_area: "频繁停气区域",
}
RULE_TARGET_LABELS = {
    RuleTarget.customer: "客户",
    RuleTarget.conversation: "会话",
    RuleTarget.both: "客户和会话",
}
STRANGER_TAG = "陌生号码"


class TagRule(TimestampMixin, Base):
    """One rule admins edit: when it matches, ``tag`` is put on the customer and/or the conversation."""

    __tablename__ = "tag_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String(20))
    colour: Mapped[str] = mapped_column(String(7), default="#607d8b")
    kind: Mapped[str] = mapped_column(String(12))
    target: Mapped[str] = mapped_column(String(12), default=RuleTarget.customer.value)
    # intent: {"intents": [...]}; keyword: {"keywords": [...]}; address: {"district": "", "communities": [...]};
    # outage_area: {"days": 90, "min_count": 3}
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TagAssignment(Base):
    """A tag on exactly one of: a customer, a conversation, or a contact identity (``visitor_id``: the
    conversation's identity on its channel, e.g. ``sms:12``, ``wechat:7`` or a landline caller's ``voice:…``).

    Removing keeps the row (``removed_at``): a rule does not put back a tag an agent took off."""

    __tablename__ = "tag_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    visitor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(10))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("tag_rules.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AddressLink(Base):
    """An agent's decision about a phone number or WeChat identity at an address: confirmed (shown as linked)
    or removed (a suggestion dismissed, or a confirmed link withdrawn)."""

    __tablename__ = "address_links"
    __table_args__ = (UniqueConstraint("address_id", "kind", "value_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # phone | wechat
    value: Mapped[str] = mapped_column(EncryptedString)
    value_index: Mapped[str] = mapped_column(BlindIndex(), index=True)
    status: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(40))  # the suggestion's reference (conv:12, ticket:5)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
