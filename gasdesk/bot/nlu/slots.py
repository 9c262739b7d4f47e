"""Slot extraction: service type, meter topic/type, account number, phone, date, time, address.

Everything here is rule-based on ``normalize``d text; values come back in canonical form so the
dialogue layer never sees synonyms.
"""

from __future__ import annotations

import re
from datetime import datetime

from gasdesk.bot.nlu.dates import resolve_date, resolve_time
from gasdesk.bot.nlu.normalize import normalize

# Checked in this order: the more specific service wins when a message mentions several
# (e.g. 阀管改造 also contains 管 and 改).
_SERVICE_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("报警器安装", re.compile(r"(装|安|买|配|加|换).{0,6}报警器|报警器.{0,6}(安装|装上|装一个|加装)")),
    (
        "阀管改造",
        re.compile(
            r"阀管|阀门改造|管阀改造|(换|更换|装|安装|加装)(个|一个)?(自闭阀|新阀门|阀门)|管道老化.{0,6}(换|改造)"
            r"|自闭阀.{0,2}(安装|改造|更换|加装)"
        ),
    ),
    ("旧改施工", re.compile(r"旧改|老旧小区改造|旧小区改造|老小区改造|小区改造")),
    (
        "改线",
        re.compile(
            r"改线|改管|移表|挪表|挪管|移管|改燃气管|改管道|管道改|(管子|管道|燃气管|表|燃气表).{0,8}(挪|移|改位置|换位置|改到|移到|挪到)"
            r"|(挪|移|迁)(一下|一挪|一移)?.{0,3}(管子|管道|燃气管|燃气表|表)"
            r"|改.{0,4}(燃气管|管道|管子)|(燃气管|管道|管子).{0,4}(走向|位置)"
        ),
    ),
    ("开栓", re.compile(r"开栓|通气|开气|开(一下|下|个)气|开通.{0,4}(燃气|煤气|天然气)|(燃气|煤气|天然气).{0,4}开通|接通(燃气|煤气|天然气)")),
    ("安检", re.compile(r"安检|安全检查|入户检查|上门检查|燃气检查|年检")),
    ("维修", re.compile(r"维修|修理|报修|来修|修一下|修修|上门修|派人修|修灶|修好|检修|修[^改]|坏了|故障")),
)

_METER_TOPICS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("自闭阀", re.compile(r"自闭阀|自闭|复位|阀.{0,4}自己关|自动关")),
    ("插卡", re.compile(r"插卡|插了卡|卡插|读卡|刷卡|插.{0,3}卡|卡.{0,4}插|卡.{0,6}(没反应|读不|不识别|识别不|插不|无效)")),
    ("电池", re.compile(r"电池|没电|电量|换电|电压")),
    ("余量", re.compile(r"余量|剩多少|剩余|还剩|剩下|读数|看表|表.{0,4}(怎么看|数字|读数|显示.{0,3}(多少|剩|余))")),
)

_METER_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("物联网智能表", re.compile(r"物联网|智能表|智能燃气表|远传表|nb表")),
    ("IC卡表", re.compile(r"ic卡|卡表|插卡表|预付费表|磁卡表")),
    ("机械表", re.compile(r"机械表|普通表|老式表|字轮表|老表")),
)

_MOBILE = re.compile(r"(?<![\d])(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<![\d])(0\d{2,3})-?(\d{7,8})(?!\d)")
_LOCAL_LINE = re.compile(r"(?:电话|座机|固话|联系方式)[^\d]{0,4}(\d{7,8})(?!\d)")
_DIGITS = re.compile(r"(?<![\da-z])(\d{8,12})(?!\d)")
_ACCOUNT_CONTEXT = re.compile(r"(户号|用户号|账号|账户|编号|卡号|户头)[^\d]{0,6}$")
# "户号查不到，我电话是139..." names the number as a phone even after an account word.
_PHONE_CONTEXT = re.compile(r"(电话|手机|手机号|联系方式|联系人|打)[^\d]{0,4}$")
_ISO_LIKE = re.compile(r"20\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")

