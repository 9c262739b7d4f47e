"""User administration through the API and the admin page."""

from __future__ import annotations

import pytest

from tests.factories import TEST_PASSWORD, extra_client, login


@pytest.fixture
async def admin(factory) -> dict[str, str]:
    return await factory.headers("admin")


async def test_create_list_update_user(client, admin) -> None:
    created = await client.post("/api/v1/users", headers=admin, json={
        "username": "Zhao.Ming", "password": "long-enough-pw", "role": "agent", "display_name": "赵明"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["username"], body["display_name"], body["role"], body["is_active"]) == ("zhao.ming", "赵明", "agent", True)
    assert "password" not in body and "password_hash" not in body
    token = await client.post("/api/v1/auth/token", json={"username": "zhao.ming", "password": "long-enough-pw"})
    assert token.status_code == 200

    listing = await client.get("/api/v1/users", headers=admin)
    assert "zhao.ming" in [u["username"] for u in listing.json()]
    assert all("password_hash" not in u for u in listing.json())

    changed = await client.patch(f"/api/v1/users/{body['id']}", headers=admin,
                                 json={"role": "supervisor", "display_name": "赵班长"})
    assert changed.status_code == 200 and changed.json()["role"] == "supervisor"
    assert changed.json()["display_name"] == "赵班长"


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"username": "weakling", "password": "short", "role": "agent"}, 422, "weak_password"),
    ({"username": "roleless", "password": "long-enough-pw", "role": "boss"}, 422, "invalid_role"),
    ({"username": "has space", "password": "long-enough-pw", "role": "agent"}, 422, "invalid_username"),
    ({"username": "用户", "password": "long-enough-pw", "role": "agent"}, 422, "invalid_username"),
    ({"username": "x", "password": "long-enough-pw", "role": "agent"}, 422, "invalid_input"),
    ({"username": "norole", "password": "long-enough-pw"}, 422, "invalid_input"),
])
async def test_create_user_validation(client, admin, payload: dict, status: int, code: str) -> None:
    response = await client.post("/api/v1/users", headers=admin, json=payload)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    usernames = [u["username"] for u in (await client.get("/api/v1/users", headers=admin)).json()]
    assert payload["username"].lower() not in usernames


