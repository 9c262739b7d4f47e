"""Every GET route, walked as every demo role on the demo data: no server error anywhere. A page a role may
not open, or a missing object, is a Chinese 403/404 page with the normal header; each role lands on its own
console after login and its nav offers only what it may open."""

from __future__ import annotations

import re

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import select

from gasdesk.auth.access import iter_routes
from gasdesk.auth.roles import ROLE_LABELS, Role
from gasdesk.customers.models import Customer
from gasdesk.kb.models import KbArticle
from gasdesk.seed.demo import seed_demo_data
from gasdesk.system.api import DEMO_LOGINS
from gasdesk.web.navigation import CONSOLES, page_roles, public_pages
from tests.factories import bot_conversation, extra_client, page_csrf_token, wo_ticket

HTML = {"Accept": "text/html,application/xhtml+xml"}
MISSING = "99999"
# Framework routes that are not APIRoutes.
EXTRA_PAGES = ["/openapi.json"]


def _demo_login(role: Role) -> tuple[str, str]:
    username, password, _label = next(d for d in DEMO_LOGINS if d[2] == ROLE_LABELS[role])
    return username, password


async def _log_in(client: httpx.AsyncClient, role: Role) -> None:
    username, password = _demo_login(role)
    response = await client.post("/login", data={"username": username, "password": password, "next": "/"})
    assert response.status_code == 303, response.text
    client.headers["X-CSRF-Token"] = await page_csrf_token(client)


def _fill(path: str, ids: dict[str, str]) -> list[str]:
    """The path with existing objects and, for each parameter, with a missing one."""
    names = re.findall(r"\{([^}:]+)(?::[^}]*)?\}", path)
    if not names:
        return [path]
    existing = path
    missing = path
    for name in names:
        existing = re.sub(r"\{" + name + r"(?::[^}]*)?\}", ids.get(name, MISSING), existing)
        missing = re.sub(r"\{" + name + r"(?::[^}]*)?\}", MISSING, missing)
    return sorted({existing, missing})


async def _demo_ids(session) -> dict[str, str]:
    customer = await session.scalar(select(Customer).order_by(Customer.id).limit(1))
    article = await session.scalar(select(KbArticle).order_by(KbArticle.id).limit(1))
    conversation = await bot_conversation(session, customer_id=customer.id)
    ticket = await wo_ticket(session, "repair", customer_id=customer.id)
    return {"customer_id": str(customer.id), "article_id": str(article.id), "ticket_id": str(ticket.id),
            "conversation_id": str(conversation.id), "token": "no-such-file"}


async def test_every_get_route_as_every_role_has_no_server_error(app, session) -> None:
    await seed_demo_data(customers=12)
    ids = await _demo_ids(session)
    paths = [p for route in iter_routes(app.routes) if isinstance(route, APIRoute) and "GET" in route.methods
             for p in _fill(route.path, ids)] + EXTRA_PAGES
    failures: list[str] = []
    checked = 0
    for role in Role:
        # A server error comes back as a 500 response (collected below), not as a raised exception.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await _log_in(client, role)
            for path in paths:
                page = not path.startswith("/api/")
                response = await client.get(path, headers=HTML if page else {"Accept": "application/json"})
                checked += 1
                status = response.status_code
                if status >= 500 or status == 401:
                    failures.append(f"{role} GET {path} -> {status}")
                    continue
                if page and status in (403, 404) and "text/html" in response.headers.get("content-type", ""):
                    text = response.text
                    # A Chinese error page with the normal header: the user's name and their nav.
                    if '<html lang="zh-CN">' not in text or "出错了" not in text or "退出" not in text:
                        failures.append(f"{role} GET {path} -> {status} without the Chinese error page")
                    elif not re.search(r'<p class="error">[^<]*[\u4e00-\u9fff]', text):
                        failures.append(f"{role} GET {path} -> {status} without a Chinese reason")
                elif page and status not in (200, 303, 403, 404, 422):
                    failures.append(f"{role} GET {path} -> {status}")
    assert failures == [], "\n".join(failures)
    assert checked > 5 * 50


async def test_forbidden_and_missing_pages_are_proper_pages(app, factory) -> None:
    """The cases the review hit in a browser: each one was a bare "Internal Server Error"."""
    cases = {
        "supervisor": [("/admin/users", 403), ("/admin/webhooks", 403), ("/crew", 403)],
        "admin": [("/tickets/99999", 404), ("/customers/99999", 404), ("/admin/kb/99999", 404)],
        "field_crew": [("/tickets", 403), ("/agent", 403), ("/crew/tickets/99999", 404)],
        "dispatcher": [("/agent", 403), ("/admin/audit", 403)],
        "agent": [("/dispatch", 403), ("/crew", 403)],
        "wall": [("/agent", 403), ("/tickets", 403), ("/admin/users", 403), ("/notifications", 403)],
    }
    for role, pages in cases.items():
        user = await factory.user(role)
        async with extra_client(app) as client:
            await client.post("/login", data={"username": user.username, "password": "correct-horse-battery"})
            for path, status in pages:
                response = await client.get(path, headers=HTML)
                assert response.status_code == status, f"{role} {path}: {response.status_code}"
                assert "出错了" in response.text and user.display_name in response.text, f"{role} {path}"


async def test_each_role_lands_on_its_own_console(app, factory) -> None:
    expected = {"agent": "/agent", "dispatcher": "/dispatch", "field_crew": "/crew", "supervisor": "/",
                "admin": "/", "wall": "/wall"}
    for role, target in expected.items():
        user = await factory.user(role)
        async with extra_client(app) as client:
            response = await client.post("/login", data={"username": user.username,
                                                         "password": "correct-horse-battery", "next": "/"})
            assert response.status_code == 303 and response.headers["location"] == target, role
            landing = await client.get(target, headers=HTML)
            assert landing.status_code == 200, role
            # A page the user was sent away from still wins over the landing page.
            again = await client.post("/login", data={"username": user.username,
                                                      "password": "correct-horse-battery", "next": "/tickets/5"})
            assert again.headers["location"] == "/tickets/5"


async def test_nav_and_landing_offer_only_what_the_role_may_open(app, factory) -> None:
    table = page_roles(app)
    for role in Role:
        user = await factory.user(role.value)
        async with extra_client(app) as client:
            await client.post("/login", data={"username": user.username, "password": "correct-horse-battery"})
            landing = await client.get("/", headers=HTML)
            nav = re.search(r'<nav aria-label="主导航"[^>]*>(.*?)</nav>', landing.text, re.S).group(1)
            offered = set(re.findall(r'href="([^"]+)"', nav))
            allowed = {c.href for c in CONSOLES if role in table[c.href]}
            assert offered == allowed, role
            cards = set(re.findall(r'<a class="card console-card" href="([^"]+)"', landing.text))
            assert cards - {p.href for p in public_pages()} == allowed, role
            for href in offered:
                opened = await client.get(href, headers=HTML)
                assert opened.status_code == 200, f"{role} is offered {href} but gets {opened.status_code}"
    # The rule comes from the routes: supervisors may not open user administration, crews only their page.
    assert Role.supervisor not in table["/admin/users"] and table["/crew"] == {Role.field_crew}
