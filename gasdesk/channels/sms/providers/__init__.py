"""SMS provider adapters and the one function that picks the configured one.

``provider_from_settings`` lives here rather than in ``base.py`` so that ``base`` (imported by every
adapter) imports none of them: the package's import graph stays free of cycles.
"""

from __future__ import annotations

import httpx

from gasdesk.channels.sms.providers.aliyun import ALIYUN_DEFAULT_REGION, AliyunSmsProvider
from gasdesk.channels.sms.providers.base import (
    SmsConfigurationError,
    SmsProvider,
    SmsTemplateRef,
    check_mobile,
)
from gasdesk.channels.sms.providers.log import LogSmsProvider
from gasdesk.channels.sms.providers.tencent import TencentSmsProvider
from gasdesk.config import Settings

__all__ = ["AliyunSmsProvider", "LogSmsProvider", "SmsConfigurationError", "SmsProvider", "SmsTemplateRef",
           "TencentSmsProvider", "aliyun_region", "check_mobile", "provider_from_settings"]


def aliyun_region(configured: str) -> str:
    """Aliyun's ``RegionId`` from ``sms_region``. The setting's default (``ap-guangzhou``) is a Tencent region
    name; Aliyun's mainland regions are ``cn-*`` (its SMS API answers for ``cn-hangzhou`` whatever the
    caller's location), so anything else falls back to ``cn-hangzhou``."""
    return configured if configured.startswith("cn-") else ALIYUN_DEFAULT_REGION


def provider_from_settings(settings: Settings, http: httpx.AsyncClient | None = None) -> SmsProvider:
    """The provider ``GASDESK_SMS_PROVIDER`` names, built from the ``GASDESK_SMS_*`` settings.

    ``http`` is the client to send with (tests pass one bound to a fake through ``httpx.ASGITransport``); without
    it each send opens its own. A real provider with missing credentials raises ``SmsConfigurationError``.
    """
    if settings.sms_provider == "log":
        return LogSmsProvider()
    missing = [name for name, value in (("GASDESK_SMS_ACCESS_KEY_ID", settings.sms_access_key_id),
                                        ("GASDESK_SMS_ACCESS_KEY_SECRET", settings.sms_access_key_secret))
               if not value]
    if settings.sms_provider == "tencent" and not settings.sms_sdk_app_id:
        missing.append("GASDESK_SMS_SDK_APP_ID")
    if not settings.sms_sign_name:
        missing.append("GASDESK_SMS_SIGN_NAME")
    if missing:
        raise SmsConfigurationError(f"sms_provider={settings.sms_provider} needs {', '.join(missing)}")
    assert settings.sms_access_key_id and settings.sms_access_key_secret  # checked just above
    if settings.sms_provider == "aliyun":
        return AliyunSmsProvider(access_key_id=settings.sms_access_key_id,
                                 access_key_secret=settings.sms_access_key_secret,
                                 sign_name=settings.sms_sign_name, region_id=aliyun_region(settings.sms_region),
                                 endpoint=settings.sms_endpoint, http=http)
    assert settings.sms_sdk_app_id
    return TencentSmsProvider(secret_id=settings.sms_access_key_id, secret_key=settings.sms_access_key_secret,
                              sdk_app_id=settings.sms_sdk_app_id, sign_name=settings.sms_sign_name,
                              region=settings.sms_region, endpoint=settings.sms_endpoint, http=http)
