"""Tencent Cloud (腾讯云) SMS: API 3.0 ``SendSms``, version 2021-01-11, signed with TC3-HMAC-SHA256.

A JSON POST to https://sms.tencentcloudapi.com/ (``sms_endpoint`` overrides it) with the headers
``X-TC-Action``, ``X-TC-Version``, ``X-TC-Timestamp``, ``X-TC-Region`` and ``Authorization``. Signing
(Tencent's "签名方法 v3"):

1. ``CanonicalRequest = METHOD \\n URI ("/") \\n query ("" for POST) \\n CanonicalHeaders \\n SignedHeaders \\n
   hex(SHA256(body))`` where the headers are ``content-type`` and ``host``, names and values lower-cased and
   trimmed, each ``name:value\\n``, and ``SignedHeaders = "content-type;host"``;
2. ``StringToSign = "TC3-HMAC-SHA256" \\n timestamp \\n "<UTC date>/sms/tc3_request" \\n hex(SHA256(CanonicalRequest))``;
3. keys: ``SecretDate = HMAC-SHA256("TC3" + SecretKey, date)``, ``SecretService = HMAC(SecretDate, "sms")``,
   ``SecretSigning = HMAC(SecretService, "tc3_request")``; ``Signature = hex(HMAC(SecretSigning, StringToSign))``;
4. ``Authorization = "TC3-HMAC-SHA256 Credential=<SecretId>/<scope>, SignedHeaders=<…>, Signature=<…>"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from gasdesk import clock
from gasdesk.channels.sending import SendFailed, SendResult
from gasdesk.channels.sms.providers.base import (
    DEFAULT_TIMEOUT_S,
    SmsTemplateRef,
    mobile_or_send_failed,
    ordered_params,
    safe_detail,
    unreadable_answer,
)

TENCENT_ENDPOINT = "https://sms.tencentcloudapi.com/"
TENCENT_SERVICE = "sms"
TENCENT_API_VERSION = "2021-01-11"
TENCENT_DEFAULT_REGION = "ap-guangzhou"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = ("content-type", "host")


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_request(method: str, uri: str, query: str, headers: Mapping[str, str],
                      signed_headers: Sequence[str], payload: bytes) -> str:
    """Step 1. ``headers`` maps lower-case names to values; ``signed_headers`` are lower-case and sorted."""
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in signed_headers)
    return "\n".join([method.upper(), uri, query, canonical_headers, ";".join(signed_headers), _sha256_hex(payload)])


def utc_date(timestamp: int) -> str:
    """The credential scope's date: the UTC day of the timestamp (never the local one)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def credential_scope(timestamp: int, service: str) -> str:
    return f"{utc_date(timestamp)}/{service}/tc3_request"


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    """Step 2."""
    return "\n".join([ALGORITHM, str(timestamp), credential_scope(timestamp, service),
                      _sha256_hex(canonical.encode())])


