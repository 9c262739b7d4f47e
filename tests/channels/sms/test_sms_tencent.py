"""The Tencent Cloud adapter against the in-process Tencent fake (httpx.ASGITransport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gasdesk import clock
from gasdesk.channels.sending import SendFailed
from gasdesk.channels.sms.fake_tencent import FakeTencentSms, create_fake_tencent_app
from gasdesk.channels.sms.providers import tencent
from gasdesk.channels.sms.providers.base import SmsTemplateRef
from gasdesk.channels.sms.providers.tencent import TencentSmsProvider

pytestmark = pytest.mark.no_database

SECRET_ID, SECRET_KEY = "AKID-test-0123456789", "test-secret-key-0123456789"
APP_ID = "1400123456"
ENDPOINT = "https://sms.tencentcloudapi.com/"
NOTICE = SmsTemplateRef("1001", ("name", "time"))
PARAMS = {"name": "燃气表检定", "time": "5月3日上午"}


@pytest.fixture
def fake() -> FakeTencentSms:
    return FakeTencentSms(sdk_app_id=APP_ID, templates={"1001": 2, "1002": 3}, sign_names={"燃气客服"})


@pytest.fixture
async def http(fake: FakeTencentSms) -> AsyncIterator[httpx.AsyncClient]:
    app = create_fake_tencent_app(fake, SECRET_ID, SECRET_KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


def provider(http: httpx.AsyncClient, *, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY,
             app_id: str = APP_ID) -> TencentSmsProvider:
    return TencentSmsProvider(secret_id=secret_id, secret_key=secret_key, sdk_app_id=app_id, sign_name="燃气客服",
                              endpoint=ENDPOINT, http=http)


async def test_send_returns_the_serial_no_and_the_fake_records_the_message(http, fake) -> None:
    result = await provider(http).send("8613800138000", NOTICE, PARAMS, reference="out-7")
    assert len(fake.sent) == 1
    sent = fake.sent[0]
    assert result.provider_id == sent.provider_id and ":" in sent.provider_id
    # Tencent's parameters are positional: the template's order, whatever the dict's.
    assert (sent.phone, sent.template, sent.params, sent.sign_name, sent.reference) == (
        "13800138000", "1001", ["燃气表检定", "5月3日上午"], "燃气客服", "out-7")
    assert abs(sent.at - clock.utcnow()) < timedelta(seconds=5)


async def test_a_custom_endpoint_with_a_port_is_signed_with_its_host(fake) -> None:
    """sms_endpoint (the simulator, tests) changes the Host header, which is signed."""
    app = create_fake_tencent_app(fake, SECRET_ID, SECRET_KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        sms = TencentSmsProvider(secret_id=SECRET_ID, secret_key=SECRET_KEY, sdk_app_id=APP_ID, sign_name="燃气客服",
                                 endpoint="http://127.0.0.1:8765/", http=client)
        await sms.send("13800138000", NOTICE, PARAMS)
    assert len(fake.sent) == 1


async def test_wrong_secret_key_is_refused_and_not_retryable(http, fake) -> None:
    with pytest.raises(SendFailed) as failed:
        await provider(http, secret_key="wrong").send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == ("provider_configuration", False)
    assert "AuthFailure.SignatureFailure" in failed.value.detail
    assert fake.rejected == ["AuthFailure.SignatureFailure"] and fake.sent == []


async def test_unknown_secret_id_is_refused_and_not_retryable(http, fake) -> None:
    with pytest.raises(SendFailed) as failed:
        await provider(http, secret_id="AKID-other").send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == ("provider_configuration", False)
    assert fake.rejected == ["AuthFailure.SecretIdNotFound"]


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_outage_is_retryable_and_the_next_attempt_goes_through(http, fake, status) -> None:
    fake.fail_next(1, http_status=status)
    with pytest.raises(SendFailed) as failed:
        await provider(http).send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == ("provider_unavailable", True)
    await provider(http).send("13800138000", NOTICE, PARAMS)
    assert len(fake.sent) == 1


async def test_network_failure_is_retryable() -> None:
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(time_out)) as client:
        with pytest.raises(SendFailed) as failed:
            await provider(client).send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == ("provider_unavailable", True)


async def test_illegal_number_fails_before_any_request(http, fake) -> None:
    for bad in ("12345", "+1 415 555 0100", "0755-12345678"):
        with pytest.raises(SendFailed) as failed:
            await provider(http).send(bad, NOTICE, PARAMS)
        assert (failed.value.reason, failed.value.retryable) == ("invalid_phone", False)
    assert fake.requests == 0


async def test_the_fake_refuses_an_illegal_number_per_number_as_tencent_does(http, fake) -> None:
    """Signed correctly, one good and one bad number: the bad one gets its own SendStatus code."""
    body = (b'{"PhoneNumberSet":["+8613800138000","+8612345"],"SmsSdkAppId":"1400123456","SignName":"\xe7\x87\x83'
            b'\xe6\xb0\x94\xe5\xae\xa2\xe6\x9c\x8d","TemplateId":"1001","TemplateParamSet":["a","b"]}')
    timestamp = int(clock.utcnow().timestamp())
    headers = {"Content-Type": tencent.CONTENT_TYPE, "X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11",
               "X-TC-Timestamp": str(timestamp), "X-TC-Region": "ap-guangzhou",
               "Authorization": tencent.authorization(SECRET_ID, SECRET_KEY, timestamp=timestamp, service="sms",
                                                      host="sms.tencentcloudapi.com", payload=body)}
    response = await http.post(ENDPOINT, content=body, headers=headers)
    statuses = response.json()["Response"]["SendStatusSet"]
    assert [s["Code"] for s in statuses] == ["Ok", "InvalidParameterValue.IncorrectPhoneNumber"]
    assert [s.phone for s in fake.sent] == ["13800138000"]


@pytest.mark.parametrize(("code", "per_number", "reason", "retryable"), [
    ("InvalidParameterValue.IncorrectPhoneNumber", True, "invalid_phone", False),
    ("LimitExceeded.PhoneNumberDailyLimit", True, "rate_limited", True),
    ("LimitExceeded.PhoneNumberThirtySecondLimit", True, "rate_limited", True),
    ("FailedOperation.PhoneNumberInBlacklist", True, "number_blocked", False),
    ("FailedOperation.InsufficientBalanceInSmsPackage", True, "provider_account", False),
    ("RequestLimitExceeded", False, "rate_limited", True),
    ("InternalError.Timeout", False, "provider_unavailable", True),
    ("AuthFailure.UnauthorizedOperation", False, "provider_configuration", False),
    ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", False, "provider_configuration", False),
    ("FailedOperation.SomethingNew", False, "provider_rejected", False),
])
async def test_provider_codes_map_to_retryable_or_not(http, fake, code, per_number, reason, retryable) -> None:
    fake.fail_next(1, error_code=code, per_number=per_number)
    with pytest.raises(SendFailed) as failed:
        await provider(http).send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == (reason, retryable)
    assert code in failed.value.detail
    assert fake.sent == []


async def test_the_fakes_console_refusals(http, fake) -> None:
    with pytest.raises(SendFailed) as unknown:
        await provider(http).send("13800138000", SmsTemplateRef("9999", ("name", "time")), PARAMS)
    assert (unknown.value.reason, unknown.value.retryable) == ("template_rejected", False)
    with pytest.raises(SendFailed) as count:
        await provider(http).send("13800138000", SmsTemplateRef("1002", ("name", "time")), PARAMS)
    assert (count.value.reason, count.value.retryable) == ("template_params_rejected", False)
    with pytest.raises(SendFailed) as app:
        await provider(http, app_id="1400999999").send("13800138000", NOTICE, PARAMS)
    assert (app.value.reason, app.value.retryable) == ("provider_configuration", False)
    assert fake.sent == []


async def test_a_stale_or_future_timestamp_is_refused(http, fake) -> None:
    real_now = clock.utcnow()
    for offset in (timedelta(minutes=6), -timedelta(minutes=6)):
        fake.now = lambda offset=offset: real_now + offset
        with pytest.raises(SendFailed) as failed:
            await provider(http).send("13800138000", NOTICE, PARAMS)
        assert (failed.value.reason, failed.value.retryable) == ("clock_skew", False)
    assert fake.rejected == ["AuthFailure.SignatureExpire"] * 2
    fake.now = lambda: real_now + timedelta(minutes=4)  # within Tencent's 5 minutes
    await provider(http).send("13800138000", NOTICE, PARAMS)
    assert len(fake.sent) == 1


async def test_a_changed_body_or_header_breaks_the_signature(http, fake) -> None:
    sms = provider(http)
    body, headers = sms.build_request("13800138000", NOTICE, PARAMS)
    tampered = body.replace(b"13800138000", b"13900139000")
    response = await http.post(ENDPOINT, content=tampered, headers=headers)
    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    # The host is signed: the same request sent to another host does not verify.
    response = await http.post("https://sms.other.example/", content=body, headers={**headers, "Host": "other"})
    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    # A credential scope whose date is not the timestamp's UTC day.
    bad_scope = headers["Authorization"].replace(tencent.utc_date(int(headers["X-TC-Timestamp"])), "2001-01-01")
    response = await http.post(ENDPOINT, content=body, headers={**headers, "Authorization": bad_scope})
    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    response = await http.post(ENDPOINT, content=body, headers={**headers, "Authorization": "TC3-HMAC-SHA256 nonsense"})
    assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    assert fake.sent == []
    response = await http.post(ENDPOINT, content=body, headers=headers)
    assert response.json()["Response"]["SendStatusSet"][0]["Code"] == "Ok"


async def test_the_fake_verifies_tencents_published_example() -> None:
    """The documented request (CVM DescribeInstances, 1551113065) passes the fake's signature check; being no
    SendSms call for the sms service, it is refused after it — and one changed byte fails the signature."""
    fake = FakeTencentSms(now=lambda: datetime.fromtimestamp(1551113065 + 30, UTC))
    app = create_fake_tencent_app(fake, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******", "Gu5t9xGARNpq86cd98joQYCN3*******")
    body = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    headers = {
        "Authorization": "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
                         "SignedHeaders=content-type;host, "
                         "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
        "Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com",
        "X-TC-Action": "DescribeInstances", "X-TC-Timestamp": "1551113065", "X-TC-Version": "2017-03-12",
        "X-TC-Region": "ap-guangzhou",
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        response = await client.post("https://cvm.tencentcloudapi.com/", content=body, headers=headers)
        assert fake.rejected == ["AuthFailure.InvalidAuthorization"]  # the service is cvm, not sms
        response = await client.post("https://cvm.tencentcloudapi.com/", content=body.replace(b"1,", b"2,"),
                                     headers=headers)
        assert response.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert fake.sent == []


@pytest.mark.parametrize(("status", "body", "reason", "retryable"), [
    (404, b"<html>Not Found</html>", "provider_configuration", False),
    (429, b"slow down", "rate_limited", True),
    (200, b'{"Response": {"RequestId": "x"}}', "provider_unavailable", True),
    (200, b"<html>proxy login</html>", "provider_unavailable", True),
    (503, b"", "provider_unavailable", True),
])
async def test_answers_without_tencents_json(status, body, reason, retryable) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body))) \
            as client:
        with pytest.raises(SendFailed) as failed:
            await provider(client).send("13800138000", NOTICE, PARAMS)
    assert (failed.value.reason, failed.value.retryable) == (reason, retryable)
