"""Slot extraction: service type, meter topic/type, account number, phone, date, time, address.

Everything here is rule-based on ``normalize``d text; values come back in canonical form so the
dialogue layer never sees synonyms.
"""

from __future__ import annotations

import re
from datetime import datetime

from gasdesk.bot.nlu.dates import resolve_date, resolve_time
from gasdesk.bot.nlu.normalize import normalize

# A service the resident names wins over one their words describe ("阀门锈死了，找个人来修一下" asks for 维修);
# within each table the more specific service wins when a message mentions several (e.g. 阀管改造 also contains 管
# and 改). Residents mostly describe the job ("表装在门后面太碍事，想挪到阳台", "热水器打着火没几秒就灭了，派个人")
# rather than name it, so each service also has the words of its jobs; a fault's symptoms name a repair before a
# check is considered ("派人来检查一下灶为啥打不着"). A check or a turn-on is named only when asked for: in a
# running flow "检查了表前阀" or "气没开" must not change the service it books.
_SERVICE_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("报警器安装", re.compile(r"(装|安|买|配|加|换).{0,12}(报警器|报警装置|探测器|报警的)"
                             r"|(报警器|探测器|报警装置).{0,10}(安装|装上|装一个|加装|来装|给装)")),
    ("阀管改造", re.compile(r"阀管|阀门改造|管阀改造|(换|更换|装|安装|加装)(个|一个|了)?.{0,3}(自闭阀|新阀门)"
                           r"|(换|更换|装|安装|加装)(个|一个)?阀门|自闭阀.{0,2}(安装|改造|更换|加装)")),
    ("旧改施工", re.compile(r"旧改|老旧小区改造|旧小区改造|老小区改造|小区改造")),
    ("改线", re.compile(r"改线|改管|移表|挪表|挪管|移管|改燃气管|改管道|管道改")),
    ("开栓", re.compile(r"开栓|通(个|一下|下)?气|开气|开(一下|下|个)气|接通(燃气|煤气|天然气)")),
    ("安检", re.compile(r"安检|安监|安全检查|入户检查|上门检查|燃气检查|年检")),
    ("维修", re.compile(r"维修|修理|报修|来修|修一下|修修|上门修|派人修|修灶|修好|检修|(?<!装)修[^改]")),
)
_FAULT = (r"打不着|点不着|不着火|不打火|打不上火|不出火|火(特别|很|太|越来越)?小|(火|灶|热水器|壁挂炉).{0,6}(灭|熄)"
          r"|熄火|坏了|坏掉|故障|不好使|不灵|松了|松动|转不动|拧不动|不走字|不走了|不转了|漏水|异响|咔哒|咔咔")
_SERVICE_JOBS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("阀管改造", re.compile(r"金属软管|球阀|旋塞阀|(装|加|加装).{0,6}安全阀"
                           r"|(换|更换|更新)[^到，,。\s]{0,4}(管子|管道|铁管|镀锌管|胶管|橡胶管|老阀|阀门)"
                           r"|(管子|管道|铁管|镀锌管|阀门|胶管|橡胶管|软管).{0,10}(锈|老化|换成|换个新|更新|换新|要换|得换|换掉)")),
    ("旧改施工", re.compile(r"老旧小区|(小区|老楼|楼|街道|社区|单元|楼道).{0,8}(改造|整治|提升)"
                           r"|(改造|整治).{0,10}(施工|进户|入户|接新管)|施工队.{0,12}(入户|进户|接|管)")),
    (
        "改线",
        re.compile(
            r"(管子|管道|燃气管|表|燃气表|管)[^。？?！!]{0,24}(挪|移|改位置|换位置|换个地方|换地方|改到|移到|挪到|改过去"
            r"|接过去|接长|延长)"
            r"|(挪|移|迁)(一下|一挪|一移)?.{0,3}(管子|管道|燃气管|燃气表|表)"
            r"|改.{0,4}(燃气管|管道|管子)|(燃气管|管道|管子).{0,4}(走向|位置)|(燃气管|管道|管子).{0,10}(改|动)(?!造)"
            r"|(热水器|灶台|灶|壁挂炉).{0,8}(移到|挪到|搬到|换到|往.{0,2}挪)"
        ),
    ),
    ("开栓", re.compile(r"(约|预约|申请|办|帮我|给我|来|上门).{0,4}开通|(燃气|煤气|天然气).{0,4}开通"
                       r"|开通.{0,2}(燃气|煤气|天然气)|(想|要|申请|办理?)恢复(用|供)?气|开阀|把阀.{0,3}开|(来|上门|给)点火"
                       r"|(燃气|天然气|煤气|气).{0,8}(开开|开一下|给开)|给开开|(第一次|首次|头一回)用气")),
    ("维修", re.compile(_FAULT)),
    ("安检", re.compile(r"复查|来查|安不安全|安全不安全|(来|上门|入户|派人|请人|找人|帮我|给我|给).{0,8}(检查|查查|查一查"
                       r"|查一遍|查一下)")),
)

_METER_TOPICS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("自闭阀", re.compile(r"自闭阀|自闭|复位|阀.{0,4}自己关|自动关|过压|欠压|安全阀.{0,4}跳"
                         r"|(阀|阀门).{0,8}(弹起|跳了|跳起|掉下|切断|断了|提钮|按钮|拔起|拔不起|拉杆|手动开|往上提|提一下"
                         r"|提起)")),
    ("插卡", re.compile(r"插卡|插了卡|卡插|读卡|刷卡|插.{0,3}卡|卡(?!表).{0,8}插|卡.{0,6}(没反应|读不|不识别|识别不|插不|无效)"
                       r"|卡.{0,6}(朝|正面|反面|芯片|方向|哪面|哪边)|插(到|进|入)表|没插好|插反")),
    ("电池", re.compile(r"电池|没电|电量|换电|电压|低电|low ?bat")),
    ("余量", re.compile(r"余量|剩多少|剩余|还剩|剩下|剩的|读数|看表|表.{0,4}(怎么看|数字|读数|显示.{0,3}(多少|剩|余))"
                       r"|显示.{0,4}\d|数字?.{0,6}(什么意思|啥意思|代表|是啥|是什么)|表上.{0,10}(数|数字)")),
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
        "service_type": _first(_SERVICE_NAMES, clean) or _first(_SERVICE_JOBS, clean),
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
