"""Finding 7, login: the answer does not tell which usernames exist or which are locked; failures count per
(username, client IP), so an attacker's address is locked out and the real user's is not; a burst of
parallel guesses gets no more tries than a sequence; admins hear about lock-outs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from gasdesk import clock
from gasdesk.audit.models import AuditEntry
from gasdesk.auth.service import LOGIN_REFUSED
from gasdesk.db import sessionmaker
from gasdesk.notifications.models import Notification
from tests.factories import TEST_PASSWORD

ATTACKER_IP = "203.0.113.66"
OFFICE_IP = "198.51.100.10"


@asynccontextmanager
async def client_from(app, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests arrive from ``ip`` (what uvicorn puts into the ASGI scope)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def _lock_out(c: httpx.AsyncClient, username: str) -> None:
    """Five failures in a row from one address, waiting out the growing delays between them."""
    start = clock.utcnow()
    for second in (0, 0, 1, 3, 5):
        clock.set_now(start + timedelta(seconds=second))
        response = await c.post("/api/v1/auth/token", json={"username": username, "password": "guess-guess"})
        assert response.status_code == 401


def _answer(response: httpx.Response) -> tuple[int, object, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "content-length", "x-request-id")}
    return response.status_code, response.json(), headers


async def test_unknown_wrong_inactive_and_locked_get_the_same_answer(app, factory) -> None:
    await factory.user("admin", username="boss")
    await factory.user("agent", username="locked1")
    gone = await factory.user("agent", username="gone")
    admin_headers = await factory.headers("admin")
    async with client_from(app, ATTACKER_IP) as c:
        assert (await c.patch(f"/api/v1/users/{gone.id}", headers=admin_headers,
                              json={"is_active": False})).status_code == 200
        await _lock_out(c, "locked1")
        clock.set_now(clock.utcnow() + timedelta(seconds=10))
        answers = {
            "unknown user": await c.post("/api/v1/auth/token", json={"username": "nobody", "password": "x" * 10}),
            "wrong password": await c.post("/api/v1/auth/token", json={"username": "boss", "password": "x" * 10}),
            "inactive, right password": await c.post("/api/v1/auth/token",
                                                     json={"username": "gone", "password": TEST_PASSWORD}),
            "locked, right password": await c.post("/api/v1/auth/token",
                                                   json={"username": "locked1", "password": TEST_PASSWORD}),
        }
        first = _answer(answers["unknown user"])
        assert first[0] == 401 and first[1] == {"error": {"code": "bad_credentials", "message": LOGIN_REFUSED}}
        for case, response in answers.items():
            assert _answer(response) == first, case

        pages = {}
        for case, username, password in (("unknown", "nobody", "x" * 10), ("wrong", "boss", "x" * 10),
                                         ("locked", "locked1", TEST_PASSWORD)):
            page = await c.post("/login", data={"username": username, "password": password, "next": "/"})
            pages[case] = (page.status_code, page.text.replace(username, "<name>"))
        assert pages["unknown"] == pages["wrong"] == pages["locked"]
        assert pages["locked"][0] == 401 and LOGIN_REFUSED in pages["locked"][1]


async def test_a_locked_out_address_does_not_lock_out_the_admin_elsewhere(app, factory) -> None:
    admin = await factory.user("admin", username="admin")
    other_admin = await factory.user("admin", username="admin2")
    await factory.user("supervisor")
    async with client_from(app, ATTACKER_IP) as attacker, client_from(app, OFFICE_IP) as office:
        await _lock_out(attacker, "admin")
        # the attacker's address is locked even for the right password …
        right = {"username": "admin", "password": TEST_PASSWORD}
        assert (await attacker.post("/api/v1/auth/token", json=right)).status_code == 401
        # … while the admin logs in from the office, by API and by the form
        assert (await office.post("/api/v1/auth/token", json=right)).status_code == 200
        page = await office.post("/login", data={**right, "next": "/admin/users"})
        assert page.status_code == 303 and page.headers["location"] == "/admin/users"
        assert (await office.get("/api/v1/auth/me")).json()["username"] == "admin"

    async with sessionmaker()() as s:
        notes = list(await s.scalars(select(Notification).where(Notification.kind == "security")))
        lockouts = list(await s.scalars(select(AuditEntry).where(AuditEntry.action == "auth.lockout")))
    assert sorted(n.user_id for n in notes) == sorted([admin.id, other_admin.id]), "every admin, nobody else"
    assert all("admin" in n.title and ATTACKER_IP in n.body for n in notes)
    assert len(lockouts) == 1


async def test_unknown_usernames_are_throttled_too(app, factory) -> None:
    """Otherwise "never locks" would reveal that a name does not exist."""
    async with client_from(app, ATTACKER_IP) as c:
        await _lock_out(c, "ghost")
        await factory.user("agent", username="ghost")  # the name now exists, with this password
        response = await c.post("/api/v1/auth/token", json={"username": "ghost", "password": TEST_PASSWORD})
        assert response.status_code == 401, "the pair is still locked out"
    async with sessionmaker()() as s:
        assert await s.scalar(select(func.count()).select_from(Notification)) == 0, "no one to notify for a ghost"


async def test_parallel_guesses_get_no_more_tries_than_sequential_ones(app, factory) -> None:
    await factory.user("agent", username="target")
    clock.set_now(clock.utcnow())  # frozen: no delay ever runs out during the burst
    async with client_from(app, ATTACKER_IP) as c:
        responses = await asyncio.gather(*[
            c.post("/api/v1/auth/token", json={"username": "target", "password": f"guess-{i:04d}"})
            for i in range(12)
        ])
    assert {r.status_code for r in responses} == {401}
    async with sessionmaker()() as s:
        checked = await s.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action.in_(["auth.login_failed", "auth.lockout"])))
    # two free failures, then the third sets a delay that all the others run into
    assert checked == 3


async def test_a_successful_login_clears_only_its_own_address(app, factory) -> None:
    await factory.user("agent", username="shared")
    right = {"username": "shared", "password": TEST_PASSWORD}
    async with client_from(app, ATTACKER_IP) as attacker, client_from(app, OFFICE_IP) as office:
        await _lock_out(attacker, "shared")
        assert (await office.post("/api/v1/auth/token", json=right)).status_code == 200
        assert (await attacker.post("/api/v1/auth/token", json=right)).status_code == 401
