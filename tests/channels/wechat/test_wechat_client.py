"""The API client against the in-process fake of WeChat's API (httpx.ASGITransport), and the fake itself."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from gasdesk.channels.sending import SendFailed, SendResult
from gasdesk.channels.wechat.client import MemoryTokenStore, WeChatApiError, WeChatClient
from gasdesk.channels.wechat.fake_api import FakeWeChat, create_fake_wechat_app

pytestmark = pytest.mark.no_database

BASE = "https://api.weixin.qq.com"
APP_ID = "wx2c2769f8efd9abc2"
SECRET = "s3cr3t-app-secret-0123456789abcdef"
OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
OTHER = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def now() -> Clock:
    return Clock()


@pytest.fixture
def fake(now: Clock) -> FakeWeChat:
    return FakeWeChat(now=now)


@pytest.fixture
async def http(fake: FakeWeChat) -> AsyncIterator[httpx.AsyncClient]:
    app = create_fake_wechat_app(fake, APP_ID, SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


@pytest.fixture
def client(http: httpx.AsyncClient, now: Clock) -> WeChatClient:
    return WeChatClient(BASE, APP_ID, SECRET, http=http, now=now)


# ---------------------------------------------------------------- access token


async def test_one_token_serves_many_sends(client: WeChatClient, fake: FakeWeChat) -> None:
    for text in ("您好", "请稍候", "已转人工"):
        assert await client.send_text(OPENID, text) == SendResult(provider_id=None)
    assert fake.token_calls == 1
    assert [(s["kind"], s["openid"], s["text"]) for s in fake.sent] == [
        ("custom", OPENID, "您好"), ("custom", OPENID, "请稍候"), ("custom", OPENID, "已转人工")]


class SlowTransport(httpx.AsyncBaseTransport):
    """The fake behind a network that takes a moment, so that concurrent calls really interleave (the ASGI
    transport alone never yields to the event loop)."""

    def __init__(self, app) -> None:
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return await self._inner.handle_async_request(request)


async def test_concurrent_sends_fetch_one_token(fake: FakeWeChat, now: Clock) -> None:
    transport = SlowTransport(create_fake_wechat_app(fake, APP_ID, SECRET))
    async with httpx.AsyncClient(transport=transport) as http:
        client = WeChatClient(BASE, APP_ID, SECRET, http=http, now=now)
        await asyncio.gather(*(client.send_text(OPENID, f"消息{i}") for i in range(8)))
    assert fake.token_calls == 1 and len(fake.sent) == 8


async def test_processes_sharing_a_store_share_the_token(http: httpx.AsyncClient, fake: FakeWeChat,
                                                         now: Clock) -> None:
    store = MemoryTokenStore()
    first = WeChatClient(BASE, APP_ID, SECRET, http=http, token_store=store, now=now)
    second = WeChatClient(BASE, APP_ID, SECRET, http=http, token_store=store, now=now)
    await first.send_text(OPENID, "a")
    await second.send_text(OPENID, "b")
    assert fake.token_calls == 1


async def test_the_token_is_refreshed_shortly_before_it_expires(client: WeChatClient, fake: FakeWeChat,
                                                                now: Clock) -> None:
    await client.send_text(OPENID, "a")
    now.t += 7200 - 301  # still more than the 5-minute margin left
    await client.send_text(OPENID, "b")
    assert fake.token_calls == 1
    now.t += 2  # inside the margin: fetch a new one before WeChat would refuse the old
    await client.send_text(OPENID, "c")
    assert fake.token_calls == 2 and len(fake.sent) == 3


async def test_a_refused_token_is_refreshed_once_and_the_call_retried(client: WeChatClient,
                                                                      fake: FakeWeChat) -> None:
    await client.send_text(OPENID, "a")
    fake.expire_tokens()
    await client.send_text(OPENID, "b")
    assert fake.token_calls == 2
    assert [s["text"] for s in fake.sent] == ["a", "b"]  # sent once, not twice
    assert fake.requests.count("/cgi-bin/message/custom/send") == 3  # a, b refused, b retried


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_each_token_errcode_triggers_the_refresh(client: WeChatClient, fake: FakeWeChat, errcode: int) -> None:
    await client.send_text(OPENID, "a")
    fake.fail_next(1, errcode=errcode, path="/cgi-bin/message/custom/send")
    await client.send_text(OPENID, "b")
    assert fake.token_calls == 2 and len(fake.sent) == 2


async def test_a_token_refused_again_after_refresh_is_retryable_not_a_loop(client: WeChatClient,
                                                                           fake: FakeWeChat) -> None:
    fake.fail_next(5, errcode=40001, path="/cgi-bin/message/custom/send")
    with pytest.raises(SendFailed) as caught:
        await client.send_text(OPENID, "a")
    assert (caught.value.reason, caught.value.retryable) == ("token_invalid", True)
    assert fake.token_calls == 2 and fake.requests.count("/cgi-bin/message/custom/send") == 2


async def test_a_wrong_secret_is_a_configuration_error(http: httpx.AsyncClient, fake: FakeWeChat) -> None:
    client = WeChatClient(BASE, APP_ID, "wrong-secret", http=http)
    with pytest.raises(WeChatApiError) as caught:
        await client.send_text(OPENID, "a")
    assert (caught.value.reason, caught.value.retryable, caught.value.errcode) == ("wechat_40125", False, 40125)
    assert fake.sent == []


# ---------------------------------------------------------------- 客服消息 and its failures


async def test_chinese_text_travels_as_utf8_not_escapes(fake: FakeWeChat, now: Clock) -> None:
    bodies: list[bytes] = []

    async def keep(request: httpx.Request) -> None:
        bodies.append(request.content)

    app = create_fake_wechat_app(fake, APP_ID, SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), event_hooks={"request": [keep]}) as http:
        await WeChatClient(BASE, APP_ID, SECRET, http=http, now=now).send_text(OPENID, "燃气报修")
    assert "燃气报修".encode() in bodies[-1] and b"\\u" not in bodies[-1]


async def test_outside_the_48_hour_window(client: WeChatClient, fake: FakeWeChat) -> None:
    fake.close_window(OPENID)
    with pytest.raises(SendFailed) as caught:
        await client.send_text(OPENID, "您好")
    assert (caught.value.reason, caught.value.retryable) == ("outside_48h", False)
    assert isinstance(caught.value, WeChatApiError) and caught.value.errcode == 45015
    assert fake.sent == []
    await client.send_text(OTHER, "others are unaffected")
    # A template message is not bound by the window.
    await client.send_template(OPENID, "TPL_REPAIR", {"first": "您的报修已受理"})
    assert [s["kind"] for s in fake.sent] == ["custom", "template"]


@pytest.mark.parametrize("setup, openid, reason", [
    (lambda fake: fake.unsubscribe(OPENID), OPENID, "unsubscribed"),
    (lambda fake: None, "bad", "invalid_openid"),
    (lambda fake: None, "o" * 65, "invalid_openid"),
])
async def test_permanent_failures(client: WeChatClient, fake: FakeWeChat, setup, openid: str, reason: str) -> None:
    setup(fake)
    with pytest.raises(SendFailed) as caught:
        await client.send_text(openid, "您好")
    assert (caught.value.reason, caught.value.retryable) == (reason, False)


@pytest.mark.parametrize("errcode, reason, retryable", [
    (-1, "provider_unavailable", True),
    (45047, "too_many_messages", True),
    (45009, "api_quota", True),
    (48001, "wechat_48001", False),
    (40037, "wechat_40037", False),
])
async def test_errcodes_map_to_reasons(client: WeChatClient, fake: FakeWeChat, errcode: int, reason: str,
                                       retryable: bool) -> None:
    await client.send_text(OPENID, "warm the token")
    fake.fail_next(1, errcode=errcode)
    with pytest.raises(SendFailed) as caught:
        await client.send_text(OPENID, "您好")
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert str(errcode) in caught.value.detail


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_an_outage_is_retryable_and_recovers(client: WeChatClient, fake: FakeWeChat, status: int) -> None:
    fake.fail_next(1, http_status=status)
    with pytest.raises(SendFailed) as caught:
        await client.send_text(OPENID, "您好")
    assert (caught.value.reason, caught.value.retryable) == ("provider_unavailable", True)
    await client.send_text(OPENID, "您好")
    assert len(fake.sent) == 1


async def test_a_client_error_status_is_not_retryable(client: WeChatClient, fake: FakeWeChat) -> None:
    fake.fail_next(1, http_status=403)
    with pytest.raises(SendFailed) as caught:
        await client.send_text(OPENID, "您好")
    assert (caught.value.reason, caught.value.retryable) == ("http_403", False)


async def test_a_timeout_is_retryable(now: Clock) -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as http:
        client = WeChatClient(BASE, APP_ID, SECRET, http=http, now=now)
        with pytest.raises(SendFailed) as caught:
            await client.send_text(OPENID, "您好")
    assert (caught.value.reason, caught.value.retryable) == ("provider_unavailable", True)


async def test_an_unreachable_api_is_retryable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with WeChatClient(f"http://127.0.0.1:{port}", APP_ID, SECRET, timeout_s=2.0) as client:
        with pytest.raises(SendFailed) as caught:
            await client.send_text(OPENID, "您好")
    assert (caught.value.reason, caught.value.retryable) == ("provider_unavailable", True)


async def test_a_garbled_answer_is_retryable(now: Clock) -> None:
    def proxy_page(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/token":
            return httpx.Response(200, json={"access_token": "T", "expires_in": 7200})
        return httpx.Response(200, text="<html>bad gateway</html>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(proxy_page)) as http:
        with pytest.raises(SendFailed) as caught:
            await WeChatClient(BASE, APP_ID, SECRET, http=http, now=now).send_text(OPENID, "您好")
    assert (caught.value.reason, caught.value.retryable) == ("provider_unavailable", True)


async def test_no_secret_or_token_in_logs_or_errors(client: WeChatClient, fake: FakeWeChat,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gasdesk")
    errors: list[str] = []
    await client.send_text(OPENID, "a")
    for arrange in (lambda: fake.fail_next(1, http_status=500), lambda: fake.fail_next(1, errcode=-1),
                    fake.expire_tokens, lambda: fake.close_window(OPENID)):
        arrange()
        try:
            await client.send_text(OPENID, "b")
        except SendFailed as exc:
            errors.append(f"{exc!s} {exc.detail} {exc!r}")
    tokens = list(fake.tokens)
    assert len(tokens) == 2 and len(errors) == 3
    gasdesk_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gasdesk"))
    assert "/cgi-bin/message/custom/send" in gasdesk_log  # the failures were logged, by path
    for secret in [SECRET, *tokens]:
        assert secret not in gasdesk_log
        assert all(secret not in error for error in errors)
    assert SECRET not in repr(client)


# ---------------------------------------------------------------- template messages


async def test_template_send_returns_wechats_msgid(client: WeChatClient, fake: FakeWeChat) -> None:
    result = await client.send_template(OPENID, "TPL_APPOINTMENT", {"first": "预约已确认", "keyword1": "3月5日 上午"},
                                        url="https://gas.example.cn/a/1")
    [sent] = fake.sent
    assert result.provider_id == str(sent["msgid"])
    assert sent["template_id"] == "TPL_APPOINTMENT" and sent["url"] == "https://gas.example.cn/a/1"
    assert sent["data"] == {"first": "预约已确认", "keyword1": "3月5日 上午"}
    second = await client.send_template(OPENID, "TPL_APPOINTMENT", {"first": "x"})
    assert second.provider_id != result.provider_id


async def test_a_resent_template_with_the_same_client_msg_id_is_sent_once(client: WeChatClient,
                                                                          fake: FakeWeChat) -> None:
    first = await client.send_template(OPENID, "TPL", {"first": "x"}, client_msg_id="outbound-17")
    again = await client.send_template(OPENID, "TPL", {"first": "x"}, client_msg_id="outbound-17")
    assert first == again and len(fake.sent) == 1


async def test_an_unknown_template_is_not_retryable(client: WeChatClient, fake: FakeWeChat) -> None:
    fake.templates = {"TPL_KNOWN"}
    with pytest.raises(SendFailed) as caught:
        await client.send_template(OPENID, "TPL_UNKNOWN", {"first": "x"})
    assert (caught.value.reason, caught.value.retryable) == ("wechat_40037", False)


async def test_templates_to_unsubscribed_residents_fail(client: WeChatClient, fake: FakeWeChat) -> None:
    fake.unsubscribe(OPENID)
    with pytest.raises(SendFailed) as caught:
        await client.send_template(OPENID, "TPL", {"first": "x"})
    assert caught.value.reason == "unsubscribed"


# ---------------------------------------------------------------- menu


MENU = {"button": [
    {"type": "click", "name": "燃气报修", "key": "MENU_REPAIR"},
    {"name": "自助服务", "sub_button": [
        {"type": "view", "name": "查询余额", "url": "https://gas.example.cn/h5/balance"},
        {"type": "click", "name": "预约安检", "key": "MENU_BOOK"}]},
    {"type": "view", "name": "在线客服", "url": "https://gas.example.cn/chat"},
]}


async def test_menu_create_and_get(client: WeChatClient, fake: FakeWeChat) -> None:
    assert await client.get_menu() == {"button": []}
    await client.create_menu(MENU)
    assert await client.get_menu() == MENU
    assert fake.menu == MENU


@pytest.mark.parametrize("menu, errcode", [
    ({"button": MENU["button"] + [{"type": "click", "name": "四", "key": "K"}]}, 40016),
    ({"button": []}, 40016),
    ({"button": [{"type": "click", "name": "没有键"}]}, 40019),
    ({"button": [{"type": "teleport", "name": "x", "key": "K"}]}, 40017),
    ({"button": [{"type": "click", "name": "一个很长很长的菜单名字", "key": "K"}]}, 40018),
    ({"button": [{"name": "子菜单", "sub_button": [{"type": "view", "name": "v"}]}]}, 40027),
])
async def test_a_malformed_menu_is_refused_as_wechat_does(client: WeChatClient, fake: FakeWeChat,
                                                          menu: dict, errcode: int) -> None:
    with pytest.raises(WeChatApiError) as caught:
        await client.create_menu(menu)
    assert (caught.value.errcode, caught.value.retryable) == (errcode, False)
    assert fake.menu is None


# ---------------------------------------------------------------- web OAuth


async def test_an_oauth_code_gives_the_openid_once(client: WeChatClient, fake: FakeWeChat) -> None:
    code = fake.code_for(OPENID, unionid="oUnion123")
    assert await client.oauth_openid(code) == (OPENID, "oUnion123")
    with pytest.raises(SendFailed) as caught:
        await client.oauth_openid(code)
    assert (caught.value.reason, caught.value.retryable) == ("code_used", False)
    assert await client.oauth_openid(fake.code_for(OTHER)) == (OTHER, None)


async def test_unknown_and_malformed_codes(client: WeChatClient, fake: FakeWeChat) -> None:
    with pytest.raises(SendFailed) as caught:
        await client.oauth_openid("0" * 32)
    assert caught.value.reason == "invalid_code"
    calls = len(fake.requests)
    for bad in ("", "a&secret=x", "码", "x" * 600):
        with pytest.raises(SendFailed) as caught:
            await client.oauth_openid(bad)
        assert caught.value.reason == "invalid_code"
    assert len(fake.requests) == calls  # refused without asking WeChat


def test_the_authorize_url() -> None:
    client = WeChatClient(BASE, APP_ID, SECRET)
    url = client.oauth_authorize_url("https://gas.example.cn/wechat/oauth?next=/h5/balance", "abc123")
    assert url == ("https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx2c2769f8efd9abc2"
                   "&redirect_uri=https%3A%2F%2Fgas.example.cn%2Fwechat%2Foauth%3Fnext%3D%2Fh5%2Fbalance"
                   "&response_type=code&scope=snsapi_base&state=abc123#wechat_redirect")
    parts = urlsplit(client.oauth_authorize_url("https://x.cn/cb", "s", scope="snsapi_userinfo",
                                                open_base="http://127.0.0.1:8000/fake-open/"))
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "http", "127.0.0.1:8000", "/fake-open/connect/oauth2/authorize", "wechat_redirect")
    assert [k for k, _ in parse_qsl(parts.query)] == ["appid", "redirect_uri", "response_type", "scope", "state"]
    assert dict(parse_qsl(parts.query))["redirect_uri"] == "https://x.cn/cb"
    for bad in ({"state": "a b"}, {"state": "x" * 129}, {"state": "ok", "scope": "snsapi_login"}):
        with pytest.raises(ValueError):
            client.oauth_authorize_url("https://x.cn/cb", **bad)


# ---------------------------------------------------------------- the fake's own checks


async def test_the_fake_checks_shapes_and_tokens_as_wechat_does(http: httpx.AsyncClient, fake: FakeWeChat,
                                                                now: Clock) -> None:
    async def errcode(path: str, body: object | None = None, **query: str) -> int:
        if body is None:
            answer = await http.get(path, params=query)
        else:
            answer = await http.post(path, params=query, json=body)
        return answer.json().get("errcode", 0)

    assert await errcode("/cgi-bin/token", grant_type="client_credential", appid="wx_other", secret=SECRET) == 40013
    assert await errcode("/cgi-bin/token", grant_type="password", appid=APP_ID, secret=SECRET) == 40002
    token = (await http.get("/cgi-bin/token", params={"grant_type": "client_credential", "appid": APP_ID,
                                                      "secret": SECRET})).json()["access_token"]
    send = "/cgi-bin/message/custom/send"
    assert await errcode(send, {"touser": OPENID, "msgtype": "text", "text": {"content": "x"}}) == 41001
    assert await errcode(send, {"touser": OPENID, "msgtype": "text", "text": {"content": "x"}},
                         access_token="forged") == 40001
    assert await errcode(send, {"msgtype": "text", "text": {"content": "x"}}, access_token=token) == 40003
    assert await errcode(send, {"touser": OPENID, "msgtype": "text", "text": {}}, access_token=token) == 44004
    assert await errcode(send, {"touser": OPENID, "msgtype": "text"}, access_token=token) == 44004
    assert await errcode(send, {"touser": OPENID, "msgtype": "voice"}, access_token=token) == 40008
    assert await errcode(send, ["not", "an", "object"], access_token=token) == 47001
    template = "/cgi-bin/message/template/send"
    assert await errcode(template, {"touser": OPENID, "data": {"a": {"value": "b"}}}, access_token=token) == 40037
    assert await errcode(template, {"touser": OPENID, "template_id": "T"}, access_token=token) == 47001
    assert await errcode(template, {"touser": OPENID, "template_id": "T", "data": {"a": "b"}},
                         access_token=token) == 47001
    assert fake.sent == []
    # A new token leaves the old one valid for five more minutes, then only the new one works.
    newer = (await http.get("/cgi-bin/token", params={"grant_type": "client_credential", "appid": APP_ID,
                                                      "secret": SECRET})).json()["access_token"]
    body = {"touser": OPENID, "msgtype": "text", "text": {"content": "x"}}
    assert await errcode(send, body, access_token=token) == 0
    now.t += 301
    assert await errcode(send, body, access_token=token) == 40001
    assert await errcode(send, body, access_token=newer) == 0
    now.t += 7200
    assert await errcode(send, body, access_token=newer) == 40001