def signature(secret_key: str, date: str, service: str, to_sign: str) -> str:
    """Step 3: the derived keys, then the hex HMAC of the string to sign."""
    secret_date = _hmac(f"TC3{secret_key}".encode(), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(secret_id: str, secret_key: str, *, timestamp: int, service: str, host: str,
                  payload: bytes, content_type: str = CONTENT_TYPE, method: str = "POST", query: str = "") -> str:
    """The ``Authorization`` header of a request signed over ``content-type;host``."""
    canonical = canonical_request(method, "/", query, {"content-type": content_type, "host": host},
                                  SIGNED_HEADERS, payload)
    sig = signature(secret_key, utc_date(timestamp), service, string_to_sign(timestamp, service, canonical))
    return (f"{ALGORITHM} Credential={secret_id}/{credential_scope(timestamp, service)}, "
            f"SignedHeaders={';'.join(SIGNED_HEADERS)}, Signature={sig}")


def host_of(endpoint: str) -> str:
    """The ``Host`` header httpx sends for ``endpoint`` (the port only when not the scheme's default)."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{host}:{parts.port}" if parts.port and parts.port != default else host


# Tencent's error codes → (reason for staff, may a retry succeed); matched exactly, then by prefix.
_ERRORS: dict[str, tuple[str, bool]] = {
    "InvalidParameterValue.IncorrectPhoneNumber": ("invalid_phone", False),
    "FailedOperation.PhoneNumberInBlacklist": ("number_blocked", False),
    "FailedOperation.PhoneNumberParseFail": ("invalid_phone", False),
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": ("invalid_phone", False),
    "FailedOperation.TemplateIncorrectOrUnapproved": ("template_rejected", False),
    "FailedOperation.TemplateUnapprovedOrNotExist": ("template_rejected", False),
    "FailedOperation.SignatureIncorrectOrUnapproved": ("sign_name_rejected", False),
    "FailedOperation.ContainSensitiveWord": ("content_blocked", False),
    "FailedOperation.InsufficientBalanceInSmsPackage": ("provider_account", False),
    "FailedOperation.MarketingSendTimeConstraint": ("rate_limited", True),
    "InvalidParameterValue.SdkAppIdNotExist": ("provider_configuration", False),
    "AuthFailure.SignatureExpire": ("clock_skew", False),
}
_PREFIXES: tuple[tuple[str, tuple[str, bool]], ...] = (
    ("InvalidParameterValue.TemplateParameter", ("template_params_rejected", False)),
    ("InvalidParameterValue.", ("template_params_rejected", False)),
    ("LimitExceeded.", ("rate_limited", True)),
    ("RequestLimitExceeded", ("rate_limited", True)),
    ("InternalError", ("provider_unavailable", True)),
    ("ServiceUnavailable", ("provider_unavailable", True)),
    ("ResourceUnavailable", ("provider_unavailable", True)),
    ("AuthFailure", ("provider_configuration", False)),
    ("UnauthorizedOperation", ("provider_configuration", False)),
    ("InvalidAction", ("provider_configuration", False)),
)


def classify_error(code: str) -> tuple[str, bool]:
    """(reason, retryable) for a Tencent ``Error.Code`` or per-number ``SendStatus.Code`` other than ``Ok``."""
    if code in _ERRORS:
        return _ERRORS[code]
    for prefix, outcome in _PREFIXES:
        if code.startswith(prefix):
            return outcome
    return "provider_rejected", False


class TencentSmsProvider:
    """Sends through Tencent Cloud SMS ``SendSms``; ``SendResult.provider_id`` is the ``SerialNo``."""

    name = "tencent"

    def __init__(self, *, secret_id: str, secret_key: str, sdk_app_id: str, sign_name: str,
                 region: str = TENCENT_DEFAULT_REGION, endpoint: str | None = None,
                 http: httpx.AsyncClient | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.region = region
        self.endpoint = endpoint or TENCENT_ENDPOINT
        self._http = http
        self.timeout_s = timeout_s

    def build_request(self, phone: str, template: SmsTemplateRef, params: dict[str, str], *,
                      reference: str | None = None, now: datetime | None = None) -> tuple[bytes, dict[str, str]]:
        """The JSON body and the headers, ``Authorization`` included (``now`` fixed only by tests)."""
        values = ordered_params(template, params)
        body: dict[str, Any] = {
            "PhoneNumberSet": [f"+86{phone}"],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": template.sign_name or self.sign_name,
            "TemplateId": template.code,
            "TemplateParamSet": values,
        }
        if reference:
            body["SessionContext"] = reference
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(clock.as_utc(now or clock.utcnow()).timestamp())
        host = host_of(self.endpoint)
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": TENCENT_API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
            "Authorization": authorization(self.secret_id, self._secret_key, timestamp=timestamp,
                                           service=TENCENT_SERVICE, host=host, payload=payload),
        }
        return payload, headers

    async def send(self, phone: str, template: SmsTemplateRef, params: dict[str, str], *,
                   reference: str | None = None) -> SendResult:
        mobile = mobile_or_send_failed(phone)
        payload, headers = self.build_request(mobile, template, params, reference=reference)
        try:
            if self._http is not None:
                response = await self._http.post(self.endpoint, content=payload, headers=headers,
                                                 timeout=self.timeout_s)
            else:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    response = await client.post(self.endpoint, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise SendFailed("provider_unavailable", retryable=True, detail=type(exc).__name__) from exc
        return _result(response)


def _result(response: httpx.Response) -> SendResult:
    if response.status_code >= 500:
        raise SendFailed("provider_unavailable", retryable=True, detail=f"HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    inner = answer.get("Response") if isinstance(answer, dict) else None
    if not isinstance(inner, dict):
        raise unreadable_answer(response.status_code)
    error = inner.get("Error")
    if isinstance(error, dict):
        code = str(error.get("Code") or "")
        reason, retryable = classify_error(code)
        raise SendFailed(reason, retryable=retryable, detail=safe_detail(code, str(error.get("Message") or "")))
    if response.status_code != 200:
        raise unreadable_answer(response.status_code)
    statuses = inner.get("SendStatusSet")
    if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
        raise SendFailed("provider_unavailable", retryable=True, detail="answer without SendStatusSet")
    status = statuses[0]
    code = str(status.get("Code") or "")
    if code == "Ok":
        serial = status.get("SerialNo")
        return SendResult(provider_id=str(serial) if serial else None)
    reason, retryable = classify_error(code)
    raise SendFailed(reason, retryable=retryable, detail=safe_detail(code, str(status.get("Message") or "")))
