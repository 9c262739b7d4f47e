"""Which official account this server speaks for: the one configured, or — in development, with none
configured — the simulator's own account, whose API is the in-process fake (nothing leaves the machine)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import cache

import httpx

from gasdesk.channels.wechat.fake_api import FakeWeChat, create_fake_wechat_app
from gasdesk.config import get_settings
from gasdesk.errors import NotFound

SIMULATED_APP_ID = "wxgasdesksimulator"
SIMULATED_API_BASE = "http://wechat-fake.invalid"


@dataclass(frozen=True)
class WeChatAccount:
    app_id: str
    app_secret: str
    token: str
    aes_key: str | None
    api_base: str
    simulated: bool


def _derived(label: str) -> bytes:
    # The simulated account's secrets derive from this install's secret key: not published, stable per install.
    key = (get_settings().secret_key or "").encode()
    return hmac.new(key, b"gasdesk wechat simulator " + label.encode(), hashlib.sha256).digest()


def wechat_account() -> WeChatAccount | None:
    """The configured account; the simulator's when none is configured and the simulator is on; else None."""
    settings = get_settings()
    if settings.wechat_enabled:
        assert settings.wechat_app_id and settings.wechat_token
        return WeChatAccount(settings.wechat_app_id, settings.wechat_app_secret or "", settings.wechat_token,
                             settings.wechat_aes_key, settings.wechat_api_base, simulated=False)
    if settings.simulator_enabled:
        return WeChatAccount(SIMULATED_APP_ID, _derived("secret").hex(), _derived("token").hex()[:32],
                             base64.b64encode(_derived("aes")).decode().rstrip("="), SIMULATED_API_BASE,
                             simulated=True)
    return None


def require_wechat_account() -> WeChatAccount:
    """The account, or NotFound (``wechat_off``) when the channel is off."""
    account = wechat_account()
    if account is None:
        raise NotFound("未启用微信公众号渠道", code="wechat_off")
    return account


@cache
def simulated_wechat() -> FakeWeChat:
    """The simulator's fake WeChat API state (what it "sent" to residents), one per process."""
    return FakeWeChat()


def simulated_http(account: WeChatAccount) -> httpx.AsyncClient:
    """An HTTP client whose requests go to the in-process fake instead of the network."""
    app = create_fake_wechat_app(simulated_wechat(), account.app_id, account.app_secret)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=10.0)
