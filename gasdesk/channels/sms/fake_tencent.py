"""An in-process fake of Tencent Cloud SMS ``SendSms`` 2021-01-11 (tests, the development simulator).

It checks a request as Tencent Cloud API 3.0 does — the TC3-HMAC-SHA256 signature recomputed from the raw
request (method, path, query, the headers the ``Authorization`` header lists, the body bytes), the SecretId,
the credential scope's date against ``X-TC-Timestamp``, the timestamp (5 minutes either way) — and answers
with Tencent's own JSON (HTTP 200, ``Response.Error`` on failure). Accepted messages land in
``FakeTencentSms.sent``; each number gets its own ``SendStatus`` (an invalid one
``InvalidParameterValue.IncorrectPhoneNumber``).

    fake = FakeTencentSms()
    app = create_fake_tencent_app(fake, "AKID-test", "secret")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
"""

from __future__ import annotations

import hmac
import itertools
import json
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gasdesk import clock
from gasdesk.channels.sms.fake_common import FailurePlan, SentSms, mainland_mobile, read_capped_body
from gasdesk.channels.sms.providers.tencent import (
    TENCENT_API_VERSION,
    TENCENT_SERVICE,
    canonical_request,
    signature,
    string_to_sign,
    utc_date,
)

TENCENT_MAX_SKEW = timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z0-9]+)/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$")

_MESSAGES = {
    "AuthFailure.InvalidAuthorization": "Credential is not valid.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your SecretId is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp and server time cannot differ by more than 5 minutes.",
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please check your signature "
                                    "is correct.",
    "InvalidAction": "Invalid action.",
    "NoSuchVersion": "The requested version does not exist.",
    "MissingParameter": "A required parameter is missing.",
    "InvalidParameter": "A parameter is not valid.",
    "UnsupportedProtocol": "The request must be a POST with Content-Type application/json.",
    "InvalidParameterValue.IncorrectPhoneNumber": "手机号格式错误",
    "InvalidParameterValue.SdkAppIdNotExist": "SdkAppId 不存在",
    "InvalidParameterValue.TemplateParameterFormatError": "验证码模板参数格式错误",
    "InvalidParameterValue.TemplateParameterLengthLimit": "单个模板变量字符数超过12个",
    "FailedOperation.TemplateIncorrectOrUnapproved": "模板未审批或请求的内容与审核通过的模板内容不匹配",
    "FailedOperation.SignatureIncorrectOrUnapproved": "签名未审批或格式错误",
    "LimitExceeded.PhoneNumberDailyLimit": "单个手机号日下发短信条数超过设定的上限",
    "RequestLimitExceeded": "请求的次数超过了频率限制",
    "InternalError": "内部错误",
}


class FakeTencentSms:
    """The fake's state: accepted messages, planned failures, and optional catalogue checks.

    ``sdk_app_id``, ``templates`` (TemplateId → number of parameters) and ``sign_names``, when given, are the
    console's: others are refused as Tencent refuses them. ``now`` is the fake's clock."""

    def __init__(self, *, sdk_app_id: str | None = None, templates: dict[str, int] | None = None,
                 sign_names: set[str] | None = None, now: Callable[[], datetime] = clock.utcnow,
                 max_skew: timedelta = TENCENT_MAX_SKEW) -> None:
        self.sdk_app_id = sdk_app_id
        self.templates = templates
        self.sign_names = sign_names
        self.now = now
        self.max_skew = max_skew
        self.sent: list[SentSms] = []
        self.rejected: list[str] = []  # error codes answered (request-level and per number), in order
        self.requests = 0
        self._failures = FailurePlan()
        self._serial = itertools.count(1)

    def fail_next(self, n: int = 1, *, http_status: int | None = None, error_code: str | None = None,
                  per_number: bool = False) -> None:
        """The next ``n`` requests fail: with ``http_status`` (default 500: an outage, before any check), or,
        with ``error_code`` alone, once authenticated, as ``Response.Error`` — or, with ``per_number``, as
        every number's ``SendStatus.Code`` (``LimitExceeded.PhoneNumberDailyLimit``, …)."""
        self._failures.add(n, http_status=http_status, error_code=error_code, per_number=per_number)

    def reset(self) -> None:
        self.sent.clear()
        self.rejected.clear()
        self._failures.planned.clear()

    def _serial_no(self) -> str:
        return f"{2000 + next(self._serial) % 1000}:{secrets.token_hex(10)}"


def _error(fake: FakeTencentSms, code: str, status: int = 200) -> JSONResponse:
    fake.rejected.append(code)
    return JSONResponse({"Response": {"Error": {"Code": code, "Message": _MESSAGES.get(code, code)},
                                      "RequestId": str(uuid.uuid4())}}, status_code=status)


