"""The SMS channel's sender for the outbound queue: one ``Outgoing`` row → one templated SMS.

``send_sms`` is registered by ``gasdesk/worker.py`` (``register_sender("sms", send_sms)``). The outbound job
calls it outside any transaction (nothing waits on the network while holding a connection); the sender opens
its own short ``transaction()`` only to read the admin's ``NoticeTemplate`` for the message.

Which template: the row's ``template_key`` (else its purpose). An admin's ``NoticeTemplate`` row for
("sms", key) overrides the built-in one (``channels/sms/templates.DEFAULT_TEMPLATES``): its provider template
id, its variable mapping and body; a disabled row means "do not send this notice by SMS" (failed,
``notice_disabled``). A chat reply (``chat_reply`` with ``{"text": …}``) is fitted into ``chat_reply`` or
``chat_reply_long`` by ``templates.chat_reply_params`` (the rule is documented there: ≤ 35 characters in one
variable, else four pieces, at most 140 characters).

The provider is built from the settings once per settings object and event loop, with one
``httpx.AsyncClient`` (timeouts below) reused for every send. Tests send through an in-process fake with
``use_http_client(httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app)))`` and restore the network
with ``use_http_client(None)``.

Logs carry the outbound row id, the template key and the outcome only: never the number or the values.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from gasdesk.channels.sending import SendFailed, SendResult
from gasdesk.channels.sms.providers import SmsConfigurationError, SmsProvider, provider_from_settings
from gasdesk.channels.sms.templates import (
    CHAT_REPLY,
    SmsNotice,
    chat_reply_params,
    check_template_params,
    resolve_notice,
)
from gasdesk.config import Settings, get_settings
from gasdesk.db import transaction
from gasdesk.errors import InvalidInput
from gasdesk.outbound.service import Outgoing, notice_template_of

logger = logging.getLogger(__name__)

# Connecting may take 5 s, the provider's answer 10 s (the adapters pass their own total per request).
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass
class _Built:
    settings: Settings
    loop: asyncio.AbstractEventLoop
    http: httpx.AsyncClient | None  # the client this module opened (not a test's override)
    provider: SmsProvider


_built: _Built | None = None
_http_override: httpx.AsyncClient | None = None


def use_http_client(client: httpx.AsyncClient | None) -> None:
    """Send through ``client`` instead of the network (tests and the simulator bind it to a fake with
    ``httpx.ASGITransport``); ``None`` goes back to the network. The provider is rebuilt at the next send."""
    global _http_override, _built
    _http_override = client
    _built = None


def sms_provider() -> SmsProvider:
    """The configured provider, built once per settings object and event loop (``SmsConfigurationError`` when
    a real provider lacks a setting)."""
    global _built
    settings = get_settings()
    loop = asyncio.get_running_loop()
    if _built is not None and _built.settings is settings and _built.loop is loop:
        return _built.provider
    http = _http_override
    own = None
    if http is None and settings.sms_provider != "log":
        own = http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
    try:
        provider = provider_from_settings(settings, http=http)
    except SmsConfigurationError:
        if own is not None:
            loop.create_task(own.aclose())
        raise
    previous, _built = _built, _Built(settings=settings, loop=loop, http=own, provider=provider)
    if previous is not None and previous.http is not None and previous.loop is loop:
        loop.create_task(previous.http.aclose())  # the client of settings that changed
    return provider


async def notice_for(key: str) -> SmsNotice:
    """The template ``key`` as it is sent now (an admin's row over the built-in one)."""
    async with transaction() as session:
        row = await notice_template_of(session, "sms", key)
        override = None if row is None else (row.provider_template_id, dict(row.fields or {}), row.body, row.enabled)
    if override is None:
        return resolve_notice(key)
    template_id, fields, body, enabled = override
    return resolve_notice(key, provider_template_id=template_id, fields=fields, body=body, enabled=enabled)


async def send_sms(out: Outgoing) -> SendResult:
    """Send one outbound row by SMS; ``SendFailed`` says why not and whether a retry may succeed."""
    key = out.template_key or out.purpose
    params = {str(k): str(v) for k, v in (out.params or {}).items()}
    if key == CHAT_REPLY:
        key, params = chat_reply_params(params.get("text") or out.text or "")
    try:
        notice = await notice_for(key)
    except InvalidInput as exc:
        raise SendFailed("no_template", retryable=False, detail=f"no SMS template {key}") from exc
    if not notice.enabled:
        raise SendFailed("notice_disabled", retryable=False, detail=f"SMS template {key} is disabled")
    try:
        checked = check_template_params(notice.template, params)
    except InvalidInput as exc:
        raise SendFailed("invalid_params", retryable=False, detail=f"template {key}: {exc.code}") from exc
    try:
        provider = sms_provider()
    except SmsConfigurationError as exc:
        raise SendFailed("provider_configuration", retryable=False, detail="SMS provider settings incomplete") \
            from exc
    try:
        result = await provider.send(out.recipient, notice.ref, notice.provider_params(checked),
                                     reference=f"out-{out.id}")
    except SendFailed as failure:
        logger.info("sms outbound %s (template %s) not sent: %s, retryable=%s", out.id, key, failure.reason,
                    failure.retryable)
        raise
    logger.info("sms outbound %s sent with template %s via %s", out.id, key, provider.name)
    return result
