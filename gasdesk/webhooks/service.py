"""Publishing events to webhook endpoints.

Request: ``POST url`` with JSON body ``{"id", "event", "created_at", "data"}`` and headers
``X-Gasdesk-Event``, ``X-Gasdesk-Delivery`` (id, stable across retries — receivers dedupe on it),
``X-Gasdesk-Timestamp`` and ``X-Gasdesk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``.
Any 2xx is success; anything else is retried with exponential backoff (jobs queue), up to 8 attempts.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.errors import InvalidInput
from gasdesk.event_types import webhook_spec
from gasdesk.jobs.queue import backoff, enqueue
from gasdesk.security.outbound import CheckedTransport, check_public_url
from gasdesk.security.pii import redact_pii
from gasdesk.webhooks.models import EVENTS, WebhookDelivery, WebhookEndpoint

MAX_ATTEMPTS = 8
TIMEOUT_S = 10.0
_transport: httpx.AsyncBaseTransport | None = None  # tests point this at a local server or MockTransport


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """For receivers (and tests): constant-time check of a delivery's signature."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


async def check_url(url: str) -> str:
    """An http(s) URL that is not, and does not resolve to, an internal address (unless allowed)."""
    if not url.startswith(("http://", "https://")) or len(url) > 500:
        raise InvalidInput("Webhook 地址必须以 http:// 或 https:// 开头", code="invalid_webhook_url")
    return await check_public_url(url, get_settings().webhook_allow_private_hosts)


def check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise InvalidInput(f"事件类型无效: {unknown or '空'}；可选: {', '.join(EVENTS)}", code="invalid_webhook_events")
    return list(dict.fromkeys(events))


async def do_create_endpoint(session: AsyncSession, actor: Actor, *, name: str, url: str,
                             events: list[str]) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its secret (shown once)."""
    secret = "whsec_" + secrets.token_urlsafe(24)
    endpoint = WebhookEndpoint(name=name.strip()[:60] or url, url=await check_url(url), secret=secret,
                               events=check_events(events), active=True)
    session.add(endpoint)
    await session.flush()
    record_audit(session, actor, "config.webhook", "config", f"webhook:{endpoint.id}",
                 after={"name": endpoint.name, "url": endpoint.url, "events": endpoint.events})
    return endpoint, secret


@functools.cache
def _body_schema(data_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(data_type)


async def publish(session: AsyncSession, event: str, data: Mapping[str, Any]) -> list[WebhookDelivery]:
    """Queue ``event`` for every active endpoint subscribed to it (inside the current transaction).

    ``event`` must be declared as a webhook event in ``gasdesk/event_types.py`` and ``data`` must match its
    declared body (UnknownEventType, ValidationError: programming errors)."""
    _body_schema(webhook_spec(event).webhook).validate_python(data, strict=True)
    endpoints = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))
    deliveries = []
    event_id = "evt_" + uuid.uuid4().hex[:20]
    body = {"id": event_id, "event": event, "created_at": utcnow().isoformat(), "data": dict(data)}
    for endpoint in endpoints:
        if event not in (endpoint.events or []):
            continue
        delivery = WebhookDelivery(endpoint_id=endpoint.id, event=event, event_id=event_id, payload=body,
                                   status="pending", attempts=0, created_at=utcnow())
        session.add(delivery)
        await session.flush()
        enqueue(session, "webhooks.deliver", {"delivery_id": delivery.id}, max_attempts=1)
        deliveries.append(delivery)
    return deliveries


async def attempt_delivery(session: AsyncSession, delivery: WebhookDelivery) -> bool:
    """One HTTP attempt; on failure schedules the next one (or gives up after MAX_ATTEMPTS)."""
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or not endpoint.active:
        delivery.status, delivery.last_error = "failed", "endpoint removed or disabled"
        return False
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = str(int(utcnow().timestamp()))
    headers = {"Content-Type": "application/json", "X-Gasdesk-Event": delivery.event,
               "X-Gasdesk-Delivery": delivery.event_id, "X-Gasdesk-Timestamp": timestamp,
               "X-Gasdesk-Signature": sign(endpoint.secret, timestamp, body), "User-Agent": "gasdesk-webhooks/1"}
    delivery.attempts += 1
    # Checked again at every connection: the name may resolve elsewhere now than when it was saved.
    transport = _transport or CheckedTransport(get_settings().webhook_allow_private_hosts)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S, transport=transport) as client:
            response = await client.post(endpoint.url, content=body, headers=headers)
        delivery.last_status_code = response.status_code
        ok = 200 <= response.status_code < 300
        delivery.last_error = None if ok else redact_pii(response.text[:500])  # receivers echo payloads
    except httpx.HTTPError as exc:
        ok = False
        delivery.last_status_code = None
        delivery.last_error = redact_pii(f"{type(exc).__name__}: {exc}"[:500])
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", utcnow(), None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delivery.next_attempt_at = utcnow() + backoff(delivery.attempts)
        enqueue(session, "webhooks.deliver", {"delivery_id": delivery.id}, run_at=delivery.next_attempt_at,
                max_attempts=1)
    return ok


async def deliver_job(session: AsyncSession, payload: dict[str, Any]) -> None:
    delivery = await session.get(WebhookDelivery, int(payload["delivery_id"]))
    if delivery is not None and delivery.status == "pending":
        await attempt_delivery(session, delivery)
