"""An in-process fake of WeChat's API (the calls ``client.WeChatClient`` makes), for tests and the
development simulator: mount ``create_fake_wechat_app(fake, app_id, app_secret)`` or route an
``httpx.AsyncClient`` to it with ``httpx.ASGITransport``.

It behaves as WeChat documents: ``/cgi-bin/token`` checks the app id and secret and issues tokens (a new
token leaves the previous ones valid for 5 more minutes); every other call checks its ``access_token``
(41001 missing, 40001 unknown or expired); bodies are checked field by field with WeChat's errcodes. What it
accepted is in ``FakeWeChat.sent``; the controls (``expire_tokens``, ``fail_next``, ``close_window``,
``unsubscribe``, ``code_for``) let a test or the simulator make it misbehave the way WeChat does.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gasdesk import clock

OLD_TOKEN_GRACE_S = 300
MAX_BODY_BYTES = 1024 * 1024
_OPENID = re.compile(r"[A-Za-z0-9_\-]{6,64}")
_BUTTON_TYPES = frozenset({"click", "view", "scancode_push", "scancode_waitmsg", "pic_sysphoto",
                           "pic_photo_or_album", "pic_weixin", "location_select", "media_id", "article_id",
                           "article_view_limited", "miniprogram"})
_KEYED_TYPES = frozenset({"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
                          "pic_weixin", "location_select"})


def _now() -> float:
    return clock.utcnow().timestamp()


class FakeWeChat:
    """The fake's state, shared by its ASGI app and the test or simulator driving it."""

    def __init__(self, *, token_ttl_s: int = 7200, now: Callable[[], float] = _now) -> None:
        self.token_ttl_s = token_ttl_s
        self.now = now
        self.tokens: dict[str, float] = {}  # access token → valid until (epoch seconds)
        self.sent: list[dict[str, Any]] = []
        self.requests: list[str] = []  # paths called, in order (no query strings: they hold tokens)
        self.menu: dict[str, Any] | None = None
        self.templates: set[str] | None = None  # None: any template id is accepted
        self._closed_windows: set[str] = set()
        self._unsubscribed: set[str] = set()
        self._codes: dict[str, tuple[str, str | None]] = {}
        self._used_codes: set[str] = set()
        self._failures: list[tuple[int, int | None, str | None]] = []  # (errcode, http_status, path)
        self._next_msgid = 200228332
        self._client_msg_ids: dict[str, int] = {}

    # ------------------------------------------------------------ controls

    @property
    def token_calls(self) -> int:
        return self.requests.count("/cgi-bin/token")

    def expire_tokens(self) -> None:
        """Every issued access token stops working (the next call with one gets 40001)."""
        for token in self.tokens:
            self.tokens[token] = float("-inf")

    def fail_next(self, n: int = 1, *, errcode: int = -1, http_status: int | None = None,
                  path: str | None = None) -> None:
        """The next ``n`` calls (to ``path`` only, when given) fail: with ``{"errcode": errcode}``, or with a
        bare HTTP ``http_status`` (e.g. 500) when given."""
        self._failures.extend([(errcode, http_status, path)] * n)

    def close_window(self, openid: str) -> None:
        """The resident has not written for 48 hours: 客服消息 to them get 45015."""
        self._closed_windows.add(openid)

    def open_window(self, openid: str) -> None:
        self._closed_windows.discard(openid)

    def unsubscribe(self, openid: str) -> None:
        """The resident unfollowed the account: every message to them gets 43004."""
        self._unsubscribed.add(openid)

    def subscribe(self, openid: str) -> None:
        self._unsubscribed.discard(openid)

    def code_for(self, openid: str, unionid: str | None = None) -> str:
        """An OAuth code WeChat would hand the resident's browser; it can be exchanged once."""
        code = secrets.token_hex(16)
        self._codes[code] = (openid, unionid)
        return code

    # ------------------------------------------------------------ behaviour

    def issue_token(self) -> str:
        now = self.now()
        for token, until in self.tokens.items():
            self.tokens[token] = min(until, now + OLD_TOKEN_GRACE_S)
        token = secrets.token_urlsafe(32)
        self.tokens[token] = now + self.token_ttl_s
        return token

    def token_errcode(self, token: str | None) -> int:
        if not token:
            return 41001  # access_token missing
        until = self.tokens.get(token)
        if until is None or until <= self.now():
            return 40001  # invalid credential, access_token is invalid or not latest
        return 0

    def take_failure(self, path: str) -> tuple[int, int | None] | None:
        for index, (errcode, http_status, only) in enumerate(self._failures):
            if only is None or only == path:
                del self._failures[index]
                return errcode, http_status
        return None

    def custom_send(self, body: dict[str, Any]) -> dict[str, Any]:
        openid = body.get("touser")
        if not isinstance(openid, str) or not _OPENID.fullmatch(openid):
            return _err(40003, "invalid openid")
        msgtype = body.get("msgtype")
        record: dict[str, Any] = {"kind": "custom", "openid": openid, "msgtype": msgtype}
        if msgtype == "text":
            text = body.get("text")
            content = text.get("content") if isinstance(text, dict) else None
            if not isinstance(content, str) or not content:
                return _err(44004, "empty content")
            record["text"] = content
        elif msgtype == "image":
            image = body.get("image")
            media_id = image.get("media_id") if isinstance(image, dict) else None
            if not isinstance(media_id, str) or not media_id:
                return _err(40007, "invalid media_id")
            record["media_id"] = media_id
        else:
            return _err(40008, "invalid message type")
        if openid in self._unsubscribed:
            return _err(43004, "require subscribe")
        if openid in self._closed_windows:
            return _err(45015, "response out of time limit or subscription is canceled")
        record["at"] = self.now()
        self.sent.append(record)
        return _ok()

    def template_send(self, body: dict[str, Any]) -> dict[str, Any]:
        openid = body.get("touser")
        if not isinstance(openid, str) or not _OPENID.fullmatch(openid):
            return _err(40003, "invalid openid")
        template_id = body.get("template_id")
        if not isinstance(template_id, str) or not template_id or (
                self.templates is not None and template_id not in self.templates):
            return _err(40037, "invalid template_id")
        data = body.get("data")
        if not isinstance(data, dict) or not data or not all(
                isinstance(key, str) and isinstance(item, dict) and isinstance(item.get("value"), str)
                for key, item in data.items()):
            return _err(47001, "data format error")
        url = body.get("url")
        if url is not None and not isinstance(url, str):
            return _err(47001, "data format error")
        if openid in self._unsubscribed:
            return _err(43004, "require subscribe")
        client_msg_id = body.get("client_msg_id")
        if isinstance(client_msg_id, str) and (openid + "\n" + client_msg_id) in self._client_msg_ids:
            return {**_ok(), "msgid": self._client_msg_ids[openid + "\n" + client_msg_id]}
        self._next_msgid += 1
        msgid = self._next_msgid
        if isinstance(client_msg_id, str):
            self._client_msg_ids[openid + "\n" + client_msg_id] = msgid
        self.sent.append({"kind": "template", "openid": openid, "template_id": template_id,
                          "data": {key: item["value"] for key, item in data.items()}, "url": url,
                          "msgid": msgid, "at": self.now()})
        return {**_ok(), "msgid": msgid}

    def create_menu(self, body: dict[str, Any]) -> dict[str, Any]:
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return _err(40016, "invalid button size")
        for button in buttons:
            if not isinstance(button, dict):
                return _err(40017, "invalid button type")
            name = button.get("name")
            if not isinstance(name, str) or not name or len(name.encode("utf-8")) > 16:
                return _err(40018, "invalid button name size")
            subs = button.get("sub_button")
            if isinstance(subs, list) and subs:
                if len(subs) > 5:
                    return _err(40023, "invalid sub button size")
                for sub in subs:
                    if not isinstance(sub, dict):
                        return _err(40024, "invalid sub button type")
                    sub_name = sub.get("name")
                    if not isinstance(sub_name, str) or not sub_name or len(sub_name.encode("utf-8")) > 60:
                        return _err(40025, "invalid sub button name size")
                    if (code := _button_errcode(sub, sub=True)) is not None:
                        return _err(code, "invalid sub button")
            elif (code := _button_errcode(button, sub=False)) is not None:
                return _err(code, "invalid button")
        self.menu = {"button": json.loads(json.dumps(buttons))}
        return _ok()

    def get_menu(self) -> dict[str, Any]:
        if self.menu is None:
            return _err(46003, "menu no exist")
        return {"menu": json.loads(json.dumps(self.menu))}

    def oauth_token(self, code: str | None) -> dict[str, Any]:
        if not code or code not in self._codes:
            return _err(40163 if code in self._used_codes else 40029,
                        "code been used" if code in self._used_codes else "invalid code")
        openid, unionid = self._codes.pop(code)
        self._used_codes.add(code)
        answer: dict[str, Any] = {"access_token": secrets.token_urlsafe(32), "expires_in": 7200,
                                  "refresh_token": secrets.token_urlsafe(32), "openid": openid,
                                  "scope": "snsapi_base"}
        if unionid:
            answer["unionid"] = unionid
        return answer


