"""Checking and normalising untrusted customer fields: phones, 户号, ID numbers, names."""

from __future__ import annotations

import re
import unicodedata

from gasdesk.errors import InvalidInput

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}\d{7,8}$")
ACCOUNT_NO_RE = re.compile(r"^\d{8,12}$")
ID_CARD_RE = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def to_halfwidth(text: str) -> str:
    """Full-width digits/letters (１３８…) to ASCII; NFKC also folds compatibility forms."""
    return unicodedata.normalize("NFKC", text)


def normalize_phone(raw: str) -> str:
    """Digits only, without +86/0086 prefix; landlines keep their leading 0."""
    digits = re.sub(r"\D", "", to_halfwidth(raw or ""))
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def check_phone(raw: str) -> str:
    phone = normalize_phone(raw)
    if not (MOBILE_RE.match(phone) or LANDLINE_RE.match(phone)):
        raise InvalidInput(f"电话号码格式不正确: {raw!r}（手机 11 位，或带区号的固话）", code="invalid_phone")
    return phone


def normalize_account_no(raw: str) -> str:
    return re.sub(r"[\s-]", "", to_halfwidth(raw or ""))


def check_account_no(raw: str) -> str:
    account_no = normalize_account_no(raw)
    if not ACCOUNT_NO_RE.match(account_no):
        raise InvalidInput(f"户号格式不正确: {raw!r}（应为 8–12 位数字）", code="invalid_account_no")
    return account_no


def id_card_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of an 18-digit resident ID."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def check_id_card(raw: str) -> str:
    """Mainland 18-digit resident ID with its ISO 7064 check digit."""
    value = to_halfwidth(raw or "").strip().upper()
    if not ID_CARD_RE.match(value):
        raise InvalidInput("身份证号格式不正确（应为 18 位）", code="invalid_id_card")
    if id_card_check_digit(value[:17]) != value[17]:
        raise InvalidInput("身份证号校验位不正确", code="invalid_id_card")
    return value


def check_name(raw: str) -> str:
    name = re.sub(r"\s+", " ", to_halfwidth(raw or "")).strip()
    if not name:
        raise InvalidInput("姓名不能为空", code="invalid_name")
    if len(name) > 60:
        raise InvalidInput("姓名过长（最多 60 字）", code="invalid_name")
    return name


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def mask_id_card(value: str) -> str:
    return value[:6] + "********" + value[-4:] if len(value) == 18 else "****"