_CHUNK = re.compile(r"[^\s,.!?;:，。！？；：、()（）\"'“”]+")
_ADDRESS_CORE = re.compile(
    r"(?:\d+|[一二三四五六七八九十]+)(?:号楼|栋|幢|座|号院|排)(?:\d+(?:单元|门洞|门))?(?:\d+(?:层|楼))?(?:\d+(?:室|号|户)?)?"
    r"|\d+单元\d+(?:室|号|户)?"
    r"|(?:小区|花园|家园|社区|新村|公寓|大厦|大院|里|苑|村)\d+-\d+(?:-\d+)?"
)
_PLACE_SUFFIX = re.compile(r"(?:花园|家园|新村|公寓|大院)?(?:小区|社区)|花园|家园|新村|大院|公寓|大厦|[路街道巷]\d+号|胡同\d+号")
_ADDRESS_LEAD = re.compile(
    r".*(?:地址是|地址|住址是?|住在|家住|我们家|我家|家在|位于|户号\d*|在|是|到|去|来|的|:)"
)
_PRONOUN = re.compile(r"^(我们|你们|他们|咱们|这个|那个|整个|隔壁|这|那|本|各|全|哪个|什么)")


def _first(table: tuple[tuple[str, re.Pattern[str]], ...], text: str) -> str | None:
    for value, pattern in table:
        if pattern.search(text):
            return value
    return None


def _earliest(table: tuple[tuple[str, re.Pattern[str]], ...], text: str) -> str | None:
    hits = [(match.start(), value) for value, pattern in table if (match := pattern.search(text))]
    return min(hits)[1] if hits else None


def extract_phone(text: str) -> str | None:
    if match := _MOBILE.search(text):
        before = text[: match.start()]
        if not _ACCOUNT_CONTEXT.search(before) or _PHONE_CONTEXT.search(before):
            return "".join(match.groups())
    if match := _LANDLINE.search(text):
        return f"{match[1]}-{match[2]}"
    if match := _LOCAL_LINE.search(text):
        return match[1]
    return None


def extract_account_no(text: str, phone: str | None = None) -> str | None:
    candidates = []
    for match in _DIGITS.finditer(text):
        digits = match[1]
        before = text[: match.start()]
        has_context = bool(_ACCOUNT_CONTEXT.search(before)) and not _PHONE_CONTEXT.search(before)
        looks_like_phone = (len(digits) == 11 and digits[:2] in {"13", "14", "15", "16", "17", "18", "19"}) or (
            phone is not None and digits in phone.replace("-", "")
        )
        if has_context:
            return digits
        if looks_like_phone or (len(digits) == 8 and _ISO_LIKE.fullmatch(digits)):
            continue
        candidates.append(digits)
    return candidates[0] if candidates else None


def extract_address(text: str) -> str | None:
    for chunk_match in _CHUNK.finditer(text):
        chunk = chunk_match[0]
        core = _ADDRESS_CORE.search(chunk) or _PLACE_SUFFIX.search(chunk)
        if not core:
            continue
        lead = _ADDRESS_LEAD.match(chunk[: core.start()])
        start = lead.end() if lead else 0
        address = chunk[start : core.end()]
        name = address[: core.start() - start]
        if _PRONOUN.match(name) or (core.re is _PLACE_SUFFIX and len(name) < 2):
            continue
        if len(address) >= 4:
            return address
    return None


def extract_slots(text: str, now: datetime | None = None) -> dict[str, str]:
    """All slots found in ``text``; dates/times are resolved against ``now`` (Asia/Shanghai)."""
    clean = normalize(text)
    slots: dict[str, str] = {}
    phone = extract_phone(clean)
    found = {
        "service_type": _first(_SERVICE_TYPES, clean),
        "meter_topic": _earliest(_METER_TOPICS, clean),
        "meter_type": _first(_METER_TYPES, clean),
        "account_no": extract_account_no(clean, phone),
        "phone": phone,
        "date": resolve_date(clean, now),
        "time": resolve_time(clean),
        "address": extract_address(clean),
    }
    for key, value in found.items():
        if value:
            slots[key] = value
    return slots
