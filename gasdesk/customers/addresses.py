"""Address normalisation so that the same home typed differently matches.

"朝阳区 幸福里小区 3号楼2单元501室", "朝阳区幸福里三栋二单元501" and
"朝阳区幸福里3-2-0501" all normalise to the same key ``朝阳|幸福里|3|2|501``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gasdesk.customers.validation import to_halfwidth

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUM_RE = re.compile(r"[零〇一二两三四五六七八九十百]+")
_DISTRICT_SUFFIX_RE = re.compile(r"(新区|自治县|区|县|市)$")
_COMMUNITY_SUFFIX_RE = re.compile(r"(小区|社区|家园|花园|公寓|新村|大院|宿舍|园区)$")


def chinese_to_int(text: str) -> int | None:
    """Small Chinese numerals (up to 999) such as 三, 十二, 二十一, 一百零五."""
    if not text:
        return None
    if all(ch in _CN_DIGITS for ch in text):  # digit-by-digit: 五零一 → 501
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current


def _arabic(text: str) -> str:
    return _CN_NUM_RE.sub(lambda m: str(chinese_to_int(m.group()) or m.group()), text)


def _clean(part: str | None) -> str:
    return re.sub(r"[\s,，.。·]", "", to_halfwidth(part or ""))


def _strip_number(part: str | None, suffixes: str) -> str:
    value = _arabic(_clean(part)).upper()
    value = re.sub(f"({suffixes})$", "", value)
    value = value.lstrip("0") or value  # 0501 == 501
    return value


def normalize_district(district: str | None) -> str:
    return _DISTRICT_SUFFIX_RE.sub("", _clean(district))


def normalize_community(community: str | None) -> str:
    return _COMMUNITY_SUFFIX_RE.sub("", _clean(community))


@dataclass(frozen=True)
class AddressParts:
    district: str
    community: str
    building: str = ""
    unit: str = ""
    room: str = ""
    street: str = ""

    def normalized_key(self) -> str:
        """Canonical form used for the address blind index."""
        return "|".join(
            [
                normalize_district(self.district),
                normalize_community(self.community),
                _strip_number(self.building, "号楼|栋|幢|号|楼|座"),
                _strip_number(self.unit, "单元|门|号"),
                _strip_number(self.room, "室|号|户"),
            ]
        )

    def display(self) -> str:
        parts = [self.district, self.street, self.community]
        b = _strip_number(self.building, "号楼|栋|幢|号|楼|座")
        u = _strip_number(self.unit, "单元|门|号")
        r = _strip_number(self.room, "室|号|户")
        tail = (f"{b}号楼" if b else "") + (f"{u}单元" if u else "") + (f"{r}室" if r else "")
        return "".join(p for p in parts if p) + tail


_FREE_RE = re.compile(
    r"^(?P<district>[^\s区县]{1,8}(?:新区|区|县))?"
    r"(?P<street>[^\s]{1,10}?(?:街道|镇|乡))?"
    r"(?P<community>.+?)"
    r"(?P<building>[0-9零〇一二两三四五六七八九十百]+)\s*(?:号楼|栋|幢|号|楼|座|-)"
    r"(?P<unit>[0-9零〇一二两三四五六七八九十]+)\s*(?:单元|门|-)"
    r"(?P<room>[0-9零〇一二两三四五六七八九十百]+)\s*(?:室|号|户)?$"
)


def parse_free_address(text: str) -> AddressParts | None:
    """Split a one-line address ("朝阳区幸福里小区3号楼2单元501") into parts, or None if it has no such shape."""
    cleaned = _clean(text)
    match = _FREE_RE.match(cleaned)
    if not match:
        return None
    return AddressParts(
        district=match.group("district") or "",
        street=match.group("street") or "",
        community=match.group("community"),
        building=match.group("building"),
        unit=match.group("unit"),
        room=match.group("room"),
    )
