"""Aliyun (阿里云) Short Message Service: Dysmsapi 2017-05-25 ``SendSms`` over the RPC style, signature v1.

The request is a form POST to https://dysmsapi.aliyuncs.com/ (``sms_endpoint`` overrides it) — a POST so that
phone numbers and template values stay out of URLs, which reach logs. Signing (Aliyun's "RPC 签名机制"):

1. every parameter but ``Signature``, sorted by name, each name and value percent-encoded as UTF-8 with
   Aliyun's rules (RFC 3986 unreserved characters ``A-Z a-z 0-9 - _ . ~`` kept, everything else ``%XY`` in
   upper-case hex; so space → ``%20``, ``*`` → ``%2A``, ``~`` kept), joined as ``name=value`` with ``&``;
2. ``StringToSign = METHOD + "&" + percentEncode("/") + "&" + percentEncode(canonical query)``;
3. ``Signature = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

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

ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
ALIYUN_API_VERSION = "2017-05-25"
ALIYUN_DEFAULT_REGION = "cn-hangzhou"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def percent_encode(value: str) -> str:
    """Aliyun's percent-encoding: only RFC 3986 unreserved characters stay as they are."""
    return quote(value, safe="~", encoding="utf-8")


def canonical_query(params: Mapping[str, str]) -> str:
    """The sorted, encoded ``name=value&…`` of every parameter except ``Signature``."""
    return "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params) if k != "Signature")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """The RPC v1 ``Signature`` of a request with these parameters."""
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def format_timestamp(moment: datetime) -> str:
    return clock.as_utc(moment).strftime(TIMESTAMP_FORMAT)


# Aliyun's answer codes → (reason for staff, may a retry succeed). Unlisted codes: see ``classify_error``.
_ERRORS: dict[str, tuple[str, bool]] = {
    "isv.MOBILE_NUMBER_ILLEGAL": ("invalid_phone", False),
    "isv.MOBILE_COUNT_OVER_LIMIT": ("invalid_phone", False),
    "isv.TEMPLATE_MISSING_PARAMETERS": ("template_params_rejected", False),
    "isv.TEMPLATE_PARAMS_ILLEGAL": ("template_params_rejected", False),
    "isv.INVALID_JSON_PARAM": ("template_params_rejected", False),
    "isv.PARAM_LENGTH_LIMIT": ("template_params_rejected", False),
    "isv.INVALID_PARAMETERS": ("template_params_rejected", False),
    "isv.SMS_TEMPLATE_ILLEGAL": ("template_rejected", False),
    "isv.SMS_SIGNATURE_ILLEGAL": ("sign_name_rejected", False),
    "isv.SMS_SIGN_ILLEGAL": ("sign_name_rejected", False),
    "isv.BLACK_KEY_CONTROL_LIMIT": ("content_blocked", False),
    "isv.EXTEND_CODE_ERROR": ("provider_configuration", False),
    "isv.DENY_IP_RANGE": ("provider_configuration", False),
    "isv.ACCOUNT_NOT_EXISTS": ("provider_configuration", False),
    "isv.ACCOUNT_ABNORMAL": ("provider_configuration", False),
    "isv.OUT_OF_SERVICE": ("provider_account", False),
    "isv.AMOUNT_NOT_ENOUGH": ("provider_account", False),
    "isv.BUSINESS_LIMIT_CONTROL": ("rate_limited", True),
    "isv.DAY_LIMIT_CONTROL": ("rate_limited", True),
    "SignatureDoesNotMatch": ("provider_configuration", False),
    "IncompleteSignature": ("provider_configuration", False),
    "InvalidAccessKeyId.NotFound": ("provider_configuration", False),
    "InvalidAccessKeyId.Inactive": ("provider_configuration", False),
    "InvalidAccessKeyId": ("provider_configuration", False),
    "isp.RAM_PERMISSION_DENY": ("provider_configuration", False),
    # Our clock is off by more than the provider allows: a retry fails the same way until the host is fixed.
    "InvalidTimeStamp.Expired": ("clock_skew", False),
    # A fresh nonce is drawn for every attempt, so a retry goes through.
    "SignatureNonceUsed": ("provider_unavailable", True),
    "isp.SYSTEM_ERROR": ("provider_unavailable", True),
    "isp.GATEWAY_ERROR": ("provider_unavailable", True),
    "ServiceUnavailable": ("provider_unavailable", True),
    "InternalError": ("provider_unavailable", True),
}


def classify_error(code: str) -> tuple[str, bool]:
    """(reason, retryable) for an Aliyun answer code other than ``OK``."""
    if code in _ERRORS:
        return _ERRORS[code]
    if code.startswith("Throttling"):  # Throttling, Throttling.User, Throttling.Api
        return "rate_limited", True
    if code.startswith("isp."):  # the platform's own trouble
        return "provider_unavailable", True
    if code.startswith(("InvalidAccessKeyId", "Forbidden")):
        return "provider_configuration", False
    return "provider_rejected", False


class AliyunSmsProvider:
    """Sends through Aliyun Dysmsapi ``SendSms``; ``SendResult.provider_id`` is the ``BizId``."""

    name = "aliyun"

    def __init__(self, *, access_key_id: str, access_key_secret: str, sign_name: str,
                 region_id: str = ALIYUN_DEFAULT_REGION, endpoint: str | None = None,
                 http: httpx.AsyncClient | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        self.region_id = region_id
        self.endpoint = endpoint or ALIYUN_ENDPOINT
        self._http = http
        self.timeout_s = timeout_s

    def build_params(self, phone: str, template: SmsTemplateRef, params: dict[str, str], *,
                     reference: str | None = None, nonce: str | None = None,
                     now: datetime | None = None) -> dict[str, str]:
        """Every request parameter, ``Signature`` included (``nonce``/``now`` fixed only by tests)."""
        values = ordered_params(template, params)
        request = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": self.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": format_timestamp(now or clock.utcnow()),
            "Version": ALIYUN_API_VERSION,
            "PhoneNumbers": phone,
            "SignName": template.sign_name or self.sign_name,
            "TemplateCode": template.code,
        }
        if template.variables:
            request["TemplateParam"] = json.dumps(dict(zip(template.variables, values, strict=True)),
                                                  ensure_ascii=False, separators=(",", ":"))
        if reference:
            request["OutId"] = reference
        request["Signature"] = sign("POST", request, self._secret)
        return request

    async def send(self, phone: str, template: SmsTemplateRef, params: dict[str, str], *,
                   reference: str | None = None) -> SendResult:
        mobile = mobile_or_send_failed(phone)
        request = self.build_params(mobile, template, params, reference=reference)
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in request.items())
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "Accept": "application/json"}
        try:
            if self._http is not None:
                response = await self._http.post(self.endpoint, content=body.encode(), headers=headers,
                                                 timeout=self.timeout_s)
            else:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    response = await client.post(self.endpoint, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            raise SendFailed("provider_unavailable", retryable=True, detail=type(exc).__name__) from exc
        return _result(response)


def _result(response: httpx.Response) -> SendResult:
    answer: Any
    try:
        answer = response.json()
    except ValueError:
        answer = None
    code = answer.get("Code") if isinstance(answer, dict) else None
    if response.status_code >= 500:
        raise SendFailed("provider_unavailable", retryable=True,
                         detail=safe_detail(f"HTTP {response.status_code}", str(code or "")))
    if not isinstance(code, str):
        raise unreadable_answer(response.status_code)
    if code == "OK" and response.status_code == 200:
        biz_id = answer.get("BizId")
        return SendResult(provider_id=str(biz_id) if biz_id else None)
    reason, retryable = classify_error(code)
    raise SendFailed(reason, retryable=retryable, detail=safe_detail(code, str(answer.get("Message") or "")))
