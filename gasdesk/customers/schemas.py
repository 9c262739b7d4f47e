"""Edges of the customer API: what callers send and get back."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field

from gasdesk.fields import Id


class AddressIn(BaseModel):
    district: str = Field(min_length=1, max_length=40)
    street: str = Field(default="", max_length=60)
    community: str = Field(min_length=1, max_length=80)
    building: str = Field(default="", max_length=20)
    unit: str = Field(default="", max_length=20)
    room: str = Field(default="", max_length=20)


class CustomerSearch(BaseModel):
    """A customer lookup. Sent as a POST body: phones, 户号 and names must not travel in URLs (access
    logs, proxies and browser history keep those)."""

    phone: str | None = Field(default=None, max_length=20)
    account_no: str | None = Field(default=None, max_length=20)
    name: str | None = Field(default=None, max_length=60)
    address: str | None = Field(default=None, max_length=120)
    q: str | None = Field(default=None, max_length=120, description="自动识别：手机号、户号、地址或姓名")
    limit: int = Field(default=20, ge=1, le=100)


class CustomerIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    phones: list[str] = Field(min_length=1, max_length=5)
    id_card: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    address: AddressIn | None = None


class CustomerPatch(BaseModel):
    name: str | None = Field(default=None, max_length=60)
    phones: list[str] | None = Field(default=None, min_length=1, max_length=5)
    id_card: str | None = None
    tags: list[str] | None = Field(default=None, max_length=20)


class AccountIn(BaseModel):
    account_no: str
    address_id: Id | None = None
    account_type: str = "residential"
    has_gas: bool = True
    has_heating: bool = False
    status: str = "active"
    meter_type: str | None = None
    meter_serial: str | None = Field(default=None, max_length=40)
    heating_area_m2: Decimal | None = Field(default=None, ge=0, le=100000)


class AddressOut(BaseModel):
    id: int
    district: str
    street: str
    community: str
    building: str
    unit: str
    room: str
    display: str


class AccountOut(BaseModel):
    id: int
    account_no: str
    account_type: str
    account_type_label: str
    has_gas: bool
    has_heating: bool
    status: str
    status_label: str
    meter_type: str | None
    meter_type_label: str | None
    meter_serial: str | None
    heating_area_m2: Decimal | None
    address: str | None


class CustomerSummary(BaseModel):
    id: int
    name: str
    phones: list[str]
    tags: list[str]
    account_nos: list[str]
    addresses: list[str]


class BalanceOut(BaseModel):
    account_no: str
    balance: str | None = None
    arrears: str | None = None
    last_payment_at: str | None = None
    last_payment_amount: str | None = None
    usage: list[dict[str, str]] = []
    error: str | None = None


class Customer360(BaseModel):
    id: int
    name: str
    phones: list[str]
    id_card_masked: str | None
    tags: list[str]
    addresses: list[AddressOut]
    accounts: list[AccountOut]
    balances: list[BalanceOut]
