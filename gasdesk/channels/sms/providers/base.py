"""What every SMS provider adapter offers, and the checks they share.

A provider sends one templated message to one mainland mobile number. Both real providers only send
templates approved in their console: the message names the template (Aliyun ``TemplateCode`` such as
``SMS_123456789``, Tencent ``TemplateId`` such as ``1234567``) and fills its variables — by name for Aliyun
(``TemplateParam`` is a JSON object), by position for Tencent (``TemplateParamSet`` is a list) — so
``SmsTemplateRef`` carries the code and the ordered variable names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gasdesk.channels.sending import SendFailed, SendResult
from gasdesk.customers.validation import MOBILE_RE, normalize_phone, to_halfwidth
from gasdesk.errors import InvalidInput
from gasdesk.security.pii import redact_pii

# Seconds to wait for a provider's answer; a time-out is a retryable failure.
DEFAULT_TIMEOUT_S = 10.0


class SmsConfigurationError(RuntimeError):
    """The selected provider lacks a setting it needs (raised at start-up by ``provider_from_settings``)."""


@dataclass(frozen=True)
class SmsTemplateRef:
    """A template as the provider knows it: its code/id, its variables in order, an optional sign override."""

    code: str
    variables: tuple[str, ...] = ()
    sign_name: str | None = None


@runtime_checkable
class SmsProvider(Protocol):
    """One SMS provider. ``send`` returns ``SendResult(provider_id)`` — the id later delivery receipts carry
    (Aliyun ``BizId``, Tencent ``SerialNo``) — or raises ``SendFailed`` saying whether a retry may succeed.
    ``reference`` is echoed back by the provider where it can (Aliyun ``OutId``, Tencent ``SessionContext``)."""

    name: str

    async def send(self, phone: str, template: SmsTemplateRef, params: dict[str, str], *,
                   reference: str | None = None) -> SendResult: ...


def check_mobile(raw: str) -> str:
    """A mainland mobile number as 11 digits ("13800138000"): full-width digits, spaces, dashes and a
    +86/0086 prefix are accepted; landlines and foreign numbers are refused (they cannot receive SMS here)."""
    compact = re.sub(r"[\s\-()]", "", to_halfwidth(raw or ""))
    # An international prefix other than China's: "+1 415 555 0100" must not pass as 14155550100.
    foreign = compact.startswith(("+", "00")) and not compact.startswith(("+86", "0086"))
    phone = normalize_phone(raw)
    if foreign or not MOBILE_RE.match(phone):
        raise InvalidInput("手机号格式不正确（应为 11 位中国大陆手机号）", code="invalid_phone")
    return phone


def mobile_or_send_failed(raw: str) -> str:
    """``check_mobile`` for adapters: a number that cannot be an SMS target is a permanent send failure."""
    try:
        return check_mobile(raw)
    except InvalidInput as exc:
        raise SendFailed("invalid_phone", retryable=False, detail="not a mainland mobile number") from exc


def ordered_params(template: SmsTemplateRef, params: dict[str, str]) -> list[str]:
    """The template's variables' values in the template's order; a missing or unknown variable is a permanent
    failure (the provider would refuse the message or send it with a hole in it)."""
    missing = [name for name in template.variables if name not in params]
    extra = sorted(set(params) - set(template.variables))
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unknown " + ", ".join(extra))
        raise SendFailed("template_params_mismatch", retryable=False, detail="; ".join(parts))
    return [str(params[name]) for name in template.variables]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_detail(code: str, message: str = "", limit: int = 160) -> str:
    """A provider's error for ``SendFailed.detail`` (shown to staff, stored): personal data redacted,
    control characters dropped, length capped. Providers sometimes echo the request (Aliyun's signature
    errors quote the string to sign, phone number included)."""
    text = f"{code}: {message}" if message else code
    text = redact_pii(_CONTROL.sub(" ", text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unreadable_answer(status_code: int) -> SendFailed:
    """An answer without the provider's JSON: an outage (5xx, or a proxy's page) may pass; a 429 is a rate
    limit; any other 4xx means the endpoint or account is wrong, which a retry does not fix."""
    detail = f"HTTP {status_code}: unreadable answer"
    if status_code == 429:
        return SendFailed("rate_limited", retryable=True, detail=detail)
    if 400 <= status_code < 500:
        return SendFailed("provider_configuration", retryable=False, detail=detail)
    return SendFailed("provider_unavailable", retryable=True, detail=detail)
