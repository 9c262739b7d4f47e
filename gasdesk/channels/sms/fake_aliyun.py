"""An in-process fake of Aliyun Dysmsapi ``SendSms`` (tests, the development simulator).

It checks a request as Aliyun does — the RPC v1 signature recomputed from the parameters it received (query
string and form body, GET or POST), the AccessKeyId, the timestamp (15 minutes either way), the
SignatureNonce (once only) — and answers with Aliyun's own error JSON. Accepted messages land in
``FakeAliyunSms.sent``. It answers JSON whatever ``Format`` asks for.

    fake = FakeAliyunSms()
    app = create_fake_aliyun_app(fake, "LTAI-test", "secret")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
"""

from __future__ import annotations

import hmac
import itertools
import json
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gasdesk import clock
from gasdesk.channels.sms.fake_common import FailurePlan, SentSms, mainland_mobile, read_capped_body
from gasdesk.channels.sms.providers.aliyun import ALIYUN_API_VERSION, TIMESTAMP_FORMAT, sign

ALIYUN_MAX_SKEW = timedelta(minutes=15)
ALIYUN_PARAM_CAP = 35  # characters per template variable
_REQUIRED = ("AccessKeyId", "Action", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp",
             "Version", "Signature")

# Messages as Aliyun words them.
_MESSAGES = {
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "InvalidTimeStamp.Expired": "Specified time stamp or date value is expired.",
    "InvalidTimeStamp.Format": "Specified time stamp or date value is not well formatted.",
    "SignatureNonceUsed": "Specified signature nonce was used already.",
    "InvalidSignatureMethod": "Specified signature method is not supported.",
    "InvalidSignatureVersion": "Specified signature version is not supported.",
    "InvalidAction.NotFound": "Specified api is not found, please check your url and method.",
    "InvalidVersion": "Specified parameter Version is not valid.",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.MOBILE_COUNT_OVER_LIMIT": "手机号码数量超过限制",
    "isv.SMS_SIGNATURE_ILLEGAL": "签名不合法",
    "isv.SMS_TEMPLATE_ILLEGAL": "模板不合法(不存在或被拉黑)",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板缺少变量",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.PARAM_LENGTH_LIMIT": "参数超出长度限制",
    "isv.BUSINESS_LIMIT_CONTROL": "业务限流",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "Throttling.User": "Request was denied due to user flow control.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "InternalError": "The request processing has failed due to some unknown error.",
}


class FakeAliyunSms:
    """The fake's state: accepted messages, seen nonces, planned failures, and optional catalogue checks.

    ``templates`` (code → variable names) and ``sign_names``, when given, are the console's approved ones:
    others are refused as Aliyun refuses them. ``now`` is the fake's clock (a test moves it to make the
    client's timestamps stale)."""

    def __init__(self, *, templates: dict[str, tuple[str, ...]] | None = None,
                 sign_names: set[str] | None = None, now: Callable[[], datetime] = clock.utcnow,
                 max_skew: timedelta = ALIYUN_MAX_SKEW) -> None:
        self.templates = templates
        self.sign_names = sign_names
        self.now = now
        self.max_skew = max_skew
        self.sent: list[SentSms] = []
        self.rejected: list[str] = []  # error codes answered, in order
        self.requests = 0
        self._nonces: dict[str, datetime] = {}
        self._failures = FailurePlan()
        self._serial = itertools.count(1)

    def fail_next(self, n: int = 1, *, http_status: int | None = None, error_code: str | None = None) -> None:
        """The next ``n`` requests fail: with ``http_status`` (default 500: an outage, before any check; with
        ``error_code`` too, that code is the body), or, with ``error_code`` alone, with that Aliyun code in an
        HTTP 200 answer once the request is authenticated (``isv.BUSINESS_LIMIT_CONTROL``, …)."""
        self._failures.add(n, http_status=http_status, error_code=error_code)

    def reset(self) -> None:
        self.sent.clear()
        self.rejected.clear()
        self._nonces.clear()
        self._failures.planned.clear()

    def _use_nonce(self, nonce: str, now: datetime) -> bool:
        """Record ``nonce``; False when it was used within the window (a replay)."""
        horizon = now - 2 * self.max_skew
        for old in [n for n, seen in self._nonces.items() if seen < horizon]:
            del self._nonces[old]
        if nonce in self._nonces:
            return False
        self._nonces[nonce] = now
        return True

    def _biz_id(self) -> str:
        return f"{10**17 + secrets.randbelow(9 * 10**17)}^{next(self._serial)}"


def _error(fake: FakeAliyunSms, code: str, status: int = 400) -> JSONResponse:
    fake.rejected.append(code)
    return JSONResponse({"RequestId": str(uuid.uuid4()).upper(), "HostId": "dysmsapi.aliyuncs.com",
                         "Code": code, "Message": _MESSAGES.get(code, code)}, status_code=status)


