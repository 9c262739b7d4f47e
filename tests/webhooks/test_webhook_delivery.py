"""Outbound webhooks: signing, delivery to a real local HTTP server, retries with backoff, the admin API."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import select

from gasdesk import clock
from gasdesk.config import reset_settings_cache
from gasdesk.db import commit
from gasdesk.jobs.models import Job
from gasdesk.jobs.queue import backoff, run_due_jobs
from gasdesk.webhooks import service as webhooks
from gasdesk.webhooks.models import WebhookDelivery
from gasdesk.webhooks.service import do_create_endpoint, sign, verify
from tests.factories import staff_user, wo_actor, wo_headers, wo_ticket

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
EVENTS = ["ticket.created", "ticket.updated", "appointment.booked", "followup.completed"]


def test_sign_and_verify() -> None:
    body = b'{"event":"ticket.created"}'
    signature = sign("whsec_k", "1700000000", body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify("whsec_k", "1700000000", body, signature)
    assert not verify("whsec_k", "1700000001", body, signature)
    assert not verify("whsec_other", "1700000000", body, signature)
    assert not verify("whsec_k", "1700000000", body + b" ", signature)


class Receiver:
    """A tiny real HTTP server on 127.0.0.1 in a thread; answers with the next queued status code."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"boom")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch):
    # The receiver is on loopback, which webhooks refuse unless the configuration allows the host.
    monkeypatch.setenv("GASDESK_WEBHOOK_ALLOW_PRIVATE_HOSTS", "127.0.0.1")
    reset_settings_cache()
    r = Receiver()
    yield r
    r.close()


async def _endpoint(session, url: str, events: list[str] | None = None):
    endpoint, secret = await do_create_endpoint(session, wo_actor(), name="营收系统", url=url,
                                                events=events or EVENTS)
    await commit(session)
    return endpoint, secret