def _button_errcode(button: dict[str, Any], *, sub: bool) -> int | None:
    kind = button.get("type")
    if kind not in _BUTTON_TYPES:
        return 40024 if sub else 40017
    if kind in _KEYED_TYPES:
        key = button.get("key")
        if not isinstance(key, str) or not key or len(key.encode("utf-8")) > 128:
            return 40026 if sub else 40019
    if kind in ("view", "miniprogram"):
        url = button.get("url")
        if not isinstance(url, str) or not url or len(url.encode("utf-8")) > 1024:
            return 40027 if sub else 40020
    return None


def _ok() -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok"}


def _err(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(4)}"}


def create_fake_wechat_app(fake: FakeWeChat, app_id: str, app_secret: str) -> Starlette:
    """The fake as an ASGI app serving ``/cgi-bin/…`` and ``/sns/oauth2/access_token``."""

    async def failure_or_none(request: Request) -> Response | None:
        fake.requests.append(request.url.path)
        failure = fake.take_failure(request.url.path)
        if failure is None:
            return None
        errcode, http_status = failure
        if http_status is not None:
            return PlainTextResponse("upstream error", status_code=http_status)
        return JSONResponse(_err(errcode, "system error"))

    async def json_body(request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return PlainTextResponse("too large", status_code=413)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(_err(47001, "data format error"))
        return body if isinstance(body, dict) else JSONResponse(_err(47001, "data format error"))

    async def token(request: Request) -> Response:
        if (failed := await failure_or_none(request)) is not None:
            return failed
        query = request.query_params
        if query.get("grant_type") != "client_credential":
            return JSONResponse(_err(40002, "invalid grant_type"))
        if query.get("appid") != app_id:
            return JSONResponse(_err(40013, "invalid appid"))
        if not secrets.compare_digest(query.get("secret", "").encode(), app_secret.encode()):
            return JSONResponse(_err(40125, "invalid appsecret"))
        return JSONResponse({"access_token": fake.issue_token(), "expires_in": fake.token_ttl_s})

    def with_token(action: Callable[[dict[str, Any]], dict[str, Any]], *, reads_body: bool) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            if (failed := await failure_or_none(request)) is not None:
                return failed
            if errcode := fake.token_errcode(request.query_params.get("access_token")):
                return JSONResponse(_err(errcode, "invalid credential, access_token is invalid or not latest"))
            body: dict[str, Any] = {}
            if reads_body:
                parsed = await json_body(request)
                if isinstance(parsed, Response):
                    return parsed
                body = parsed
            return JSONResponse(action(body))

        return endpoint

    async def oauth(request: Request) -> Response:
        if (failed := await failure_or_none(request)) is not None:
            return failed
        query = request.query_params
        if query.get("appid") != app_id:
            return JSONResponse(_err(40013, "invalid appid"))
        if not secrets.compare_digest(query.get("secret", "").encode(), app_secret.encode()):
            return JSONResponse(_err(40125, "invalid appsecret"))
        if query.get("grant_type") != "authorization_code":
            return JSONResponse(_err(40002, "invalid grant_type"))
        return JSONResponse(fake.oauth_token(query.get("code")))

    return Starlette(routes=[
        Route("/cgi-bin/token", token, methods=["GET"]),
        Route("/cgi-bin/message/custom/send", with_token(fake.custom_send, reads_body=True), methods=["POST"]),
        Route("/cgi-bin/message/template/send", with_token(fake.template_send, reads_body=True),
              methods=["POST"]),
        Route("/cgi-bin/menu/create", with_token(fake.create_menu, reads_body=True), methods=["POST"]),
        Route("/cgi-bin/menu/get", with_token(lambda _body: fake.get_menu(), reads_body=False), methods=["GET"]),
        Route("/sns/oauth2/access_token", oauth, methods=["GET"]),
    ])