def _parse_timestamp(value: str) -> datetime | None:
    try:
        return clock.as_utc(datetime.strptime(value, TIMESTAMP_FORMAT))
    except ValueError:
        return None


def _params(query: str, body: bytes) -> dict[str, str] | None:
    """Query and form parameters as Aliyun reads them; None when one name comes twice."""
    pairs = parse_qsl(query, keep_blank_values=True)
    pairs += parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    params = dict(pairs)
    return params if len(params) == len(pairs) else None


def create_fake_aliyun_app(fake: FakeAliyunSms, access_key_id: str, secret: str) -> Starlette:
    """A Starlette app answering Dysmsapi's endpoint (``/``) for one AccessKey pair."""

    async def endpoint(request: Request) -> JSONResponse:
        fake.requests += 1
        outage = fake._failures.take_outage()
        if outage is not None:
            assert outage.http_status is not None
            return _error(fake, outage.error_code or ("ServiceUnavailable" if outage.http_status == 503
                                                        else "InternalError"), outage.http_status)
        body = await read_capped_body(request)
        if body is None:
            return _error(fake, "InvalidParameter", 413)
        params = _params(request.url.query, body if request.method == "POST" else b"")
        if params is None:
            return _error(fake, "InvalidParameter")
        for name in _REQUIRED:
            if not params.get(name):
                return _error(fake, f"Missing{name}")
        if params["AccessKeyId"] != access_key_id:
            return _error(fake, "InvalidAccessKeyId.NotFound", 404)
        if params["SignatureMethod"] != "HMAC-SHA1":
            return _error(fake, "InvalidSignatureMethod")
        if params["SignatureVersion"] != "1.0":
            return _error(fake, "InvalidSignatureVersion")
        stamp = _parse_timestamp(params["Timestamp"])
        if stamp is None:
            return _error(fake, "InvalidTimeStamp.Format")
        now = clock.as_utc(fake.now())
        if abs(now - stamp) > fake.max_skew:
            return _error(fake, "InvalidTimeStamp.Expired")
        expected = sign(request.method, params, secret)
        if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
            return _error(fake, "SignatureDoesNotMatch")
        if not fake._use_nonce(params["SignatureNonce"], now):
            return _error(fake, "SignatureNonceUsed")
        if params["Action"] != "SendSms":
            return _error(fake, "InvalidAction.NotFound", 404)
        if params["Version"] != ALIYUN_API_VERSION:
            return _error(fake, "InvalidVersion")
        return _send_sms(fake, params, now)

    return Starlette(routes=[Route("/", endpoint, methods=["GET", "POST"])])


def _send_sms(fake: FakeAliyunSms, params: dict[str, str], now: datetime) -> JSONResponse:
    for name in ("PhoneNumbers", "SignName", "TemplateCode"):
        if not params.get(name):
            return _error(fake, f"Missing{name}")
    injected = fake._failures.take_error()
    if injected is not None and injected.error_code:
        return _business_error(fake, injected.error_code)
    numbers = params["PhoneNumbers"].split(",")
    if len(numbers) > 1000:
        return _business_error(fake, "isv.MOBILE_COUNT_OVER_LIMIT")
    phones = [mainland_mobile(number) for number in numbers]
    if any(phone is None for phone in phones):
        return _business_error(fake, "isv.MOBILE_NUMBER_ILLEGAL")
    if fake.sign_names is not None and params["SignName"] not in fake.sign_names:
        return _business_error(fake, "isv.SMS_SIGNATURE_ILLEGAL")
    values: Any = {}
    if params.get("TemplateParam"):
        try:
            values = json.loads(params["TemplateParam"])
        except ValueError:
            return _business_error(fake, "isv.INVALID_JSON_PARAM")
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        return _business_error(fake, "isv.INVALID_JSON_PARAM")
    if any(len(v) > ALIYUN_PARAM_CAP for v in values.values()):
        return _business_error(fake, "isv.PARAM_LENGTH_LIMIT")
    if fake.templates is not None:
        variables = fake.templates.get(params["TemplateCode"])
        if variables is None:
            return _business_error(fake, "isv.SMS_TEMPLATE_ILLEGAL")
        if any(name not in values for name in variables):
            return _business_error(fake, "isv.TEMPLATE_MISSING_PARAMETERS")
    biz_id = fake._biz_id()
    for phone in phones:
        assert phone is not None
        fake.sent.append(SentSms(phone=phone, template=params["TemplateCode"], params=dict(values),
                                 sign_name=params["SignName"], provider_id=biz_id, at=now,
                                 reference=params.get("OutId")))
    return JSONResponse({"Message": "OK", "RequestId": str(uuid.uuid4()).upper(), "Code": "OK", "BizId": biz_id})


def _business_error(fake: FakeAliyunSms, code: str) -> JSONResponse:
    """SendSms's own refusals come back with HTTP 200 and the code in the body."""
    fake.rejected.append(code)
    return JSONResponse({"Message": _MESSAGES.get(code, code), "RequestId": str(uuid.uuid4()).upper(),
                         "Code": code})
