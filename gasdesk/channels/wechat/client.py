"""The official account's side of WeChat's API: access token, 客服消息 (text), template messages, the custom
menu and web OAuth (openid of a resident who opens one of our pages inside WeChat).

Sends return ``SendResult`` or raise ``SendFailed`` (``WeChatApiError``, which also carries WeChat's errcode)
as the outbound queue expects: a closed 48-hour window, an unsubscribed or unknown openid and anything WeChat
rejects for good are not retryable; WeChat's ``-1``, HTTP 5xx, time-outs and connection errors are. No token,
secret or URL with either ever reaches a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from gasdesk import clock
from gasdesk.channels.sending import SendFailed, SendResult

log = logging.getLogger(__name__)

# access_token invalid (40001), invalid (40014), expired (42001): refresh once and retry the call once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# Refresh this long before WeChat's expires_in runs out (WeChat keeps the old token valid 5 minutes after a
# new one is issued, so a process still holding the old one is not cut off).
TOKEN_MARGIN_S = 300
DEFAULT_TIMEOUT_S = 10.0
OAUTH_SCOPES = ("snsapi_base", "snsapi_userinfo")
_STATE = re.compile(r"[A-Za-z0-9]{0,128}")
_CODE = re.compile(r"[A-Za-z0-9_\-]{1,512}")

# errcode → (reason shown to staff, retryable)
_ERRCODES: dict[int, tuple[str, bool]] = {
    -1: ("provider_unavailable", True),  # 系统繁忙
    45015: ("outside_48h", False),  # 回复时间超过限制: the resident has not written within 48 hours
    43004: ("unsubscribed", False),  # 需要接收者关注
    40003: ("invalid_openid", False),
    45047: ("too_many_messages", True),  # 客服接口下行条数超过上限
    45009: ("api_quota", True),  # 接口调用超过限制 (daily quota)
    45011: ("api_quota", True),  # API 调用太频繁
    40029: ("invalid_code", False),  # OAuth: 不合法的 code
    40163: ("code_used", False),  # OAuth: code 已被使用
}


class WeChatApiError(SendFailed):
    """``SendFailed`` with WeChat's ``errcode`` (None for HTTP and network failures)."""

    def __init__(self, reason: str, *, retryable: bool, detail: str = "", errcode: int | None = None) -> None:
        super().__init__(reason, retryable=retryable, detail=detail)
        self.errcode = errcode


def failure_for(errcode: int, errmsg: str = "") -> WeChatApiError:
    """The ``SendFailed`` for one of WeChat's errcodes."""
    reason, retryable = _ERRCODES.get(errcode, (f"wechat_{errcode}", False))
    if errcode in TOKEN_ERRCODES:
        # Still refused after a fresh token: another process may have just replaced it; try again later.
        reason, retryable = "token_invalid", True
    return WeChatApiError(reason, retryable=retryable, detail=f"errcode {errcode}: {errmsg[:200]}".strip(),
                          errcode=errcode)


class TokenStore(Protocol):
    """Where the access token lives between calls. WeChat allows ~2,000 token fetches a day and each fetch
    invalidates the previous token 5 minutes later, so several processes must share one store (a DB row or
    Redis key); the in-memory default suits a single process. ``valid_until`` is epoch seconds after which
    the token must not be used (already shortened by the safety margin)."""

    async def get(self, key: str) -> tuple[str, float] | None: ...

    async def set(self, key: str, token: str, valid_until: float) -> None: ...


class MemoryTokenStore:
    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> tuple[str, float] | None:
        return self._tokens.get(key)

    async def set(self, key: str, token: str, valid_until: float) -> None:
        self._tokens[key] = (token, valid_until)


def _now() -> float:
    return clock.utcnow().timestamp()


