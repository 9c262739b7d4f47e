"""Staff login: cookie sessions, bearer tokens, lock-out, session invalidation, safe redirects."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.auth.models import User
from gasdesk.auth.service import LOGIN_REFUSED, do_update_user
from gasdesk.db import commit, sessionmaker
from tests.factories import TEST_PASSWORD, extra_client, login, page_csrf_token


async def test_login_page_flow_and_logout(client, factory) -> None:
    user = await factory.user("agent", username="xiaoxue")
    form = await client.get("/login", headers={"Accept": "text/html"})
    assert form.status_code == 200 and "工作人员登录" in form.text

    wrong = await client.post("/login", data={"username": "xiaoxue", "password": "nope-nope", "next": "/"})
    assert wrong.status_code == 401 and LOGIN_REFUSED in wrong.text
    assert "gasdesk_session" not in wrong.cookies

    ok = await client.post("/login", data={"username": "XiaoXue", "password": TEST_PASSWORD, "next": "/customers"})
    assert ok.status_code == 303 and ok.headers["location"] == "/customers"
    assert "gasdesk_session" in client.cookies
    client.headers["X-CSRF-Token"] = await page_csrf_token(client)
    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["username"] == "xiaoxue" and me.json()["role"] == "agent"
    page = await client.get("/customers", headers={"Accept": "text/html"})
    assert page.status_code == 200 and user.display_name in page.text and "退出" in page.text

    out = await client.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    again = await client.get("/customers", headers={"Accept": "text/html"})
    assert again.status_code == 401 and "工作人员登录" in again.text


async def test_last_login_is_recorded(client, factory) -> None:
    user = await factory.user("agent")
    moment = clock.utcnow().replace(microsecond=0)
    clock.set_now(moment)
    assert (await login(client, user.username)).status_code == 303
    async with sessionmaker()() as s:
        assert (await s.get(User, user.id)).last_login_at == moment


async def test_token_endpoint(client, factory) -> None:
    user = await factory.user("dispatcher", username="sun")
    good = await client.post("/api/v1/auth/token", json={"username": "sun", "password": TEST_PASSWORD})
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("gd_")
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = await client.get("/api/v1/auth/me", headers=headers)
    assert me.json()["id"] == user.id

    for credentials in [{"username": "sun", "password": "wrong-password"}, {"username": "ghost", "password": "x"}]:
        bad = await client.post("/api/v1/auth/token", json=credentials)
        assert bad.status_code == 401
        assert bad.json()["error"] == {"code": "bad_credentials", "message": LOGIN_REFUSED}
        assert bad.headers["www-authenticate"] == "Bearer"
    missing = await client.post("/api/v1/auth/token", json={"username": "sun"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid_input"

    assert (await client.post("/api/v1/auth/revoke", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401


async def test_token_expires(client, factory) -> None:
    headers = await factory.headers("agent")
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    clock.set_now(clock.utcnow() + timedelta(hours=8, seconds=1))
    response = await client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"


async def test_lockout_after_repeated_failures(client, factory) -> None:
    """Per (username, address): free tries, then a growing delay, then a lock-out; the same answer throughout."""
    await factory.user("agent", username="locky")
    start = clock.utcnow()
    clock.set_now(start)
    attempt = {"username": "locky", "password": "wrong-password"}
    right = {"username": "locky", "password": TEST_PASSWORD}
    refused = {"code": "bad_credentials", "message": LOGIN_REFUSED}
    for second in (0, 0, 1, 3):  # failures 1–2 free, after the 3rd wait 1 s, after the 4th wait 2 s
        clock.set_now(start + timedelta(seconds=second))
        response = await client.post("/api/v1/auth/token", json=attempt)
        assert response.status_code == 401 and response.json()["error"] == refused
    # inside the 2 s delay even the right password is refused, without being checked
    assert (await client.post("/api/v1/auth/token", json=right)).json()["error"] == refused
    clock.set_now(start + timedelta(seconds=5))
    fifth = await client.post("/api/v1/auth/token", json=attempt)
    assert fifth.status_code == 401  # this failure locks the pair out

    locked = await client.post("/api/v1/auth/token", json=right)
    assert locked.status_code == 401 and locked.json()["error"] == refused
    page = await client.post("/login", data={**right, "next": "/"})
    assert page.status_code == 401 and LOGIN_REFUSED in page.text and "gasdesk_session" not in client.cookies

    clock.set_now(start + timedelta(minutes=14, seconds=55))
    assert (await client.post("/api/v1/auth/token", json=right)).status_code == 401
    clock.set_now(start + timedelta(minutes=15, seconds=6))
    assert (await client.post("/api/v1/auth/token", json=right)).status_code == 200

    async with sessionmaker()() as s:
        actions = list(await s.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("auth.l"))
                                       .order_by(AuditEntry.id)))
    assert actions == ["auth.login_failed"] * 4 + ["auth.lockout"], "refused attempts are not even audited"


async def test_success_resets_the_failure_count(client, factory) -> None:
    await factory.user("agent", username="careful")
    wrong = {"username": "careful", "password": "wrong-password"}
    right = {"username": "careful", "password": TEST_PASSWORD}
    start = clock.utcnow()
    for round_start in (start, start + timedelta(minutes=1)):
        for second in (0, 0, 1, 3):
            clock.set_now(round_start + timedelta(seconds=second))
            assert (await client.post("/api/v1/auth/token", json=wrong)).status_code == 401
        clock.set_now(round_start + timedelta(seconds=5))
        assert (await client.post("/api/v1/auth/token", json=right)).status_code == 200
    # after the success the count starts again: two free failures
    for _ in range(2):
        assert (await client.post("/api/v1/auth/token", json=wrong)).status_code == 401
    assert (await client.post("/api/v1/auth/token", json=right)).status_code == 200


async def test_password_change_invalidates_cookie_session(app, client, factory, session) -> None:
    user = await factory.user("agent")
    assert (await login(client, user.username)).status_code == 303
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    token = await factory.token(user)

    await do_update_user(session, Actor.system("test"), user, password="a-brand-new-password")
    await commit(session)
    response = await client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401

    old = await login(client, user.username)
    assert old.status_code == 401
    new = await login(client, user.username, "a-brand-new-password")
    assert new.status_code == 303 and (await client.get("/api/v1/auth/me")).status_code == 200


async def test_deactivation_ends_sessions_and_tokens(app, client, factory) -> None:
    admin = await factory.headers("admin")
    user = await factory.user("agent")
    token = {"Authorization": f"Bearer {await factory.token(user)}"}
    async with extra_client(app) as browser, extra_client(app) as old_browser:
        assert (await login(browser, user.username)).status_code == 303
        assert (await login(old_browser, user.username)).status_code == 303
        response = await client.patch(f"/api/v1/users/{user.id}", headers=admin, json={"is_active": False})
        assert response.status_code == 200 and response.json()["is_active"] is False
        assert (await browser.get("/api/v1/auth/me")).status_code == 401
        assert (await client.get("/api/v1/auth/me", headers=token)).status_code == 401
        assert (await login(browser, user.username)).status_code == 401
        # reactivated: logging in again works; a cookie from before the deactivation stays dead
        await client.patch(f"/api/v1/users/{user.id}", headers=admin, json={"is_active": True})
        assert (await login(browser, user.username)).status_code == 303
        assert (await browser.get("/api/v1/auth/me")).status_code == 200
        assert (await old_browser.get("/api/v1/auth/me")).status_code == 401


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
    "http:evil.example", "javascript:alert(1)", "evil.example", "",
])
async def test_next_cannot_redirect_off_site(client, factory, target: str) -> None:
    user = await factory.user("agent")
    response = await client.post("/login", data={"username": user.username, "password": TEST_PASSWORD, "next": target})
    assert response.status_code == 303
    location = response.headers["location"]
    # what a browser would do: backslashes count as slashes, tabs/newlines are dropped
    browser_view = urljoin("http://testserver/login", location.replace("\\", "/").replace("\t", ""))
    assert urlsplit(browser_view).netloc == "testserver", location


async def test_next_keeps_local_paths(client, factory) -> None:
    user = await factory.user("agent")
    response = await client.post("/login", data={"username": user.username, "password": TEST_PASSWORD,
                                                 "next": "/customers?q=13800001234"})
    assert response.headers["location"] == "/customers?q=13800001234"
