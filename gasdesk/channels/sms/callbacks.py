"""Delivery receipts (状态报告) and replies (上行短信) the providers push to us, normalised.

Formats (JSON bodies, times in Beijing time unless said otherwise):

- Aliyun ``SmsReport``: ``[{phone_number, send_time, report_time, success, err_code, err_msg, sms_size,
  biz_id, out_id}]``; ``biz_id`` is the ``BizId`` SendSms returned.
- Aliyun ``SmsUp``: ``[{phone_number, send_time, content, sign_name, dest_code, sequence_id}]``.
  Aliyun expects ``{"code": 0, "msg": "成功"}`` back, else it pushes again.
- Tencent status callback: ``[{user_receive_time, nationcode, mobile, report_status ("SUCCESS"/"FAIL"),
  errmsg, description, sid}]``; ``sid`` is the ``SerialNo`` SendSms returned.
- Tencent reply callback: ``{extend, mobile, nationcode, sign, text, time}`` (``time``: Unix seconds; Tencent
  pushes one reply per request, a list of them is accepted too). Tencent expects ``{"result": 0, "errmsg": "OK"}``.

Anything else — not JSON, a wrong shape, a missing or mistyped field, an impossible time — raises
``InvalidInput`` naming the item and the field; nothing of a malformed push is half-used. Messages quote no
field values (they hold phone numbers and residents' text).

The callback URLs carry ``?token=`` (``GASDESK_SMS_CALLBACK_TOKEN``): ``check_callback_token`` compares it in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gasdesk.config import Settings
from gasdesk.customers.validation import normalize_phone
from gasdesk.errors import InvalidInput, PermissionDenied

# The providers' local times are Beijing time whatever the utility's display zone.
PROVIDER_ZONE = ZoneInfo("Asia/Shanghai")
# One push carries at most this many items (Aliyun batches receipts; a few hundred at most in practice).
MAX_ITEMS = 1000
MAX_TEXT = 2000  # characters of an uplink message kept (a long SMS is at most ~1,000)

ALIYUN_CALLBACK_ACK: dict[str, Any] = {"code": 0, "msg": "成功"}
TENCENT_CALLBACK_ACK: dict[str, Any] = {"result": 0, "errmsg": "OK"}


@dataclass(frozen=True)
class DeliveryReceipt:
    """Whether the message the provider knows as ``provider_id`` reached ``phone``."""

    provider_id: str
    phone: str
    delivered: bool
    error_code: str | None
    at: datetime  # aware, UTC


@dataclass(frozen=True)
class InboundSms:
    """A resident's reply. ``provider_ref`` identifies it at the provider where it says (Aliyun's
    ``sequence_id``); Tencent gives no id (None)."""

    phone: str
    text: str
    at: datetime  # aware, UTC
    provider_ref: str | None


def callback_ack(provider: str) -> dict[str, Any]:
    """The body the provider wants back once a push is taken (``aliyun`` or ``tencent``)."""
    return dict(ALIYUN_CALLBACK_ACK if provider == "aliyun" else TENCENT_CALLBACK_ACK)


def callback_token(settings: Settings) -> str | None:
    """The token pushes must carry: the configured one; in development without one, the simulator's own
    (derived from the secret key, so it is not published); else None (callbacks off)."""
    if settings.sms_callback_token:
        return settings.sms_callback_token
    if settings.simulator_enabled and settings.secret_key:
        return hmac.new(settings.secret_key.encode(), b"gasdesk sms simulator callbacks", hashlib.sha256).hexdigest()[:32]
    return None


def check_callback_token(settings: Settings, given: str | None) -> None:
    """Refuse a push without the configured token (or any push while none is configured); constant time."""
    expected = callback_token(settings)
    if not expected:
        raise PermissionDenied("短信回调未启用（未配置回调令牌）", code="sms_callback_disabled")
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise PermissionDenied("短信回调令牌无效", code="bad_callback_token")


# ------------------------------------------------------------------ reading helpers


def _load(body: bytes | str | Any, what: str) -> Any:
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{what}格式不正确：不是 UTF-8 文本", code="invalid_sms_callback") from exc
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvalidInput(f"{what}格式不正确：不是 JSON", code="invalid_sms_callback") from exc
    return body


def _items(data: Any, what: str, *, single_allowed: bool = False) -> list[dict[str, Any]]:
    if single_allowed and isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InvalidInput(f"{what}格式不正确：应为 JSON 数组", code="invalid_sms_callback")
    if not data:
        raise InvalidInput(f"{what}格式不正确：数组为空", code="invalid_sms_callback")
    if len(data) > MAX_ITEMS:
        raise InvalidInput(f"{what}格式不正确：一次最多 {MAX_ITEMS} 条", code="invalid_sms_callback")
    for index, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise InvalidInput(f"{what}格式不正确：第 {index} 条不是 JSON 对象", code="invalid_sms_callback")
    return data


class _Item:
    """Field access for item ``index`` of a push, with messages naming the item and the field."""

    def __init__(self, what: str, index: int, item: dict[str, Any]) -> None:
        self.what, self.index, self.item = what, index, item

    def fail(self, field: str, problem: str) -> InvalidInput:
        return InvalidInput(f"{self.what}格式不正确：第 {self.index} 条的 {field} {problem}", code="invalid_sms_callback")

    def text(self, field: str, *, required: bool = True, allow_int: bool = False, limit: int = 200) -> str:
        value = self.item.get(field)
        if value is None or value == "":
            if required:
                raise self.fail(field, "缺失")
            return ""
        if allow_int and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail(field, "应为字符串")
        if len(value) > limit:
            raise self.fail(field, "过长")
        return value

    def phone(self, field: str, nationcode: str = "86") -> str:
        raw = self.text(field, allow_int=True, limit=32)
        if nationcode not in ("86", "+86", "0086", ""):
            digits = "".join(ch for ch in raw if ch.isdigit())
            if not digits or not nationcode.lstrip("+").isdigit():
                raise self.fail(field, "不是电话号码")
            return f"+{nationcode.lstrip('+')}{digits}"
        phone = normalize_phone(raw)
        if not phone.isdigit() or not 5 <= len(phone) <= 15:
            raise self.fail(field, "不是电话号码")
        return phone

    def local_time(self, field: str) -> datetime:
        """``YYYY-MM-DD HH:MM:SS`` in Beijing time → aware UTC."""
        raw = self.text(field, limit=40)
        try:
            moment = datetime.strptime(raw.strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError as exc:
            raise self.fail(field, "不是“年-月-日 时:分:秒”格式的时间") from exc
        return moment.replace(tzinfo=PROVIDER_ZONE).astimezone(UTC)

    def unix_time(self, field: str) -> datetime:
        value = self.item.get(field)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 32503680000:  # before 3000
            raise self.fail(field, "不是 Unix 时间戳（秒）")
        return datetime.fromtimestamp(value, UTC)

    def flag(self, field: str) -> bool:
        value = self.item.get(field)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.fail(field, "应为 true 或 false")


# ------------------------------------------------------------------ Aliyun


def parse_aliyun_report(body: bytes | str | Any) -> list[DeliveryReceipt]:
    """Aliyun ``SmsReport`` push → receipts (``provider_id`` = ``biz_id``)."""
    what = "阿里云短信状态报告"
    receipts = []
    for index, raw in enumerate(_items(_load(body, what), what), start=1):
        item = _Item(what, index, raw)
        delivered = item.flag("success")
        error_code = item.text("err_code", required=False, limit=64) or None
        receipts.append(DeliveryReceipt(provider_id=item.text("biz_id", allow_int=True, limit=64),
                                        phone=item.phone("phone_number"), delivered=delivered,
                                        error_code=None if delivered else (error_code or "UNKNOWN"),
                                        at=item.local_time("report_time")))
    return receipts


def parse_aliyun_uplink(body: bytes | str | Any) -> list[InboundSms]:
    """Aliyun ``SmsUp`` push → replies (``provider_ref`` = ``sequence_id``)."""
    what = "阿里云上行短信"
    replies = []
    for index, raw in enumerate(_items(_load(body, what), what), start=1):
        item = _Item(what, index, raw)
        replies.append(InboundSms(phone=item.phone("phone_number"),
                                  text=item.text("content", required=False, limit=MAX_TEXT),
                                  at=item.local_time("send_time"),
                                  provider_ref=item.text("sequence_id", allow_int=True, limit=64)))
    return replies


# ------------------------------------------------------------------ Tencent


def parse_tencent_status(body: bytes | str | Any) -> list[DeliveryReceipt]:
    """Tencent status callback → receipts (``provider_id`` = ``sid``)."""
    what = "腾讯云短信状态回执"
    receipts = []
    for index, raw in enumerate(_items(_load(body, what), what), start=1):
        item = _Item(what, index, raw)
        status = item.text("report_status", limit=16)
        if status not in ("SUCCESS", "FAIL"):
            raise item.fail("report_status", "应为 SUCCESS 或 FAIL")
        delivered = status == "SUCCESS"
        nationcode = item.text("nationcode", required=False, allow_int=True, limit=8) or "86"
        error_code = item.text("errmsg", required=False, limit=64) or None
        receipts.append(DeliveryReceipt(provider_id=item.text("sid", limit=128),
                                        phone=item.phone("mobile", nationcode), delivered=delivered,
                                        error_code=None if delivered else (error_code or "UNKNOWN"),
                                        at=item.local_time("user_receive_time")))
    return receipts


def parse_tencent_reply(body: bytes | str | Any) -> list[InboundSms]:
    """Tencent reply callback (one object, or a list of them) → replies."""
    what = "腾讯云上行短信"
    replies = []
    for index, raw in enumerate(_items(_load(body, what), what, single_allowed=True), start=1):
        item = _Item(what, index, raw)
        nationcode = item.text("nationcode", required=False, allow_int=True, limit=8) or "86"
        replies.append(InboundSms(phone=item.phone("mobile", nationcode),
                                  text=item.text("text", required=False, limit=MAX_TEXT),
                                  at=item.unix_time("time"), provider_ref=None))
    return replies
