"""The two upload pages work from a browser session: the crew write-back and the KB import. Their routes
read the body only after authorising (web/uploads.py), so the session's CSRF check must not read it first
(that consumed the stream: a 500 for every crew write-back with photos and every KB import from the page).
The form sends the token as its hidden ``csrf_token`` field like every other form; ``read_upload_form``
checks it once the parts are parsed. No token travels in a URL (URLs reach logs and Referer headers)."""

from __future__ import annotations

import re

import httpx

from gasdesk.tickets.models import Ticket
from tests.factories import login, page_csrf_token, staff_user, wo_reload, wo_ticket

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")
HTML = {"Accept": "text/html"}


def _browser(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://testserver")


async def _log_in(client: httpx.AsyncClient, username: str) -> str:
    await login(client, username)
    token = await page_csrf_token(client)
    del client.headers["X-CSRF-Token"]  # a plain HTML form sends no header
    return token


def _hidden_token(html: str, form_marker: str) -> str:
    """The hidden ``csrf_token`` field of the multipart form whose opening tag contains ``form_marker``."""
    form = re.search(r'<form[^>]*' + re.escape(form_marker) + r'[^>]*enctype="multipart/form-data"[^>]*>(.*?)</form>',
                     html, re.S)
    assert form is not None
    return re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)"', form.group(1)).group(1)


async def test_crew_writeback_form_with_photos_works_from_the_page(app, session) -> None:
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", status="in_progress", crew_id=crew.id)
    async with _browser(app) as client:
        token = await _log_in(client, crew.username)
        page = await client.get(f"/crew/tickets/{ticket.id}", headers=HTML)
        action = re.search(r'<form class="writeback" method="post" action="([^"]+)"', page.text).group(1)
        assert action == f"/crew/tickets/{ticket.id}/writeback"
        assert _hidden_token(page.text, "writeback") == token
        form = {"csrf_token": token, "result": "更换表后阀门", "resolved": "on", "signature_name": "刘芳",
                "material_name": "表后阀门", "material_qty": "1"}
        photo = {"photos": ("valve.png", PNG, "image/png")}
        without_token = {k: v for k, v in form.items() if k != "csrf_token"}
        for forged_form, query in ((without_token, {}), ({**form, "csrf_token": "x"}, {}),
                                   (without_token, {"csrf_token": token})):  # a token in the URL counts for nothing
            refused = await client.post(action, params=query, data=forged_form, files=photo, headers=HTML)
            assert refused.status_code == 403 and "安全令牌" in refused.text
        assert (await wo_reload(Ticket, ticket.id)).status == "in_progress"
        done = await client.post(action, data=form, files=photo, headers=HTML)
        assert done.status_code == 303, done.text[:300]
    saved = await wo_reload(Ticket, ticket.id)
    assert saved.status == "resolved"


async def test_kb_import_form_works_from_the_page(app, factory) -> None:
    await factory.user("supervisor", username="kbeditor")
    csv = "标题,问法,答案,分类\n停气通知在哪看,哪里看停气通知,在网站公告栏,停气\n".encode()
    async with _browser(app) as client:
        token = await _log_in(client, "kbeditor")
        page = await client.get("/admin/kb/import", headers=HTML)
        action = re.search(r'action="(/admin/kb/import[^"]*)"', page.text).group(1)
        assert action == "/admin/kb/import"
        assert _hidden_token(page.text, "/admin/kb/import") == token
        refused = await client.post(action, files={"file": ("kb.csv", csv, "text/csv")}, headers=HTML)
        assert refused.status_code == 403 and "安全令牌" in refused.text
        response = await client.post(action, data={"csrf_token": token},
                                     files={"file": ("kb.csv", csv, "text/csv")}, headers=HTML)
        assert response.status_code == 200, response.text[:300]
        assert "新建 1 条" in response.text
