"""Finding 7, webhook SSRF: an admin (or whoever stole an admin session) cannot point webhooks at the
server's own network — not when saving the URL, and not at delivery time when a name resolves elsewhere."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.jobs.queue import run_due_jobs
from gasdesk.webhooks.models import WebhookDelivery, WebhookEndpoint
from gasdesk.webhooks.service import do_create_endpoint
from tests.factories import wo_actor, wo_ticket

INTERNAL = [
    "http://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/hook",
    "http://192.168.1.1/", "http://172.16.0.9:8080/x", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/",
    "http://[fe80::1]/", "http://0.0.0.0:8000/", "http://100.64.0.1/", "http://224.0.0.1/", "http://240.0.0.1/",
    "http://localhost:8000/hook", "http://2130706433/", "http://127.1/", "http://0x7f000001/",
]


class Receiver:
    """A real HTTP server on loopback: what an internal service would be."""

    def __init__(self) -> None:
        self.hits = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                receiver.hits += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def internal_service():
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_targets_are_refused_when_saved(client, factory, session, url: str) -> None:
    admin = await factory.headers("admin")
    response = await client.post("/api/v1/webhooks", headers=admin, json={"url": url, "events": ["ticket.created"]})
    assert response.status_code == 422, url
    assert response.json()["error"]["code"] == "webhook_target_blocked"
    assert await session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


async def test_public_targets_and_unresolvable_names_are_accepted(client, factory) -> None:
    admin = await factory.headers("admin")
    for url in ("https://93.184.216.34/hook", "https://erp.invalid/hook"):  # the name is checked at delivery
        response = await client.post("/api/v1/webhooks", headers=admin, json={"url": url})
        assert response.status_code == 201, url


async def test_the_allow_list_lets_a_named_internal_host_through(client, factory, monkeypatch) -> None:
    monkeypatch.setenv("GASDESK_WEBHOOK_ALLOW_PRIVATE_HOSTS", "10.1.2.3, erp.internal")
    reset_settings_cache()
    admin = await factory.headers("admin")
    assert (await client.post("/api/v1/webhooks", headers=admin, json={"url": "http://10.1.2.3/hook"})).status_code == 201
    assert (await client.post("/api/v1/webhooks", headers=admin, json={"url": "http://10.1.2.4/hook"})).status_code == 422


async def test_delivery_checks_again_and_never_connects_inside(session, internal_service, monkeypatch) -> None:
    # saved while allowed (or before this check existed, or the name pointed elsewhere then) …
    monkeypatch.setenv("GASDESK_WEBHOOK_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    reset_settings_cache()
    await do_create_endpoint(session, wo_actor(), name="allowed then", url=f"http://127.0.0.1:{internal_service.port}/h",
                             events=["ticket.created"])
    session.add(WebhookEndpoint(name="name that resolves inside", url=f"http://localhost:{internal_service.port}/h",
                                secret="whsec_x", events=["ticket.created"], active=True))
    await commit(session)
    # … but not allowed now
    monkeypatch.delenv("GASDESK_WEBHOOK_ALLOW_PRIVATE_HOSTS")
    reset_settings_cache()
    await wo_ticket(session, "repair")
    assert await run_due_jobs() == 2
    session.expire_all()
    deliveries = list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    assert len(deliveries) == 2
    for d in deliveries:
        assert d.status == "pending" and d.last_status_code is None and "回环地址" in d.last_error, d.last_error
    assert internal_service.hits == 0, "no request reached the internal service"

    # allowed again by configuration: delivered
    monkeypatch.setenv("GASDESK_WEBHOOK_ALLOW_PRIVATE_HOSTS", "127.0.0.1,localhost")
    reset_settings_cache()
    for d in deliveries:
        d.next_attempt_at = None
    from gasdesk.webhooks.service import attempt_delivery

    for d in deliveries:
        assert await attempt_delivery(session, d)
    await commit(session)
    assert internal_service.hits == 2