class WeChatClient:
    """One official account's API client. ``http`` lets tests (and the simulator) route calls to the fake
    API (``httpx.AsyncClient(transport=httpx.ASGITransport(app=...))``); without it the client owns one."""

    def __init__(self, api_base: str, app_id: str, app_secret: str, *, http: httpx.AsyncClient | None = None,
                 token_store: TokenStore | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 now: Callable[[], float] = _now) -> None:
        if not app_id or not app_secret:
            raise ValueError("WeChat app id and app secret are required")
        self._base = api_base.rstrip("/")
        self._app_id = app_id
        self._secret = app_secret
        self._own_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout_s)
        self._timeout = timeout_s
        self._store: TokenStore = token_store if token_store is not None else MemoryTokenStore()
        self._now = now
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"WeChatClient(api_base={self._base!r}, app_id={self._app_id!r})"

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> WeChatClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    @property
    def _token_key(self) -> str:
        return f"wechat.access_token:{self._app_id}"

    # ------------------------------------------------------------ HTTP

    async def _request(self, method: str, path: str, *, params: dict[str, str],
                       body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One call; WeChat's answer as a dict, or ``WeChatApiError``. ``path`` is logged, never ``params``
        (they hold the token or the secret)."""
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"} if content is not None else None
        try:
            response = await self._http.request(method, self._base + path, params=params, content=content,
                                                headers=headers, timeout=self._timeout)
        except httpx.TransportError as exc:
            log.warning("wechat %s: %s", path, type(exc).__name__)
            raise WeChatApiError("provider_unavailable", retryable=True, detail=type(exc).__name__) from None
        if response.status_code != 200:
            log.warning("wechat %s: HTTP %s", path, response.status_code)
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
            reason = "provider_unavailable" if response.status_code >= 500 else f"http_{response.status_code}"
            raise WeChatApiError(reason, retryable=retryable, detail=f"HTTP {response.status_code}")
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            log.warning("wechat %s: answer is not a JSON object", path)
            raise WeChatApiError("provider_unavailable", retryable=True, detail="answer is not a JSON object")
        errcode = data.get("errcode", 0)
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            raise WeChatApiError("provider_unavailable", retryable=True, detail="errcode is not a number")
        if errcode != 0:
            errmsg = data.get("errmsg")
            raise failure_for(errcode, errmsg if isinstance(errmsg, str) else "")
        return data

    async def _access_token(self, *, stale: str | None = None) -> str:
        """A usable access token: the stored one unless it is expired or is ``stale`` (just refused)."""

        async def usable() -> str | None:
            cached = await self._store.get(self._token_key)
            if cached and cached[0] != stale and cached[1] > self._now():
                return cached[0]
            return None

        if token := await usable():
            return token
        async with self._lock:  # one fetch per process however many sends wait for it
            if token := await usable():
                return token
            try:
                data = await self._request("GET", "/cgi-bin/token", params={
                    "grant_type": "client_credential", "appid": self._app_id, "secret": self._secret})
            except WeChatApiError as exc:
                if exc.errcode is not None and exc.errcode != -1 and exc.errcode not in _ERRCODES:
                    # Wrong app id or secret, or this server's IP is not whitelisted: configuration.
                    raise WeChatApiError(f"wechat_{exc.errcode}", retryable=False, detail=exc.detail,
                                         errcode=exc.errcode) from None
                raise
            token, expires_in = data.get("access_token"), data.get("expires_in")
            if not isinstance(token, str) or not token or not isinstance(expires_in, int) or expires_in <= 0:
                raise WeChatApiError("provider_unavailable", retryable=True, detail="malformed token answer")
            margin = min(TOKEN_MARGIN_S, expires_in // 2)
            await self._store.set(self._token_key, token, self._now() + expires_in - margin)
            log.info("wechat access token refreshed")
            return token

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """An API call with the access token; on an invalid/expired token, refresh once and retry once."""
        token = await self._access_token()
        try:
            return await self._request(method, path, params={"access_token": token}, body=body)
        except WeChatApiError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
        token = await self._access_token(stale=token)
        return await self._request(method, path, params={"access_token": token}, body=body)

    # ------------------------------------------------------------ messages

    async def send_text(self, openid: str, text: str) -> SendResult:
        """A 客服消息 text to a resident who wrote within the last 48 hours."""
        if not openid or not text:
            raise WeChatApiError("empty_message", retryable=False, detail="openid and text are required")
        try:
            await self._call("POST", "/cgi-bin/message/custom/send",
                             {"touser": openid, "msgtype": "text", "text": {"content": text}})
        except WeChatApiError as exc:
            log.warning("wechat custom send failed: %s", exc.reason)
            raise
        return SendResult(provider_id=None)

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str | None = None,
                            *, client_msg_id: str | None = None) -> SendResult:
        """A template message (no 48-hour window). ``provider_id`` is WeChat's msgid, which comes back in
        the TEMPLATESENDJOBFINISH event. ``client_msg_id`` lets WeChat drop a resend of the same message."""
        if not openid or not template_id:
            raise WeChatApiError("empty_message", retryable=False, detail="openid and template_id are required")
        body: dict[str, Any] = {"touser": openid, "template_id": template_id,
                                "data": {key: {"value": value} for key, value in data.items()}}
        if url:
            body["url"] = url
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        try:
            answer = await self._call("POST", "/cgi-bin/message/template/send", body)
        except WeChatApiError as exc:
            log.warning("wechat template send failed: %s", exc.reason)
            raise
        msgid = answer.get("msgid")
        return SendResult(provider_id=None if msgid is None else str(msgid))

    # ------------------------------------------------------------ menu

    async def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the custom menu (``{"button": [...]}`` as WeChat documents it)."""
        await self._call("POST", "/cgi-bin/menu/create", menu)

    async def get_menu(self) -> dict[str, Any]:
        """The current custom menu as ``{"button": [...]}``; ``{"button": []}`` when none is set."""
        try:
            answer = await self._call("GET", "/cgi-bin/menu/get")
        except WeChatApiError as exc:
            if exc.errcode == 46003:  # menu no exist
                return {"button": []}
            raise
        menu = answer.get("menu")
        return menu if isinstance(menu, dict) else {"button": []}

    # ------------------------------------------------------------ web OAuth

    def oauth_authorize_url(self, redirect_uri: str, state: str, scope: str = "snsapi_base",
                            open_base: str = "https://open.weixin.qq.com") -> str:
        """Where to send a resident's WeChat browser to learn their openid; WeChat redirects to
        ``redirect_uri?code=…&state=…``. Parameters in WeChat's required order; ``state`` is up to 128
        letters and digits."""
        if scope not in OAUTH_SCOPES:
            raise ValueError(f"scope must be one of {OAUTH_SCOPES}")
        if not _STATE.fullmatch(state):
            raise ValueError("state must be at most 128 letters and digits")
        query = "&".join([f"appid={quote(self._app_id, safe='')}", f"redirect_uri={quote(redirect_uri, safe='')}",
                          "response_type=code", f"scope={scope}", f"state={state}"])
        return f"{open_base.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect"

    async def oauth_openid(self, code: str) -> tuple[str, str | None]:
        """(openid, unionid or None) for the ``code`` WeChat's OAuth redirect brought; a code works once."""
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise WeChatApiError("invalid_code", retryable=False, detail="malformed code")
        answer = await self._request("GET", "/sns/oauth2/access_token", params={
            "appid": self._app_id, "secret": self._secret, "code": code, "grant_type": "authorization_code"})
        openid, unionid = answer.get("openid"), answer.get("unionid")
        if not isinstance(openid, str) or not openid:
            raise WeChatApiError("provider_unavailable", retryable=True, detail="answer without openid")
        return openid, unionid if isinstance(unionid, str) and unionid else None


__all__ = ["MemoryTokenStore", "TokenStore", "WeChatApiError", "WeChatClient", "failure_for"]