def create_fake_tencent_app(fake: FakeTencentSms, secret_id: str, secret_key: str) -> Starlette:
    """A Starlette app answering the SMS API's endpoint (``/``) for one SecretId/SecretKey pair."""

    async def endpoint(request: Request) -> JSONResponse:
        fake.requests += 1
        outage = fake._failures.take_outage()
        if outage is not None:
            assert outage.http_status is not None
            return _error(fake, outage.error_code or "InternalError", outage.http_status)
        if request.method != "POST" or not request.headers.get("content-type", "").startswith("application/json"):
            return _error(fake, "UnsupportedProtocol")
        body = await read_capped_body(request)
        if body is None:
            return _error(fake, "InvalidParameter", 413)
        match = _AUTHORIZATION.match(request.headers.get("authorization", ""))
        signed = match.group("headers").split(";") if match else []
        if not match or signed != sorted(signed) or not {"content-type", "host"} <= set(signed) \
                or any(name not in request.headers for name in signed):
            return _error(fake, "AuthFailure.InvalidAuthorization")
        if match.group("id") != secret_id:
            return _error(fake, "AuthFailure.SecretIdNotFound")
        stamp_header = request.headers.get("x-tc-timestamp", "")
        if not stamp_header.isdigit():
            return _error(fake, "MissingParameter")
        stamp = int(stamp_header)
        if abs(clock.as_utc(fake.now()).timestamp() - stamp) > fake.max_skew.total_seconds():
            return _error(fake, "AuthFailure.SignatureExpire")
        if match.group("date") != utc_date(stamp):
            return _error(fake, "AuthFailure.InvalidAuthorization")
        service = match.group("service")
        headers = {name: request.headers[name] for name in signed}
        canonical = canonical_request(request.method, request.url.path or "/", request.url.query, headers, signed,
                                      body)
        expected = signature(secret_key, match.group("date"), service, string_to_sign(stamp, service, canonical))
        if not hmac.compare_digest(expected.encode(), match.group("signature").encode()):
            return _error(fake, "AuthFailure.SignatureFailure")
        if service != TENCENT_SERVICE:
            return _error(fake, "AuthFailure.InvalidAuthorization")
        if request.headers.get("x-tc-action") != "SendSms":
            return _error(fake, "InvalidAction")
        if request.headers.get("x-tc-version") != TENCENT_API_VERSION:
            return _error(fake, "NoSuchVersion")
        if not request.headers.get("x-tc-region"):
            return _error(fake, "MissingParameter")
        try:
            payload = json.loads(body)
        except ValueError:
            return _error(fake, "InvalidParameter")
        return _send_sms(fake, payload, clock.as_utc(fake.now()))

    return Starlette(routes=[Route("/", endpoint, methods=["GET", "POST"])])


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _send_sms(fake: FakeTencentSms, payload: Any, now: datetime) -> JSONResponse:
    if not isinstance(payload, dict):
        return _error(fake, "InvalidParameter")
    for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
        if name not in payload:
            return _error(fake, "MissingParameter")
    numbers, params = payload["PhoneNumberSet"], payload.get("TemplateParamSet", [])
    if not _strings(numbers) or not numbers or len(numbers) > 200 or not _strings(params):
        return _error(fake, "InvalidParameter")
    sign_name, template_id = payload.get("SignName") or "", str(payload["TemplateId"])
    injected = fake._failures.take_error()
    if injected is not None and injected.error_code and not injected.per_number:
        return _error(fake, injected.error_code)
    if fake.sdk_app_id is not None and payload["SmsSdkAppId"] != fake.sdk_app_id:
        return _error(fake, "InvalidParameterValue.SdkAppIdNotExist")
    if fake.sign_names is not None and sign_name not in fake.sign_names:
        return _error(fake, "FailedOperation.SignatureIncorrectOrUnapproved")
    if fake.templates is not None:
        if template_id not in fake.templates:
            return _error(fake, "FailedOperation.TemplateIncorrectOrUnapproved")
        if len(params) != fake.templates[template_id]:
            return _error(fake, "InvalidParameterValue.TemplateParameterFormatError")
    per_number_code = injected.error_code if injected is not None else None
    statuses = []
    for number in numbers:
        phone = mainland_mobile(number)
        code = per_number_code or (None if phone is not None else "InvalidParameterValue.IncorrectPhoneNumber")
        if code is not None or phone is None:
            code = code or "InvalidParameterValue.IncorrectPhoneNumber"
            fake.rejected.append(code)
            statuses.append({"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": "",
                             "Code": code, "Message": _MESSAGES.get(code, code), "IsoCode": ""})
            continue
        serial = fake._serial_no()
        fake.sent.append(SentSms(phone=phone, template=template_id, params=list(params), sign_name=sign_name,
                                 provider_id=serial, at=now, reference=payload.get("SessionContext") or None))
        statuses.append({"SerialNo": serial, "PhoneNumber": number, "Fee": 1,
                         "SessionContext": payload.get("SessionContext") or "", "Code": "Ok",
                         "Message": "send success", "IsoCode": "CN"})
    return JSONResponse({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})
