"""Find and redact personal identifiers in free text before it is stored or logged.

Covers what residents type into a chat or a form: mainland mobile numbers (spaces, dashes, +86/0086),
landlines with an area code, 18-digit resident ID numbers (with X), 户号 (8–12 digits, or any number
right after the word 户号), bank card numbers (Luhn-checked) and e-mail addresses. Names and house
addresses cannot be found reliably by patterns: columns that may hold them are encrypted instead.

``redact_pii`` keeps everything else as it was (dates, times, amounts, "3号楼2单元501", ticket numbers
like GD2024011500001), so a redacted question still reads well for the admins who improve the
knowledge base.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

PHONE = "[手机号]"
LANDLINE = "[电话]"
ID_CARD = "[身份证号]"
ACCOUNT_NO = "[户号]"
BANK_CARD = "[银行卡号]"
EMAIL = "[邮箱]"

# Full-width digits and signs map one-to-one onto ASCII, so match positions stay valid in the original.
_HALFWIDTH = str.maketrans("０１２３４５６７８９Ｘｘ＋－（）　", "0123456789Xx+-() ")

# A number starts where no letter or digit precedes it (GD2024… ticket numbers, M123… meter serials
# are not personal) and ends where no digit follows.
_START = r"(?<![0-9A-Za-z])"
_END = r"(?![0-9])"
_SEP = r"[ \-]?"

_MOBILE_RE = re.compile(_START + r"(?:(?:\+|00)?86[ \-]?|\(\+?86\)[ \-]?)?1[3-9]\d(?:" + _SEP + r"\d){8}" + _END)
_LANDLINE_RE = re.compile(_START + r"(?:\(0\d{2,3}\)|0\d{2,3})" + _SEP + r"[2-9]\d{2,3}" + _SEP + r"\d{4}" + _END)
_ID_CARD_RE = re.compile(
    _START + r"[1-9]\d{5}" + _SEP + r"(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])" + _SEP
    + r"\d{3}[\dXx]" + r"(?![0-9A-Za-z])")
_CARD_RE = re.compile(_START + r"\d{4}(?:" + _SEP + r"\d{4}){3}(?:" + _SEP + r"\d{1,3})?" + _END)
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# After a label (户号 / 身份证 / 电话 …) any number is the resident's, whatever its length or grouping.
_LABELLED_RE = re.compile(
    r"(?P<label>(?:用户|燃气|缴费|客户)?户号|账户号|身份证(?:号码?)?|证件号(?:码)?|手机(?:号码?)?|电话(?:号码?)?|"
    r"联系方式|银行卡(?:号)?|卡号)"
    r"(?P<glue>\s*(?:是|为|:|：|#|＃)?\s*)"
    r"(?P<value>\d(?:[ \-]?[\dXx]){4,21})" + r"(?![0-9])")
# Unlabelled 8–12 digit runs: how 户号 look in this project (customers/validation.ACCOUNT_NO_RE).
_ACCOUNT_RE = re.compile(_START + r"\d{8,12}" + _END)
# …but not amounts, readings or quantities written as a bare number.
_UNIT_AFTER_RE = re.compile(r"\s*(?:元|块|角|分钱|万|亿|立方|方|度|吨|千克|公斤|kg|KG|m³|m3|GJ|平|%|％|次|个|人|户)")
_LABEL_KINDS = {"户": ACCOUNT_NO, "身": ID_CARD, "证": ID_CARD, "手": PHONE, "电": LANDLINE, "联": LANDLINE,
                "银": BANK_CARD, "卡": BANK_CARD}

_LABELLED_MIN_DIGITS = {ACCOUNT_NO: 6, ID_CARD: 15, PHONE: 7, LANDLINE: 7, BANK_CARD: 12}


@dataclass(frozen=True)
class PiiMatch:
    kind: str  # the placeholder, e.g. "[手机号]"
    start: int
    end: int


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_date(digits: str) -> bool:
    """20240115 is a date someone wrote without separators, not a 户号."""
    if len(digits) != 8 or not digits.startswith(("19", "20")):
        return False
    try:
        dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return True


def find_pii(text: str) -> list[PiiMatch]:
    """Non-overlapping identifiers in ``text``, in order. Earlier rules win where two would overlap."""
    if not text:
        return []
    plain = text.translate(_HALFWIDTH)
    found: list[PiiMatch] = []
    taken: list[tuple[int, int]] = []

    def add(kind: str, start: int, end: int) -> None:
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        found.append(PiiMatch(kind, start, end))

    for m in _LABELLED_RE.finditer(plain):
        label = m.group("label")
        kind = _LABEL_KINDS.get(label[0], ACCOUNT_NO)
        if label.endswith("户号") or label == "账户号":
            kind = ACCOUNT_NO
        value = re.sub(r"\D", "", m.group("value"))
        if kind in (PHONE, LANDLINE) and len(value) == 11 and value.startswith("1"):
            kind = PHONE
        if len(value) < _LABELLED_MIN_DIGITS[kind]:
            continue  # 抢修电话 96777 is the utility's hotline, not the resident's number
        add(kind, m.start("value"), m.end("value"))
    for m in _ID_CARD_RE.finditer(plain):
        add(ID_CARD, m.start(), m.end())
    for m in _MOBILE_RE.finditer(plain):
        add(PHONE, m.start(), m.end())
    for m in _CARD_RE.finditer(plain):
        if _luhn_ok(re.sub(r"\D", "", m.group())):
            add(BANK_CARD, m.start(), m.end())
    for m in _LANDLINE_RE.finditer(plain):
        add(LANDLINE, m.start(), m.end())
    for m in _EMAIL_RE.finditer(plain):
        add(EMAIL, m.start(), m.end())
    for m in _ACCOUNT_RE.finditer(plain):
        if _is_date(m.group()) or _UNIT_AFTER_RE.match(plain, m.end()) or plain[max(0, m.start() - 1)] in "¥￥$":
            continue
        add(ACCOUNT_NO, m.start(), m.end())
    return sorted(found, key=lambda x: x.start)


def _replace_pii(text: str, replacement: Callable[[PiiMatch, str], str]) -> str:
    """``text`` with every identifier found replaced by ``replacement(match, value)``."""
    if not text:
        return text
    out: list[str] = []
    pos = 0
    for match in find_pii(text):
        out.append(text[pos:match.start])
        out.append(replacement(match, text[match.start:match.end]))
        pos = match.end
    out.append(text[pos:])
    return "".join(out)


def redact_pii(text: str) -> str:
    """``text`` with phones, ID numbers, 户号, bank cards and e-mails replaced by placeholders."""
    return _replace_pii(text, lambda match, _: match.kind)


def _mask(value: str, keep_head: int, keep_tail: int) -> str:
    digits = [i for i, ch in enumerate(value) if ch.isalnum()]
    hidden = set(digits[keep_head:len(digits) - keep_tail]) if len(digits) > keep_head + keep_tail else set(digits)
    return "".join("*" if i in hidden else ch for i, ch in enumerate(value))


# How much of each identifier a masked view keeps: enough for a resident to recognise their own number.
_MASK_KEEP = {PHONE: (3, 4), LANDLINE: (0, 4), ID_CARD: (4, 4), ACCOUNT_NO: (0, 4), BANK_CARD: (0, 4)}


def mask_pii(text: str) -> str:
    """``text`` with identifiers partly hidden (139****5678, 1101**********1234, ******1234); e-mails fully."""
    return _replace_pii(text, lambda match, value: _mask(value, *_MASK_KEEP[match.kind])
                        if match.kind in _MASK_KEEP else match.kind)


def contains_pii(text: str) -> bool:
    return bool(find_pii(text))


# ------------------------------------------------------------------ logs

_QUERY_IN_PATH_RE = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")


class PiiLogFilter(logging.Filter):
    """Redacts identifiers in every record a handler emits, including the traceback text, and cuts
    query strings off request paths (uvicorn logs ``WebSocket /ws?token=…`` lines itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_pii_clean", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must still not leak its arguments
            message = str(record.msg)
        record.msg = redact_pii(_QUERY_IN_PATH_RE.sub(r"\1", message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_pii(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_pii(record.stack_info)
        record._pii_clean = True
        return True


_FILTER = PiiLogFilter()


def install_log_redaction(*logger_names: str) -> None:
    """Put the redacting filter on every handler of the root logger and of the named loggers
    (idempotent: the app factory calls it each time it builds an app)."""
    for name in ("", *logger_names):
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
