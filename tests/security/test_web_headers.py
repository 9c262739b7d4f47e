"""Finding 7, headers: every response carries CSP, frame rules, nosniff and a referrer policy; staff pages
cannot be framed, the resident chat can (by configuration); the templates hold no inline script the CSP
would block; uploads are served with their verified type, nosniff and a sandbox, files as downloads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gasdesk.channels.webchat.identity import issue_visitor_token
from gasdesk.config import reset_settings_cache
from tests.factories import bot_conversation, login

GASDESK = Path(__file__).resolve().parents[2] / "gasdesk"
# A real PNG header followed by an HTML document: passes the magic-byte check, and an old or sniffing
# browser would render it as a page on our origin if it were served as text/html or sniffable.
POLYGLOT = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 17
            + b"<html><body><script>fetch('/api/v1/users').then(r=>r.text()).then(alert)</script></body></html>")


def _csp(response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] if " " in part else ""
            for part in (p.strip() for p in policy.split(";")) if part}


async def test_staff_pages_and_api_carry_the_headers(client, factory) -> None:
    user = await factory.user("supervisor")
    assert (await login(client, user.username)).status_code == 303
    for path, accept in (("/login", "text/html"), ("/customers", "text/html"), ("/admin/audit", "text/html"),
                         ("/api/v1/auth/me", "application/json"), ("/no-such-page", "text/html"),
                         ("/static/app.js", "*/*")):
        response = await client.get(path, headers={"Accept": accept})
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["referrer-policy"] == "same-origin", path
        csp = _csp(response)
        assert csp["frame-ancestors"] == "'none'", path
        assert csp["script-src"] == "'self'", path  # no inline script, no eval
        assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'" and csp["form-action"] == "'self'"


async def test_chat_is_frameable_by_configuration(client, monkeypatch: pytest.MonkeyPatch) -> None:
    response = await client.get("/chat")
    assert response.status_code == 200 and "x-frame-options" not in response.headers
    # any site may embed it (no frame-ancestors at all: "*" would still refuse about:blank or file: parents)
    assert "frame-ancestors" not in _csp(response) and _csp(response)["script-src"] == "'self'"

    monkeypatch.setenv("GASDESK_CHAT_FRAME_ANCESTORS", "https://www.example-gas.cn")
    reset_settings_cache()
    import httpx

    from gasdesk.web.app import create_app

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://testserver") as c:
        assert _csp(await c.get("/chat"))["frame-ancestors"] == "https://www.example-gas.cn"
        assert _csp(await c.get("/login"))["frame-ancestors"] == "'none'"


async def test_swagger_docs_are_served_locally_under_the_strict_policy(client) -> None:
    """/docs loads the vendored Swagger UI (no CDN: it works offline) and so needs no looser CSP."""
    response = await client.get("/docs", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.headers["x-frame-options"] == "DENY"
    csp = _csp(response)
    assert csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert re.findall(r'(?:src|href)="(https?://[^"]+)"', response.text) == []
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text):
        assert (await client.get(asset)).status_code == 200, asset
    assert (await client.get("/redoc")).status_code == 404  # FastAPI's CDN pages are off


def test_templates_have_no_inline_script_the_csp_would_block() -> None:
    offenders = []
    for template in GASDESK.rglob("templates/*.html"):
        text = template.read_text()
        # A JSON data block (the socket client's constants) is not run, so the CSP does not apply to it.
        for match in re.finditer(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", text):
            offenders.append(f"{template.name}: {match.group(0)}")
        for match in re.finditer(r"\son[a-z]+\s*=", text):
            offenders.append(f"{template.name}: inline handler {match.group(0).strip()}")
        offenders += [f"{template.name}: javascript: URL" for _ in re.finditer(r"javascript:", text)]
    for script in GASDESK.rglob("static/*.js"):
        if re.search(r"\beval\(|new Function\(", script.read_text()):
            offenders.append(f"{script.name}: eval")
    assert offenders == []


async def test_https_deployments_get_hsts(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from gasdesk.config import Settings
    from gasdesk.web.app import create_app

    app = create_app(Settings(cookie_secure=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as c:
        assert (await c.get("/healthz")).headers["strict-transport-security"].startswith("max-age=")


async def _upload(client, session, name: str, data: bytes) -> tuple[str, str]:
    visitor_id, token = issue_visitor_token()
    conversation = await bot_conversation(session, visitor_id=visitor_id)
    response = await client.post("/api/v1/webchat/uploads", params={"conversation_id": conversation.id}, headers={"X-Visitor-Token": token},
                                 files={"file": (name, data, "text/html")})  # the client's claimed type is ignored
    assert response.status_code == 201, response.text
    return response.json()["url"], token


async def test_png_with_appended_html_is_served_as_an_image_that_cannot_run(client, session) -> None:
    url, token = await _upload(client, session, "meter.png", POLYGLOT)
    response = await client.get(url, params={"v": token})
    assert response.status_code == 200 and response.content == POLYGLOT
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline")
    csp = _csp(response)
    assert "sandbox" in csp and csp["default-src"] == "'none'" and "script-src" not in csp
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(("name", "data", "mime"), [
    ("说明.txt", b"<html><script>alert(document.cookie)</script></html>", "text/plain"),
    ("bill.pdf", b"%PDF-1.7\n<html><script>alert(1)</script>", "application/pdf"),
])
async def test_other_files_are_downloads_with_their_verified_type(client, session, name, data, mime) -> None:
    url, token = await _upload(client, session, name, data)
    response = await client.get(url, params={"v": token})
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"].split(";")[0] == mime
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff" and "sandbox" in _csp(response)