async def _deliveries(session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def _check_signed(request: tuple[dict[str, str], bytes], secret: str, event: str) -> dict:
    headers, body = request
    assert headers["content-type"] == "application/json" and headers["x-gasdesk-event"] == event
    assert headers["user-agent"] == "gasdesk-webhooks/1"
    assert verify(secret, headers["x-gasdesk-timestamp"], body, headers["x-gasdesk-signature"])
    payload = json.loads(body)
    assert payload["event"] == event and payload["id"] == headers["x-gasdesk-delivery"]
    return payload


async def test_all_four_events_are_delivered_signed(session, factory, receiver) -> None:
    from gasdesk.appointments.service import book_appointment, do_generate_slots
    from gasdesk.followups.models import FollowUpSurvey
    from gasdesk.followups.service import dispatch_due, do_answer_followup
    from gasdesk.tickets.service import do_ticket_action

    clock.set_now(T0)
    _, secret = await _endpoint(session, receiver.url)
    crew = await staff_user(session, "field_crew")
    ticket = await wo_ticket(session, "repair", description="燃气表漏气")
    await do_ticket_action(session, wo_actor(), ticket, "assign", crew_id=crew.id)
    await do_ticket_action(session, wo_actor(), ticket, "resolve")
    await commit(session)
    customer = await factory.customer()
    from datetime import date

    await do_generate_slots(session, district="朝阳区", first_day=date(2026, 12, 8), days=1,
                            windows=[("09:00", "12:00")], capacity=2)
    await commit(session)
    from gasdesk.appointments.models import AppointmentSlot

    slot = await session.scalar(select(AppointmentSlot))
    await book_appointment(session, wo_actor(), customer_id=customer.id, service_code="安检", slot_id=slot.id)
    await commit(session)
    survey = await session.scalar(select(FollowUpSurvey).where(FollowUpSurvey.ticket_id == ticket.id))
    await do_answer_followup(session, survey.id, score=5, solved=True)
    await commit(session)
    await dispatch_due(session)
    assert await run_due_jobs() >= 6

    got = [json.loads(body)["event"] for _, body in receiver.requests]
    assert got.count("ticket.created") == 2 and got.count("ticket.updated") == 2
    assert got.count("appointment.booked") == 1 and got.count("followup.completed") == 1
    by_event = {}
    for request in receiver.requests:
        payload = _check_signed(request, secret, json.loads(request[1])["event"])
        by_event.setdefault(payload["event"], []).append(payload)
    assert by_event["ticket.created"][0]["data"]["number"] == ticket.number
    assert [p["data"]["status"] for p in by_event["ticket.updated"]] == ["assigned", "resolved"]
    assert by_event["appointment.booked"][0]["data"]["service"] == "安检"
    assert by_event["followup.completed"][0]["data"]["score"] == 5
    deliveries = await _deliveries(session)
    assert len(deliveries) == 6 and {d.status for d in deliveries} == {"delivered"}
    assert all(d.attempts == 1 and d.last_status_code == 200 for d in deliveries)


async def test_subscription_filter_and_rollback(session, receiver) -> None:
    await _endpoint(session, receiver.url, ["ticket.updated"])
    await wo_ticket(session, "repair")
    assert await _deliveries(session) == []
    from gasdesk.db import rollback
    from gasdesk.tickets.schemas import TicketCreate
    from gasdesk.tickets.service import do_create_ticket

    await _endpoint(session, receiver.url, ["ticket.created"])
    await do_create_ticket(session, wo_actor(), TicketCreate(type="repair"))
    await rollback(session)
    assert await _deliveries(session) == []
    assert await run_due_jobs() == 0 and receiver.requests == []


async def test_failing_endpoint_is_retried_with_backoff(session, receiver) -> None:
    clock.set_now(T0)
    receiver.statuses = [500, 503]
    endpoint, secret = await _endpoint(session, receiver.url, ["ticket.created"])
    await wo_ticket(session, "gas_leak")
    assert await run_due_jobs() == 1
    [d] = await _deliveries(session)
    assert (d.status, d.attempts, d.last_status_code, d.last_error) == ("pending", 1, 500, "boom")
    assert d.next_attempt_at == T0 + backoff(1) == T0 + timedelta(seconds=30)

    clock.set_now(T0 + timedelta(seconds=29))
    assert await run_due_jobs() == 0
    clock.set_now(T0 + timedelta(seconds=30))
    assert await run_due_jobs() == 1
    [d] = await _deliveries(session)
    assert (d.attempts, d.last_status_code, d.next_attempt_at) == (2, 503, T0 + timedelta(seconds=30) + backoff(2))

    # the receiver goes away: connection refused
    endpoint.url = "http://127.0.0.1:9/hook"
    await commit(session)
    clock.set_now(d.next_attempt_at)
    assert await run_due_jobs() == 1
    [d] = await _deliveries(session)
    assert d.attempts == 3 and d.last_status_code is None and "ConnectError" in d.last_error

    # back again: delivered, with the same delivery id and a valid signature
    endpoint.url = receiver.url
    await commit(session)
    clock.set_now(d.next_attempt_at)
    assert await run_due_jobs() == 1
    [d] = await _deliveries(session)
    assert (d.status, d.attempts, d.last_status_code, d.last_error) == ("delivered", 4, 200, None)
    ids = {headers["x-gasdesk-delivery"] for headers, _ in receiver.requests}
    assert ids == {d.event_id} and len(receiver.requests) == 3
    _check_signed(receiver.requests[-1], secret, "ticket.created")


async def test_gives_up_after_eight_attempts(session) -> None:
    calls: list[httpx.Request] = []

    def always_500(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, text="down")

    clock.set_now(T0)
    webhooks._transport = httpx.MockTransport(always_500)
    try:
        await _endpoint(session, "https://erp.example.com/hooks", ["ticket.created"])
        await wo_ticket(session, "repair")
        now = T0
        for attempt in range(1, 9):
            assert await run_due_jobs() == 1, attempt
            [d] = await _deliveries(session)
            assert d.attempts == attempt
            if attempt < 8:
                assert d.status == "pending" and d.next_attempt_at == now + backoff(attempt)
                now = d.next_attempt_at
                clock.set_now(now)
        assert (d.status, d.next_attempt_at, d.last_status_code) == ("failed", None, 500)
        clock.set_now(now + timedelta(days=2))
        assert await run_due_jobs() == 0
        assert len(calls) == 8
        jobs = list(await session.scalars(select(Job).where(Job.name == "webhooks.deliver")))
        assert len(jobs) == 8 and {j.status for j in jobs} == {"done"}
    finally:
        webhooks._transport = None


async def test_admin_api(client, factory, session) -> None:
    clock.set_now(T0)
    admin_headers = await wo_headers(factory, await staff_user(session, "admin"))
    r = await client.post("/api/v1/webhooks", headers=admin_headers,
                          json={"name": "营收", "url": "https://erp.example.com/hook", "events": ["ticket.created"]})
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    for body in ({"url": "ftp://erp.example.com/hook"}, {"url": "https://erp.example.com", "events": ["ticket.deleted"]},
                 {"url": "https://erp.example.com", "events": []}, {"url": "x"}):
        r = await client.post("/api/v1/webhooks", headers=admin_headers, json=body)
        assert r.status_code == 422, body
    r = await client.get("/api/v1/webhooks", headers=admin_headers)
    assert [e["url"] for e in r.json()] == ["https://erp.example.com/hook"] and "secret" not in r.json()[0]
    webhooks._transport = httpx.MockTransport(lambda request: httpx.Response(502, text="bad gateway"))
    try:
        await wo_ticket(session, "repair")
        await run_due_jobs()
    finally:
        webhooks._transport = None
    r = await client.get("/api/v1/webhooks/deliveries", headers=admin_headers)
    [row] = r.json()
    assert (row["event"], row["status"], row["attempts"], row["last_status_code"]) == ("ticket.created", "pending", 1, 502)
    r = await client.get("/api/v1/webhooks/deliveries", params={"status": "delivered"}, headers=admin_headers)
    assert r.json() == []
    for role in ("supervisor", "agent", "dispatcher"):
        headers = await wo_headers(factory, await staff_user(session, role))
        assert (await client.get("/api/v1/webhooks", headers=headers)).status_code == 403
        assert (await client.get("/api/v1/webhooks/deliveries", headers=headers)).status_code == 403
        r = await client.post("/api/v1/webhooks", headers=headers, json={"url": "https://x.example.com/h"})
        assert r.status_code == 403
