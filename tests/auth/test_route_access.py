"""Every route declares who may call it; every non-public route answers 401 without
credentials and 403 for each role it does not allow."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute

from gasdesk.auth.access import access_rules_of, iter_routes
from gasdesk.auth.roles import Role
from gasdesk.web.app import domain_static_mounts

# Framework routes that serve documentation or static files, public by design.
FRAMEWORK_PUBLIC = {"/openapi.json", "/static", *domain_static_mounts()}


def _api_routes(app) -> list[APIRoute]:
    return [r for r in iter_routes(app.routes) if isinstance(r, APIRoute)]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_declares_access(app) -> None:
    undeclared = []
    for route in iter_routes(app.routes):
        path = getattr(route, "path", "")
        if isinstance(route, APIRoute | APIWebSocketRoute):
            if not access_rules_of(route):
                undeclared.append(f"{sorted(getattr(route, 'methods', None) or ['WS'])} {path}")
        elif path not in FRAMEWORK_PUBLIC:
            undeclared.append(f"unexpected non-API route {path}")
    assert undeclared == [], f"routes without allow()/public(): {undeclared}"


async def test_non_public_routes_need_credentials(app, client) -> None:
    checked = 0
    for route in _api_routes(app):
        rules = access_rules_of(route)
        if all(rule.is_public for rule in rules):
            continue
        for method in sorted(route.methods):
            response = await client.request(method, _concrete(route.path), headers={"Accept": "application/json"})
            assert response.status_code == 401, f"{method} {route.path} answered {response.status_code}"
            assert response.json()["error"]["code"] in {"not_authenticated", "invalid_token"}
            checked += 1
    assert checked > 10


async def test_disallowed_roles_get_403(app, client, factory) -> None:
    headers = {role: await factory.headers(role.value) for role in Role}
    checked = 0
    for route in _api_routes(app):
        rules = [rule for rule in access_rules_of(route) if not rule.is_public]
        if not rules:
            continue
        allowed = frozenset.intersection(*(rule.roles for rule in rules))
        for role in Role:
            if role in allowed:
                continue
            for method in sorted(route.methods):
                response = await client.request(method, _concrete(route.path), headers=headers[role])
                assert response.status_code == 403, f"{role} {method} {route.path} answered {response.status_code}"
                checked += 1
    assert checked > 10


async def test_bad_token_is_401(client) -> None:
    response = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("path", ["/customers", "/admin/audit", "/admin/users"])
async def test_pages_show_login_form_with_401(client, path) -> None:
    response = await client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert "工作人员登录" in response.text
