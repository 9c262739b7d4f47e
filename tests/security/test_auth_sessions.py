"""Finding 7, sessions and tokens: logout ends the session on the server (a copied cookie dies with it); a
password change ends every session and API token of the user; tokens' issue and revocation are audited."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.auth.models import ApiToken, LoginSession, LoginThrottle
from gasdesk.db import sessionmaker
from gasdesk.jobs.queue import run_periodic_once
from tests.factories import TEST_PASSWORD, extra_client, login


async def test_a_copied_cookie_stops_working_after_logout(app, factory) -> None:
    user = await factory.user("supervisor")
    async with extra_client(app) as victim, extra_client(app) as thief:
        assert (await login(victim, user.username)).status_code == 303
        stolen = victim.cookies.get("gasdesk_session")
        thief.cookies.set("gasdesk_session", stolen)
        assert (await thief.get("/api/v1/auth/me")).status_code == 200  # the copy works while logged in

        assert (await victim.post("/logout")).status_code == 303
        assert (await victim.get("/api/v1/auth/me")).status_code == 401
        thief.cookies.set("gasdesk_session", stolen)
        assert (await thief.get("/api/v1/auth/me")).status_code == 401
        page = await thief.get("/admin/audit", headers={"Accept": "text/html"})
        assert page.status_code == 401 and "工作人员登录" in page.text


async def test_logout_ends_only_that_session(app, factory) -> None:
    user = await factory.user("agent")
    async with extra_client(app) as desk, extra_client(app) as phone:
        assert (await login(desk, user.username)).status_code == 303
        assert (await login(phone, user.username)).status_code == 303
        assert (await desk.post("/logout")).status_code == 303
        assert (await phone.get("/api/v1/auth/me")).status_code == 200


async def test_password_change_ends_every_session_and_token(app, client, factory) -> None:
    admin = await factory.headers("admin")
    user = await factory.user("agent")
    token_headers = {"Authorization": f"Bearer {await factory.token(user)}"}
    api_token = (await client.post("/api/v1/auth/token",
                                   json={"username": user.username, "password": TEST_PASSWORD})).json()["access_token"]
    async with extra_client(app) as browser:
        assert (await login(browser, user.username)).status_code == 303
        stolen = browser.cookies.get("gasdesk_session")
        assert (await client.get("/api/v1/auth/me", headers=token_headers)).status_code == 200

        response = await client.patch(f"/api/v1/users/{user.id}", headers=admin, json={"password": "a-new-password-1"})
        assert response.status_code == 200

        for headers in (token_headers, {"Authorization": f"Bearer {api_token}"}):
            answer = await client.get("/api/v1/auth/me", headers=headers)
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_token"
        assert (await browser.get("/api/v1/auth/me")).status_code == 401
        browser.cookies.set("gasdesk_session", stolen)
        assert (await browser.get("/api/v1/auth/me")).status_code == 401
        # the new password gives a working session
        browser.cookies.clear()
        assert (await login(browser, user.username, "a-new-password-1")).status_code == 303
        assert (await browser.get("/api/v1/auth/me")).status_code == 200


async def test_each_login_gets_a_new_session_id(app, factory) -> None:
    """No session fixation: a cookie planted before login is not the one that ends up logged in."""
    user = await factory.user("agent")
    async with extra_client(app) as c:
        assert (await login(c, user.username)).status_code == 303
        first = c.cookies.get("gasdesk_session")
        assert (await login(c, user.username)).status_code == 303
        assert c.cookies.get("gasdesk_session") != first


async def test_token_issue_and_revoke_are_audited(client, factory) -> None:
    user = await factory.user("dispatcher", username="tokenaudit")
    issued = await client.post("/api/v1/auth/token", json={"username": "tokenaudit", "password": TEST_PASSWORD})
    headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert (await client.post("/api/v1/auth/revoke", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    async with sessionmaker()() as s:
        rows = list(await s.scalars(select(AuditEntry).where(AuditEntry.entity_type == "api_token")
                                    .order_by(AuditEntry.id)))
    assert [(r.action, r.actor_id, r.source) for r in rows] == [
        ("auth.token_issue", user.id, "api"), ("auth.token_revoke", user.id, "api")]
    assert rows[0].entity_id == rows[1].entity_id


async def test_ended_sessions_tokens_and_idle_throttles_are_pruned(app, client, factory) -> None:
    user = await factory.user("agent")
    await factory.token(user)
    async with extra_client(app) as browser:
        assert (await login(browser, user.username)).status_code == 303
        assert (await browser.post("/logout")).status_code == 303
    await client.post("/api/v1/auth/token", json={"username": user.username, "password": "wrong-password"})

    async def counts() -> tuple[int, ...]:
        async with sessionmaker()() as s:
            return tuple([await s.scalar(select(func.count()).select_from(t))
                          for t in (LoginSession, ApiToken, LoginThrottle)])

    assert await counts() == (1, 1, 1)
    clock.set_now(clock.utcnow() + timedelta(hours=23))
    assert "auth.prune" in await run_periodic_once(force=True)
    assert await counts() == (1, 1, 1), "kept for a day (audit trail, throttling)"
    clock.set_now(clock.utcnow() + timedelta(hours=12))
    await run_periodic_once(force=True)
    assert await counts() == (0, 0, 0)