async def test_duplicate_username_is_409(client, admin, factory) -> None:
    await factory.user("agent", username="taken")
    response = await client.post("/api/v1/users", headers=admin,
                                 json={"username": " TAKEN ", "password": "long-enough-pw", "role": "agent"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"


async def test_update_user_validation(client, admin, factory) -> None:
    user = await factory.user("agent")
    bad_role = await client.patch(f"/api/v1/users/{user.id}", headers=admin, json={"role": "root"})
    assert bad_role.status_code == 422 and bad_role.json()["error"]["code"] == "invalid_role"
    weak = await client.patch(f"/api/v1/users/{user.id}", headers=admin, json={"password": "123"})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "weak_password"
    assert (await client.post("/api/v1/auth/token",
                              json={"username": user.username, "password": TEST_PASSWORD})).status_code == 200
    missing = await client.patch("/api/v1/users/999999", headers=admin, json={"role": "agent"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "user_not_found"
    me = (await client.get("/api/v1/auth/me", headers=admin)).json()
    self_off = await client.patch(f"/api/v1/users/{me['id']}", headers=admin, json={"is_active": False})
    assert self_off.status_code == 422 and self_off.json()["error"]["code"] == "cannot_deactivate_self"
    assert (await client.get("/api/v1/auth/me", headers=admin)).status_code == 200


async def test_only_admins_manage_users(client, factory) -> None:
    for role in ["supervisor", "agent", "dispatcher", "field_crew"]:
        headers = await factory.headers(role)
        response = await client.post("/api/v1/users", headers=headers,
                                     json={"username": f"made-by-{role}", "password": "long-enough-pw", "role": "admin"})
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


async def test_admin_users_page(client, factory) -> None:
    admin = await factory.user("admin", username="chief")
    assert (await login(client, "chief")).status_code == 303
    page = await client.get("/admin/users", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "chief" in page.text and "用户管理" in page.text
    created = await client.post("/admin/users", data={"username": "crew9", "password": "long-enough-pw",
                                                      "role": "field_crew", "display_name": "维修九班"})
    assert created.status_code == 200 and "已创建用户 crew9" in created.text
    weak = await client.post("/admin/users", data={"username": "crew10", "password": "short", "role": "field_crew"})
    assert weak.status_code == 422 and "密码至少 8 位" in weak.text
    users = (await client.get("/api/v1/users")).json()
    crew = next(u for u in users if u["username"] == "crew9")
    assert crew["role"] == "field_crew" and "crew10" not in [u["username"] for u in users]
    toggled = await client.post(f"/admin/users/{crew['id']}/active", data={"active": "false"})
    assert toggled.status_code == 303
    assert next(u for u in (await client.get("/api/v1/users")).json() if u["id"] == crew["id"])["is_active"] is False
    assert admin.id != crew["id"]


async def _audit(client, user_id: int) -> list[dict]:
    listing = await client.get("/api/v1/audit", params={"entity_type": "user", "entity_id": str(user_id),
                                                        "action": "user.update"})
    assert listing.status_code == 200, listing.text
    return listing.json()["items"]


async def test_admin_page_changes_a_role_and_resets_a_password(app, client, factory) -> None:
    await factory.user("admin", username="chief2")
    target = await factory.user("agent", username="forgetful")
    assert (await login(client, "chief2")).status_code == 303
    page = await client.get("/admin/users", headers={"Accept": "text/html"})
    assert f'action="/admin/users/{target.id}/role"' in page.text
    assert f'action="/admin/users/{target.id}/password"' in page.text

    # The user is logged in elsewhere with the old password.
    async with extra_client(app) as elsewhere:
        assert (await login(elsewhere, "forgetful")).status_code == 303

        changed = await client.post(f"/admin/users/{target.id}/role", data={"role": "dispatcher"})
        assert changed.status_code == 200 and "已将 forgetful 的角色改为调度" in changed.text
        [row] = await _audit(client, target.id)
        assert row["changes"] == {"before": {"role": "agent"}, "after": {"role": "dispatcher"}}
        assert row["actor_name"] == "chief2" and row["source"] == "web"
        # The change ends the user's sessions: they log in again, and the agent console is closed to a dispatcher.
        assert (await elsewhere.get("/api/v1/auth/me")).status_code == 401
        assert (await login(elsewhere, "forgetful")).status_code == 303
        assert (await elsewhere.get("/agent", headers={"Accept": "text/html"})).status_code == 403

        weak = await client.post(f"/admin/users/{target.id}/password", data={"password": "short"})
        assert weak.status_code == 422 and "密码至少 8 位" in weak.text
        reset = await client.post(f"/admin/users/{target.id}/password", data={"password": "a-new-secret-pw"})
        assert reset.status_code == 200 and "已重置 forgetful 的密码" in reset.text
        # Old sessions end; the old password stops working, the new one works.
        assert (await elsewhere.get("/api/v1/auth/me")).status_code == 401
    assert (await client.post("/api/v1/auth/token", json={"username": "forgetful",
                                                          "password": TEST_PASSWORD})).status_code == 401
    assert (await client.post("/api/v1/auth/token", json={"username": "forgetful",
                                                          "password": "a-new-secret-pw"})).status_code == 200
    newest = (await _audit(client, target.id))[0]
    assert newest["changes"] == {"before": None, "after": {"password": "(changed)"}}
    assert "a-new-secret-pw" not in str(newest)


async def test_role_and_password_forms_need_the_csrf_token_and_an_admin(app, factory) -> None:
    await factory.user("admin", username="chief3")
    target = await factory.user("agent", username="steady")
    async with extra_client(app) as client:
        await login(client, "chief3")
        del client.headers["X-CSRF-Token"]  # a forged form from another page has no token
        for path, data in [("role", {"role": "admin"}), ("password", {"password": "forged-password-1"})]:
            response = await client.post(f"/admin/users/{target.id}/{path}", data=data)
            assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"
    async with extra_client(app) as client:
        await factory.user("supervisor", username="sup3")
        await login(client, "sup3")
        response = await client.post(f"/admin/users/{target.id}/role", data={"role": "admin"})
        assert response.status_code == 403
    async with extra_client(app) as client:
        await login(client, "steady")
        assert (await client.get("/api/v1/auth/me")).json()["role"] == "agent"


async def test_admin_cannot_change_their_own_role(client, factory) -> None:
    me = await factory.user("admin", username="chief4")
    await login(client, "chief4")
    page = await client.get("/admin/users", headers={"Accept": "text/html"})
    assert f'action="/admin/users/{me.id}/role"' not in page.text  # no form for oneself
    response = await client.post(f"/admin/users/{me.id}/role", data={"role": "agent"})
    assert response.status_code == 422 and "不能修改自己的角色" in response.text
    assert (await client.get("/api/v1/auth/me")).json()["role"] == "admin"
