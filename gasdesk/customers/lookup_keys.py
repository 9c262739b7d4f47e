"""Blind-index keys for each searchable personal field, computed the same way everywhere."""

from __future__ import annotations

from gasdesk.customers.addresses import AddressParts
from gasdesk.security.crypto import blind_index


def phone_key(phone: str) -> str:
    return blind_index(phone, kind="phone")


def account_no_key(account_no: str) -> str:
    return blind_index(account_no, kind="account_no")


def name_key(name: str) -> str:
    return blind_index(name.replace(" ", ""), kind="name")


def id_card_key(id_card: str) -> str:
    return blind_index(id_card, kind="id_card")


def address_key(parts: AddressParts) -> str:
    return blind_index(parts.normalized_key(), kind="address")
