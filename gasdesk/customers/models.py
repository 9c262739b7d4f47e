"""Customer data. Personal fields are encrypted (EncryptedString); ``*_index`` columns are blind indexes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gasdesk.db import Base, TimestampMixin, UTCDateTime
from gasdesk.security.crypto import BlindIndex, EncryptedString


class AccountType(StrEnum):
    residential = "residential"
    commercial = "commercial"


class AccountStatus(StrEnum):
    active = "active"
    suspended = "suspended"  # 报停
    arrears_cut = "arrears_cut"  # 欠费停气
    closed = "closed"  # 销户


class MeterType(StrEnum):
    ic_card = "ic_card"  # IC卡表
    smart = "smart"  # 物联网智能表
    mechanical = "mechanical"  # 机械表


ACCOUNT_TYPE_LABELS = {AccountType.residential: "居民", AccountType.commercial: "非居民"}
ACCOUNT_STATUS_LABELS = {
    AccountStatus.active: "正常", AccountStatus.suspended: "报停",
    AccountStatus.arrears_cut: "欠费停气", AccountStatus.closed: "已销户",
}
METER_TYPE_LABELS = {MeterType.ic_card: "IC卡表", MeterType.smart: "物联网智能表", MeterType.mechanical: "机械表"}


class Customer(TimestampMixin, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(EncryptedString)
    name_index: Mapped[str] = mapped_column(BlindIndex(), index=True)
    id_card: Mapped[str | None] = mapped_column(EncryptedString)
    id_card_index: Mapped[str | None] = mapped_column(BlindIndex(), unique=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)

    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerPhone.id"
    )
    addresses: Mapped[list[Address]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Address.id"
    )
    accounts: Mapped[list[Account]] = relationship(back_populates="customer", order_by="Account.id")


class CustomerPhone(Base):
    __tablename__ = "customer_phones"
    __table_args__ = (UniqueConstraint("customer_id", "phone_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(EncryptedString)
    phone_index: Mapped[str] = mapped_column(BlindIndex(), index=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    customer: Mapped[Customer] = relationship(back_populates="phones")


class Address(Base):
    """A home or premises. District and community stay plain (area-level, used for routing and
    outage targeting); the building/unit/room detail is personal and encrypted."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    district: Mapped[str] = mapped_column(String(40), index=True)
    street: Mapped[str] = mapped_column(String(60), default="")
    community: Mapped[str] = mapped_column(String(80), index=True)
    building: Mapped[str | None] = mapped_column(EncryptedString)
    unit: Mapped[str | None] = mapped_column(EncryptedString)
    room: Mapped[str | None] = mapped_column(EncryptedString)
    normalized_index: Mapped[str] = mapped_column(BlindIndex(), index=True)

    customer: Mapped[Customer] = relationship(back_populates="addresses")


class Account(TimestampMixin, Base):
    """A utility account (户号) at one address; gas and/or heating."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_no: Mapped[str] = mapped_column(EncryptedString)
    account_no_index: Mapped[str] = mapped_column(BlindIndex(), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("addresses.id", ondelete="SET NULL"), index=True)
    account_type: Mapped[str] = mapped_column(String(20), default=AccountType.residential.value)
    has_gas: Mapped[bool] = mapped_column(Boolean, default=True)
    has_heating: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=AccountStatus.active.value, index=True)
    meter_type: Mapped[str | None] = mapped_column(String(20))
    meter_serial: Mapped[str | None] = mapped_column(String(40))
    heating_area_m2: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship(back_populates="accounts")
    address: Mapped[Address | None] = relationship()


class BillingBalance(Base):
    """Local billing ledger used by the built-in BillingSystem (standalone/demo mode)."""

    __tablename__ = "billing_balances"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    arrears: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    last_payment_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_payment_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (UniqueConstraint("account_id", "period", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    kind: Mapped[str] = mapped_column(String(10), default="gas")  # gas (m³) | heating (GJ)
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))


class ContactKind(StrEnum):
    wechat = "wechat"  # an official-account openid
    sms = "sms"  # a mobile number


CONTACT_KIND_LABELS = {ContactKind.wechat: "微信", ContactKind.sms: "短信"}


class ContactIdentity(Base):
    """How a resident reaches us on a channel (a WeChat openid, a mobile number), and which customer it is.

    ``customer_id`` is empty for strangers (not bound yet). The value is personal (a phone number; an openid
    is a stable pseudonym), so it is encrypted and found by its blind index.
    """

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("kind", "value_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(EncryptedString)
    value_index: Mapped[str] = mapped_column(BlindIndex())
    # WeChat's unionid links the same person across the utility's OA and mini program.
    unionid_index: Mapped[str | None] = mapped_column(BlindIndex(), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bound_how: Mapped[str | None] = mapped_column(String(20))
    # WeChat: followers only can be messaged; 客服消息 only within 48 hours of the resident's last message.
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The resident asked for no proactive messages here (replies to their own messages still go out).
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
