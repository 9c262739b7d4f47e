"""The Aliyun adapter against the in-process Aliyun fake (httpx.ASGITransport): what is sent, what the fake
accepts and refuses, and how each refusal reaches the caller (SendFailed, retryable or not)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gasdesk import clock
from gasdesk.channels.sending import SendFailed
from gasdesk.channels.sms.fake_aliyun import FakeAliyunSms, create_fake_aliyun_app
from gasdesk.channels.sms.providers.aliyun import AliyunSmsProvider, percent_encode, sign
from gasdesk.channels.sms.providers.base import SmsTemplateRef

pytestmark = pytest.mark.no_database

KEY_ID, SECRET = "LTAI-test-key", "test-secret-0123456789"
ENDPOINT = "http://dysmsapi.test/"
NOTICE = SmsTemplateRef("SMS_100001", ("name", "time"))
PARAMS = {"name": "燃气表检定", "time": "5月3日 9:00-12:00"}


@pytest.fixture
def fake() -> FakeAliyunSms:
    return FakeAliyunSms(templates={"SMS_100001": ("name", "time"), "SMS_100002": ("name", "time", "place")},
                         sign_names={"燃气客服", "燃气抢修"})


@pytest.fixture
async def http(fake: FakeAliyunSms) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_aliyun_app(fake, KEY_ID, SECRET)),
                                 base_url=ENDPOINT) as client:
        yield client


def provider(http: httpx.AsyncClient, *, key_id: str = KEY_ID, secret: str = SECRET,
             sign_name: str = "燃气客服") -> AliyunSmsProvider:
    return AliyunSmsProvider(access_key_id=key_id, access_key_secret=secret, sign_name=sign_name,
                             endpoint=ENDPOINT, http=http)


def form(params: dict[str, str]) -> bytes:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode()


async def post(http: httpx.AsyncClient, params: dict[str, str]) -> httpx.Response:
    return await http.post("/", content=form(params), headers={"Content-Type": "application/x-www-form-urlencoded"})


async def test_send_returns_the_biz_id_and_the_fake_records_the_message(http, fake) -> None:
    result = await provider(http).send("+86 138-0013-8000", NOTICE, PARAMS, reference="out-42")
    assert len(fake.sent) == 1
    sent = fake.sent[0]
    assert result.provider_id == sent.provider_id and "^" in sent.provider_id
    assert (sent.phone, sent.template, sent.params, sent.sign_name, sent.reference) == (
        "13800138000", "SMS_100001", PARAMS, "燃气客服", "out-42")
    assert abs(sent.at - clock.utcnow()) < timedelta(seconds=5)


async def test_template_sign_name_override_is_sent(http, fake) -> None:
    await provider(http).send("13800138000", SmsTemplateRef("SMS_100001", ("name", "time"), sign_name="燃气抢修"),
                              PARAMS)
    assert fake.sent[0].sign_name == "燃气抢修"


async def test_wrong_secret_is_refused_and_not_retryable(http, fake) -> None:
    with pytest.raises(SendFailed) as failed:
        await provider(http, secret="not-the-secret").send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == ("provider_configuration", False)
    assert "SignatureDoesNotMatch" in failed.value.detail
    assert fake.rejected == ["SignatureDoesNotMatch"] and fake.sent == []


async def test_unknown_access_key_is_refused_and_not_retryable(http, fake) -> None:
    with pytest.raises(SendFailed) as failed:
        await provider(http, key_id="LTAI-someone-else").send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == ("provider_configuration", False)
    assert fake.rejected == ["InvalidAccessKeyId.NotFound"]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_outage_is_retryable_and_the_next_attempt_goes_through(http, fake, status) -> None:
    fake.fail_next(1, http_status=status)
    with pytest.raises(SendFailed) as failed:
        await provider(http).send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == ("provider_unavailable", True)
    result = await provider(http).send("13800138000", NOTICE, PARAMS)
    assert result.provider_id == fake.sent[0].provider_id


async def test_network_failure_is_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(SendFailed) as failed:
            await provider(client).send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == ("provider_unavailable", True)


async def test_a_number_that_cannot_take_sms_fails_before_any_request(http, fake) -> None:
    for bad in ("010-12345678", "1380013800", "+1 415 555 0100", "23800138000"):
        with pytest.raises(SendFailed) as failed:
            await provider(http).send(bad, NOTICE, PARAMS)
        assert (failed.value.reason, failed.value.retryable) == ("invalid_phone", False)
    assert fake.requests == 0


async def test_the_fake_refuses_an_illegal_number_as_aliyun_does(http, fake) -> None:
    """Signed correctly, but not a mainland mobile: isv.MOBILE_NUMBER_ILLEGAL in an HTTP 200 answer."""
    params = provider(http).build_params("12345", NOTICE, PARAMS)
    response = await post(http, params)
    assert response.status_code == 200
    assert response.json()["Code"] == "isv.MOBILE_NUMBER_ILLEGAL"
    assert fake.sent == []


@pytest.mark.parametrize(("code", "status", "reason", "retryable"), [
    ("isv.MOBILE_NUMBER_ILLEGAL", None, "invalid_phone", False),
    ("isv.TEMPLATE_MISSING_PARAMETERS", None, "template_params_rejected", False),
    ("isv.SMS_TEMPLATE_ILLEGAL", None, "template_rejected", False),
    ("isv.SMS_SIGNATURE_ILLEGAL", None, "sign_name_rejected", False),
    ("isv.BUSINESS_LIMIT_CONTROL", None, "rate_limited", True),
    ("isv.AMOUNT_NOT_ENOUGH", None, "provider_account", False),
    ("Throttling.User", 400, "rate_limited", True),
    ("isp.SYSTEM_ERROR", None, "provider_unavailable", True),
    ("isv.SOMETHING_NEW", None, "provider_rejected", False),
])
async def test_provider_codes_map_to_retryable_or_not(http, fake, code, status, reason, retryable) -> None:
    fake.fail_next(1, error_code=code, http_status=status)
    with pytest.raises(SendFailed) as failed:
        await provider(http).send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == (reason, retryable)
    assert code in failed.value.detail
    assert fake.sent == []


async def test_the_fakes_template_catalogue_refusals(http, fake) -> None:
    with pytest.raises(SendFailed) as unknown:
        await provider(http).send("13800138000", SmsTemplateRef("SMS_999999", ("name", "time")), PARAMS)
    assert (unknown.value.reason, unknown.value.retryable) == ("template_rejected", False)
    with pytest.raises(SendFailed) as missing:
        await provider(http).send("13800138000", SmsTemplateRef("SMS_100002", ("name", "time")), PARAMS)
    assert (missing.value.reason, missing.value.retryable) == ("template_params_rejected", False)
    with pytest.raises(SendFailed) as too_long:
        await provider(http).send("13800138000", NOTICE, {"name": "长" * 36, "time": "今天"})
    assert (too_long.value.reason, too_long.value.retryable) == ("template_params_rejected", False)
    with pytest.raises(SendFailed) as sign_name:
        await provider(http, sign_name="未报备签名").send("13800138000", NOTICE, PARAMS)
    assert (sign_name.value.reason, sign_name.value.retryable) == ("sign_name_rejected", False)
    assert fake.rejected == ["isv.SMS_TEMPLATE_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS", "isv.PARAM_LENGTH_LIMIT",
                             "isv.SMS_SIGNATURE_ILLEGAL"]
    assert fake.sent == []


async def test_missing_or_unknown_variables_fail_before_any_request(http, fake) -> None:
    for params in ({"name": "x"}, {**PARAMS, "extra": "y"}):
        with pytest.raises(SendFailed) as failed:
            await provider(http).send("13800138000", NOTICE, params)
        assert (failed.value.reason, failed.value.retryable) == ("template_params_mismatch", False)
    assert fake.requests == 0


async def test_a_replayed_nonce_is_refused(http, fake) -> None:
    params = provider(http).build_params("13800138000", NOTICE, PARAMS)
    first = await post(http, params)
    assert first.json()["Code"] == "OK"
    replay = await post(http, params)
    assert replay.status_code == 400
    assert replay.json()["Code"] == "SignatureNonceUsed"
    assert len(fake.sent) == 1


async def test_a_stale_or_future_timestamp_is_refused(http, fake) -> None:
    real_now = clock.utcnow()
    for offset in (timedelta(minutes=16), -timedelta(minutes=16)):
        fake.now = lambda offset=offset: real_now + offset
        with pytest.raises(SendFailed) as failed:
            await provider(http).send("13800138000", NOTICE, PARAMS)
        assert (failed.value.reason, failed.value.retryable) == ("clock_skew", False)
    assert fake.rejected == ["InvalidTimeStamp.Expired", "InvalidTimeStamp.Expired"]
    fake.now = lambda: real_now + timedelta(minutes=14)  # within Aliyun's 15 minutes
    await provider(http).send("13800138000", NOTICE, PARAMS)
    assert len(fake.sent) == 1


async def test_a_changed_parameter_breaks_the_signature(http, fake) -> None:
    params = provider(http).build_params("13800138000", NOTICE, PARAMS)
    params["PhoneNumbers"] = "13900139000"
    response = await post(http, params)
    assert response.status_code == 400
    assert response.json()["Code"] == "SignatureDoesNotMatch"
    assert fake.sent == []


async def test_the_signature_binds_the_method(http, fake) -> None:
    """The provider signs for POST: the same parameters sent as a GET query do not verify."""
    params = provider(http).build_params("13800138000", NOTICE, PARAMS)
    response = await http.get("/", params=params)
    assert response.json()["Code"] == "SignatureDoesNotMatch"
    params = provider(http).build_params("13800138000", NOTICE, PARAMS)
    params["Signature"] = sign("GET", params, SECRET)
    response = await http.get("/?" + form(params).decode())
    assert response.json()["Code"] == "OK"


async def test_the_fake_accepts_aliyuns_published_send_sms_request() -> None:
    """The documented, signed GET URL of the SMS signature example passes the fake's checks unchanged."""
    fake = FakeAliyunSms(now=lambda: datetime(2017, 7, 12, 2, 50, tzinfo=UTC))
    app = create_fake_aliyun_app(fake, "testId", "testSecret")
    url = ("http://dysmsapi.aliyuncs.com/?Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId"
           "&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou"
           "&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8"
           "&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
           "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
           "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        response = await client.get(url)
        assert response.json()["Code"] == "OK", response.json()
        sent = fake.sent[0]
        assert (sent.phone, sent.template, sent.params, sent.sign_name, sent.reference) == (
            "15300000001", "SMS_71390007", {"customer": "test"}, "阿里云短信测试专用", "123")
        # One character of the signature changed: refused.
        fake.reset()
        response = await client.get(url.replace("zJDF%2BL", "zJDF%2BM"))
        assert response.json()["Code"] == "SignatureDoesNotMatch"


async def test_missing_common_parameter_is_refused(http, fake) -> None:
    params = provider(http).build_params("13800138000", NOTICE, PARAMS)
    del params["SignatureNonce"]
    response = await post(http, params)
    assert response.status_code == 400 and response.json()["Code"] == "MissingSignatureNonce"


async def test_error_detail_carries_no_phone_number() -> None:
    """Aliyun's signature errors can quote the string to sign; what reaches staff is redacted."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"Code": "SignatureDoesNotMatch",
                                         "Message": "server string to sign is:POST&%2F&PhoneNumbers 13800138000"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(SendFailed) as failed:
            await provider(client).send("13800138000", NOTICE, PARAMS)
    assert "13800138000" not in failed.value.detail and "SignatureDoesNotMatch" in failed.value.detail


@pytest.mark.parametrize(("status", "body", "reason", "retryable"), [
    (404, b"<html>Not Found</html>", "provider_configuration", False),
    (429, b"slow down", "rate_limited", True),
    (200, b"<html>proxy login</html>", "provider_unavailable", True),
    (502, b"<html>Bad Gateway</html>", "provider_unavailable", True),
])
async def test_answers_without_aliyuns_json(status, body, reason, retryable) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body))) \
            as client:
        with pytest.raises(SendFailed) as failed:
            await provider(client).send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == (reason, retryable)
