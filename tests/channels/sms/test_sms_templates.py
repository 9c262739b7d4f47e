"""Templates and their variable checks, the log provider and picking the provider from the settings."""

from __future__ import annotations

import logging

import httpx
import pytest

from gasdesk.channels.sending import SendFailed
from gasdesk.channels.sms.fake_aliyun import FakeAliyunSms, create_fake_aliyun_app
from gasdesk.channels.sms.fake_tencent import FakeTencentSms, create_fake_tencent_app
from gasdesk.channels.sms.providers import (
    AliyunSmsProvider,
    LogSmsProvider,
    SmsConfigurationError,
    SmsProvider,
    TencentSmsProvider,
    check_mobile,
    provider_from_settings,
)
from gasdesk.channels.sms.templates import (
    DEFAULT_TEMPLATES,
    SmsTemplate,
    check_template_params,
    get_template,
    render_preview,
)
from gasdesk.config import Settings
from gasdesk.errors import InvalidInput

pytestmark = pytest.mark.no_database

GUIDANCE = DEFAULT_TEMPLATES["guidance"]
PROGRESS = DEFAULT_TEMPLATES["ticket_progress"]


def test_catalogue_has_the_seed_notices() -> None:
    assert set(DEFAULT_TEMPLATES) == {"appointment_confirmed", "appointment_reminder", "ticket_progress",
                                      "followup_invite", "outage_notice", "heating_notice", "outage_restored",
                                      "guidance", "chat_reply",
                                      "chat_reply_long", "chat_reply_waiting", "opt_out_confirmed",
                                      "opt_in_confirmed", "emergency_alert"}
    codes = [t.provider_code for t in DEFAULT_TEMPLATES.values()]
    assert len(set(codes)) == len(codes) and all(code.startswith("SMS_") for code in codes)
    assert "回复数字1-5" in DEFAULT_TEMPLATES["followup_invite"].body
    assert GUIDANCE.link_variables == ("link",)


def test_a_template_whose_body_and_variables_disagree_is_refused() -> None:
    with pytest.raises(ValueError, match="placeholders"):
        SmsTemplate(key="x", provider_code="SMS_1", body="您好{name}，{time}", variables=("name",))
    with pytest.raises(ValueError, match="link variables"):
        SmsTemplate(key="x", provider_code="SMS_1", body="{name}", variables=("name",), link_variables=("url",))


def test_render_preview() -> None:
    params = {"ticket_no": "T20240503001", "status": "已派单", "hotline": "96777"}
    assert render_preview(PROGRESS, params) == "您的工单T20240503001当前进度：已派单。如有疑问请致电96777。"
    assert render_preview(PROGRESS, params, sign_name="燃气客服").startswith("【燃气客服】您的工单")
    assert render_preview(PROGRESS, {"status": "已派单"}) == "您的工单{ticket_no}当前进度：已派单。如有疑问请致电{hotline}。"


def test_check_template_params_accepts_good_values() -> None:
    params = {"service": "开户", "link": "https://gas.example.cn/m/1", "hotline": "96777"}
    assert check_template_params(GUIDANCE, params) == params


@pytest.mark.parametrize(("params", "fragment"), [
    ({"ticket_no": "T1", "status": "已派单"}, "缺少变量：hotline"),
    ({"ticket_no": "T1", "status": "已派单", "hotline": "96777", "name": "张三"}, "没有变量：name"),
    ({"ticket_no": "T1", "status": "  ", "hotline": "96777"}, "status 不能为空"),
    ({"ticket_no": "T1", "status": "处" * 36, "hotline": "96777"}, "status 过长（最多 35 个字）"),
    ({"ticket_no": "T1", "status": "已派单\n请回电", "hotline": "96777"}, "status 不能包含换行"),
    ({"ticket_no": "T1", "status": "见 https://x.cn", "hotline": "96777"}, "status 不能包含链接"),
    ({"ticket_no": "T1", "status": "见www.x.cn", "hotline": "96777"}, "status 不能包含链接"),
])
def test_check_template_params_refusals(params, fragment) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_template_params(PROGRESS, params)
    assert fragment in refused.value.message and refused.value.code == "invalid_sms_params"


def test_35_characters_is_the_limit() -> None:
    check_template_params(PROGRESS, {"ticket_no": "T1", "status": "处" * 35, "hotline": "96777"})


