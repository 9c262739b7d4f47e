"""Finding 7, CSRF: a page on another site cannot make a logged-in staff member's browser change anything —
the Origin check refuses foreign pages, and every cookie-authenticated change must carry the session's CSRF
token; the staff socket refuses foreign pages; bearer-token API clients and the embeddable resident chat
keep working."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed

from gasdesk.auth.models import User
from gasdesk.config import reset_settings_cache
from gasdesk.db import sessionmaker
from tests.factories import TEST_PASSWORD, ChatSocket, extra_client, login, served

EVIL = "https://evil.example"
NEW_USER = {"username": "planted", "password": "attacker-chosen-pw", "role": "admin"}


async def _users_named(name: str) -> int:
    async with sessionmaker()() as s:
        return await s.scalar(select(func.count()).select_from(User).where(User.username == name))


@pytest.fixture
async def admin_browser(app, factory):
    """A logged-in admin's browser (cookie session; knows its page's CSRF token)."""
    admin = await factory.user("admin")
    async with extra_client(app) as browser:
        assert (await login(browser, admin.username)).status_code == 303
        token = browser.headers.pop("X-CSRF-Token")  # send it only where a page would
        yield browser, token


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL},
    {"Origin": "null"},  # sandboxed iframe on the attacker's page
    {"Referer": EVIL + "/lure.html"},  # no Origin, foreign Referer
    {"Origin": "http://testserver.evil.example"},
])
async def test_cross_site_form_post_is_refused(admin_browser, headers) -> None:
    browser, token = admin_browser
    # even if the attacker somehow knew the token: the foreign origin alone is refused
    response = await browser.post("/admin/users", data={**NEW_USER, "csrf_token": token}, headers=headers)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden_origin"
    assert await _users_named("planted") == 0


async def test_same_site_post_without_the_token_is_refused(admin_browser) -> None:
    """Covers browsers that send neither Origin nor Referer, and sibling hosts that share the cookie."""
    browser, token = admin_browser
    for extra in ({}, {"csrf_token": ""}, {"csrf_token": "forged-token"}):
        response = await browser.post("/admin/users", data={**NEW_USER, **extra})
        assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed", extra
    page = await browser.post("/admin/users", data=NEW_USER, headers={"Accept": "text/html"})
    assert page.status_code == 403 and "CSRF" in page.text
    assert await _users_named("planted") == 0

    # the real form (hidden field) and htmx (header) work
    ok = await browser.post("/admin/users", data={**NEW_USER, "csrf_token": token},
                            headers={"Origin": "http://testserver", "Accept": "text/html"})
    assert ok.status_code == 200 and "已创建用户 planted" in ok.text
    htmx = await browser.post("/admin/users", data={**NEW_USER, "username": "planted2"},
                              headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert htmx.status_code == 200 and await _users_named("planted2") == 1


async def test_the_pages_carry_the_token_in_every_form(admin_browser) -> None:
    browser, token = admin_browser
    page = await browser.get("/admin/users", headers={"Accept": "text/html"})
    assert f'<meta name="csrf-token" content="{token}">' in page.text
    forms = page.text.count('method="post"')
    assert forms >= 2 and page.text.count(f'name="csrf_token" value="{token}"') == forms


async def test_json_calls_from_pages_need_the_token_too(app, factory) -> None:
    agent = await factory.user("agent")
    async with extra_client(app) as browser:
        assert (await login(browser, agent.username)).status_code == 303
        token = browser.headers.pop("X-CSRF-Token")
        refused = await browser.put("/api/v1/agent/presence", json={"presence": "online"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
        ok = await browser.put("/api/v1/agent/presence", json={"presence": "online"}, headers={"X-CSRF-Token": token})
        assert ok.status_code == 200


async def test_cross_site_logout_and_login_are_refused(admin_browser, factory) -> None:
    browser, token = admin_browser
    assert (await browser.post("/logout", headers={"Origin": EVIL})).status_code == 403
    assert (await browser.post("/logout")).status_code == 403  # no token
    assert (await browser.get("/api/v1/auth/me")).status_code == 200, "still logged in"
    # login CSRF: a foreign page logging the victim into the attacker's account
    mallory = await factory.user("agent", username="mallory")
    response = await browser.post("/login", data={"username": mallory.username, "password": TEST_PASSWORD},
                                  headers={"Origin": EVIL})
    assert response.status_code == 403
    assert (await browser.get("/api/v1/auth/me")).json()["username"] != "mallory"
    out = await browser.post("/logout", headers={"X-CSRF-Token": token, "Origin": "http://testserver"})
    assert out.status_code == 303 and (await browser.get("/api/v1/auth/me")).status_code == 401


async def test_bearer_api_and_resident_endpoints_are_not_affected(client, factory, admin_browser) -> None:
    headers = {**(await factory.headers("agent")), "Origin": EVIL}
    created = await client.post("/api/v1/customers", headers=headers, json={"name": "王五", "phones": ["13800000031"]})
    assert created.status_code == 201, "an integration calling with a token may run anywhere"
    # a staff member who also has the chat open: the chat's own calls carry no staff token and still work
    browser, _ = admin_browser
    visitor = await browser.post("/api/v1/webchat/visitors", headers={"Origin": "http://testserver"})
    assert visitor.status_code == 200 and visitor.json()["token"]


async def test_configured_extra_origin_is_accepted(admin_browser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_ALLOWED_ORIGINS", "https://desk.example-gas.cn, https://other.example-gas.cn")
    reset_settings_cache()
    from gasdesk.web.app import create_app

    app = create_app()
    browser, token = admin_browser
    cookie = {"Cookie": f"gasdesk_session={browser.cookies.get('gasdesk_session')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://10.0.0.5:8000",
                                 headers=cookie) as proxied:
        # behind a proxy that does not pass the public Host on
        response = await proxied.post("/admin/users", data={**NEW_USER, "csrf_token": token},
                                      headers={"Origin": "https://desk.example-gas.cn"})
        assert response.status_code == 200
        response = await proxied.post("/admin/users", data={**NEW_USER, "csrf_token": token},
                                      headers={"Origin": EVIL})
        assert response.status_code == 403


async def test_agent_socket_refuses_a_foreign_origin(app, factory) -> None:
    agent = await factory.user("agent")
    async with served(app) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}") as browser:
            assert (await login(browser, agent.username)).status_code == 303
            cookie = {"Cookie": f"gasdesk_session={browser.cookies.get('gasdesk_session')}"}
        with pytest.raises(ConnectionClosed) as info:
            async with ChatSocket.connect(host, "/ws/agent", origin=EVIL, additional_headers=cookie) as ws:
                await ws.recv()
        assert info.value.rcvd.code == 4403 and info.value.rcvd.reason == "forbidden_origin"
        # the console itself (same origin) connects
        async with ChatSocket.connect(host, "/ws/agent", origin=f"http://{host}", additional_headers=cookie) as ws:
            hello = await ws.until("hello")
            assert hello["role"] == "agent"


async def test_resident_socket_stays_open_to_any_site(app) -> None:
    async with served(app) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}") as c:
            token = (await c.post("/api/v1/webchat/visitors")).json()["token"]
        async with ChatSocket.connect(host, "/ws/webchat", origin="https://www.some-utility-site.example") as ws:
            await ws.send(type="hello", token=token)
            assert (await ws.until("welcome"))["conversation"]["id"]


async def test_a_photo_form_without_the_token_stores_nothing(client, session) -> None:
    """Upload forms are parsed only after the caller and the ticket are checked; their CSRF token travels in
    the multipart body and is checked once the parts are read — before anything is stored."""
    from gasdesk.conversations.attachments import Attachment
    from tests.factories import WO_PNG, staff_user, wo_ticket

    crew = await staff_user(session, "field_crew", username="csrf_crew")
    ticket = await wo_ticket(session, "repair", status="in_progress", crew_id=crew.id)
    assert (await login(client, "csrf_crew")).status_code == 303
    form = {"result": (None, "已更换阀门"), "photos": ("现场.png", WO_PNG, "image/png")}
    token = client.headers.pop("X-CSRF-Token")  # a browser form sends the token as a field, not a header
    refused = await client.post(f"/crew/tickets/{ticket.id}/writeback", files=form)
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 0
    accepted = await client.post(f"/crew/tickets/{ticket.id}/writeback",
                                 files={**form, "csrf_token": (None, token)})
    assert accepted.status_code == 303, accepted.text[:300]
    assert await session.scalar(select(func.count()).select_from(Attachment)) == 1
