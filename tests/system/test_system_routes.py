"""Health, readiness, the landing page and the error shape for unknown paths."""

from __future__ import annotations

import base64

import pytest

from gasdesk.config import reset_settings_cache
from gasdesk.system.api import DEMO_LOGINS
from gasdesk.web.app import create_app
from tests.factories import extra_client


async def test_healthz(client) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz(client) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}


async def test_index_lists_consoles_and_demo_logins(client) -> None:
    response = await client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    for href in ["/customers", "/admin/users", "/admin/audit", "/docs"]:
        assert f'href="{href}"' in response.text
    assert "客户查询" in response.text and "审计日志" in response.text
    assert "演示账号" in response.text
    for username, password, _label in DEMO_LOGINS:
        assert username in response.text and password in response.text


async def test_index_hides_demo_logins_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GASDESK_ENV", "production")
    monkeypatch.setenv("GASDESK_SECRET_KEY", "p" * 40)
    monkeypatch.setenv("GASDESK_DATA_KEY", base64.urlsafe_b64encode(b"production-data-key-32-bytes-ok!").decode())
    monkeypatch.setenv("GASDESK_COOKIE_SECURE", "true")
    reset_settings_cache()
    app = create_app()
    async with extra_client(app) as client:
        response = await client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "客户查询" in response.text
    assert "演示账号" not in response.text
    for _username, password, _label in DEMO_LOGINS:
        assert password not in response.text


@pytest.mark.parametrize("path", ["/no/such/page", "/api/v1/nothing-here", "/api/v1/customers/1/nope"])
async def test_unknown_path_is_404_json(client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": {"code": "http_404", "message": "页面或资源不存在"}}


async def test_unknown_path_in_browser_is_an_error_page(client) -> None:
    response = await client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status_code == 404 and "页面或资源不存在" in response.text


async def test_wrong_method_is_405_json(client) -> None:
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "http_405"
