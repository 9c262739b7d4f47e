"""User administration through the API and the admin page."""

from __future__ import annotations

import pytest

from tests.factories import TEST_PASSWORD, login


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
