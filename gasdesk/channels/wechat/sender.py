"""Sending the outbound queue's WeChat messages: 客服消息 for chat replies, template messages for notices.

The access token is kept in the database (``channel_state``, encrypted) so that every process of a
scale-out install shares one token: WeChat invalidates the previous token minutes after a new one is fetched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from gasdesk.channels.models import ChannelState
from gasdesk.channels.sending import SendFailed, SendResult
from gasdesk.channels.wechat.account import WeChatAccount, simulated_http, wechat_account
from gasdesk.channels.wechat.client import WeChatClient
from gasdesk.clock import utcnow
from gasdesk.db import transaction
from gasdesk.outbound.models import NoticeTemplate
from gasdesk.outbound.service import Outgoing


class DbTokenStore:
    """``TokenStore`` over the ``channel_state`` table (shared by all processes)."""

    async def get(self, key: str) -> tuple[str, float] | None:
        async with transaction() as session:
            row = await session.get(ChannelState, key)
            if row is None or not isinstance(row.value, dict) or "token" not in row.value:
                return None
            return str(row.value["token"]), float(row.value.get("valid_until", 0))

    async def set(self, key: str, token: str, valid_until: float) -> None:
        async with transaction() as session:
            row = await session.get(ChannelState, key)
            expires = datetime.fromtimestamp(valid_until, UTC) if valid_until > 0 else None
            if row is None:
                session.add(ChannelState(key=key, value={"token": token, "valid_until": valid_until},
                                         expires_at=expires, updated_at=utcnow()))
            else:
                row.value = {"token": token, "valid_until": valid_until}
                row.expires_at, row.updated_at = expires, utcnow()


_clients: dict[tuple[str, str, bool], WeChatClient] = {}
# Tests point the client at a fake WeChat API: ``use_http(httpx.AsyncClient(transport=ASGITransport(app)))``.
_http_override: httpx.AsyncClient | None = None


def use_http(http: httpx.AsyncClient | None) -> None:
    """Route the WeChat client's calls through ``http`` (a fake API in tests); None restores the default."""
    global _http_override
    _http_override = http
    _clients.clear()


def wechat_client(account: WeChatAccount) -> WeChatClient:
    """One client per account and process (its token lock and HTTP connection pool are shared)."""
    key = (account.api_base, account.app_id, _http_override is not None)
    if key not in _clients:
        http = _http_override or (simulated_http(account) if account.simulated else None)
        _clients[key] = WeChatClient(account.api_base, account.app_id, account.app_secret, http=http,
                                     token_store=DbTokenStore())
    return _clients[key]


async def _template_for(purpose: str) -> NoticeTemplate | None:
    async with transaction() as session:
        return await session.scalar(select(NoticeTemplate).where(
            NoticeTemplate.channel == "wechat", NoticeTemplate.purpose == purpose, NoticeTemplate.enabled.is_(True)))


def template_data(template: NoticeTemplate, params: dict[str, Any]) -> dict[str, str]:
    """WeChat template fields from our parameters (``fields`` maps template field → parameter name)."""
    return {field: str(params.get(str(name), "")) for field, name in (template.fields or {}).items()}


async def send_wechat(out: Outgoing) -> SendResult:
    """Send one queued WeChat message; ``SendFailed`` says whether a retry may help."""
    account = wechat_account()
    if account is None:
        raise SendFailed("wechat_off", retryable=False)
    client = wechat_client(account)
    if out.method == "custom":
        return await client.send_text(out.recipient, out.text or "")
    template = await _template_for(out.template_key or out.purpose)
    if template is None:
        raise SendFailed("no_template", retryable=False, detail=f"no WeChat template for {out.purpose}")
    url = out.params.get("url") if isinstance(out.params.get("url"), str) else None
    return await client.send_template(out.recipient, template.provider_template_id,
                                      template_data(template, out.params), url, client_msg_id=f"gasdesk-{out.id}")