def test_links_only_in_link_variables() -> None:
    with pytest.raises(InvalidInput, match="service 不能包含链接"):
        check_template_params(GUIDANCE, {"service": "http://evil.example", "link": "https://a.cn", "hotline": "1"})


def test_unknown_template_key() -> None:
    assert get_template("guidance") is GUIDANCE
    with pytest.raises(InvalidInput):
        get_template("nope")


def test_check_mobile() -> None:
    assert check_mobile("１３８ ００１３ ８０００") == "13800138000"
    assert check_mobile("+86 138-0013-8000") == "13800138000"
    assert check_mobile("008613800138000") == "13800138000"
    for bad in ("010-88888888", "+1 415 555 0100", "12800138000", "", "138001380001"):
        with pytest.raises(InvalidInput):
            check_mobile(bad)


async def test_log_provider_sends_nothing_and_logs_no_number(caplog) -> None:
    provider = LogSmsProvider()
    caplog.set_level(logging.INFO, logger="gasdesk.channels.sms.providers.log")
    first = await provider.send("13800138000", PROGRESS.ref, {"ticket_no": "T1", "status": "已派单", "hotline": "96777"})
    second = await provider.send("13800138000", PROGRESS.ref, {"ticket_no": "T1", "status": "已派单", "hotline": "96777"})
    assert first.provider_id and first.provider_id.startswith("log-") and first.provider_id != second.provider_id
    assert PROGRESS.provider_code in caplog.text and "13800138000" not in caplog.text
    with pytest.raises(SendFailed) as failed:
        await provider.send("12345", PROGRESS.ref, {})
    assert (failed.value.reason, failed.value.retryable) == ("invalid_phone", False)
    with pytest.raises(SendFailed) as mismatch:
        await provider.send("13800138000", PROGRESS.ref, {"ticket_no": "T1"})
    assert mismatch.value.reason == "template_params_mismatch"


def test_provider_from_settings_default_is_log() -> None:
    provider = provider_from_settings(Settings())
    assert isinstance(provider, LogSmsProvider) and isinstance(provider, SmsProvider)


@pytest.mark.parametrize(("values", "missing"), [
    ({"sms_provider": "aliyun"}, "GASDESK_SMS_ACCESS_KEY_ID, GASDESK_SMS_ACCESS_KEY_SECRET"),
    ({"sms_provider": "tencent", "sms_access_key_id": "a", "sms_access_key_secret": "b"}, "GASDESK_SMS_SDK_APP_ID"),
])
def test_provider_from_settings_names_what_is_missing(values, missing) -> None:
    with pytest.raises(SmsConfigurationError, match=missing):
        provider_from_settings(Settings(**values))


async def test_provider_from_settings_builds_aliyun_against_the_fake() -> None:
    fake = FakeAliyunSms()
    settings = Settings(sms_provider="aliyun", sms_access_key_id="LTAI-k", sms_access_key_secret="s",
                        sms_sign_name="燃气客服", sms_endpoint="http://aliyun.fake/")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_aliyun_app(fake, "LTAI-k", "s"))) as http:
        provider = provider_from_settings(settings, http)
        assert isinstance(provider, AliyunSmsProvider) and provider.name == "aliyun"
        # ap-guangzhou (the default, a Tencent region name) is no Aliyun region.
        assert provider.region_id == "cn-hangzhou"
        result = await provider.send("13800138000", PROGRESS.ref, {"ticket_no": "T1", "status": "已派单", "hotline": "96777"})
    assert result.provider_id == fake.sent[0].provider_id
    assert fake.sent[0].params == {"ticket_no": "T1", "status": "已派单", "hotline": "96777"}


async def test_provider_from_settings_builds_tencent_against_the_fake() -> None:
    fake = FakeTencentSms(sdk_app_id="1400000001")
    settings = Settings(sms_provider="tencent", sms_access_key_id="AKID-k", sms_access_key_secret="s",
                        sms_sdk_app_id="1400000001", sms_endpoint="http://tencent.fake/")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_tencent_app(fake, "AKID-k", "s"))) as http:
        provider = provider_from_settings(settings, http)
        assert isinstance(provider, TencentSmsProvider) and provider.region == "ap-guangzhou"
        result = await provider.send("13800138000", PROGRESS.ref, {"ticket_no": "T1", "status": "已派单", "hotline": "96777"})
    assert result.provider_id == fake.sent[0].provider_id
    assert fake.sent[0].params == ["T1", "已派单", "96777"]
