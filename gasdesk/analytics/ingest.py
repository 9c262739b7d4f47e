"""The analytics consumer of the event bus: committed events become facts, off the request path.

``on_event`` (subscribed by ``worker.register_handlers``) only appends the event to this process's pending
list and makes sure one writer task is running: the agent's request, which runs the after-commit callbacks
before it answers, never waits for a fact. The writer takes everything pending and writes its facts in one
short transaction of its own. When that fails (the database busy or gone), the events are put in a job
(``analytics.ingest``) for the worker to retry with back-off; nothing is raised to anyone. Writing is
idempotent (``facts.write_facts``), so a retry, or the copy every process receives over Redis, adds nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.analytics.facts import BUILDERS, FactIn, facts_of, write_facts
from gasdesk.db import transaction
from gasdesk.events import Event, bus
from gasdesk.jobs.queue import enqueue

log = logging.getLogger(__name__)

JOB = "analytics.ingest"
MAX_BATCH = 500

_pending: list[dict[str, Any]] = []
_writer: asyncio.Task[None] | None = None
_unsubscribe: Any = None


def subscribe() -> None:
    """Put ``on_event`` on this process's bus (idempotent; ``worker.register_handlers`` calls it)."""
    global _unsubscribe
    if _unsubscribe is None:
        _unsubscribe = bus.subscribe(on_event)


def on_event(event: Event) -> None:
    """Bus subscriber: note an event that analytics counts; the writer task stores its facts."""
    global _writer
    if event.type not in BUILDERS:
        return
    _pending.append({"type": event.type, "payload": event.payload, "at": event.at})
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no running loop (a synchronous caller): the next event's task takes these too
        return
    if _writer is None or _writer.done() or _writer.get_loop() is not loop:
        _writer = loop.create_task(_write_pending(), name="analytics.ingest")


async def facts_for(session: AsyncSession, events: list[dict[str, Any]]) -> list[FactIn]:
    """Every fact of ``events`` (each ``{"type", "payload", "at"}``), in order."""
    facts: list[FactIn] = []
    for item in events:
        facts.extend(await facts_of(session, item["type"], item["payload"], item["at"]))
    return facts


async def store_events(events: list[dict[str, Any]]) -> int:
    """Write the facts of ``events`` in one transaction of its own; returns how many facts were new."""
    async with transaction() as session:
        return await write_facts(session, await facts_for(session, events))


async def _write_pending() -> None:
    while _pending:
        batch = _pending[:MAX_BATCH]
        del _pending[:MAX_BATCH]
        try:
            await store_events(batch)
        except Exception:  # noqa: BLE001 - never raised into anyone's request: retried by the worker
            log.exception("analytics: writing %d events failed; queued for retry", len(batch))
            try:
                async with transaction() as session:
                    enqueue(session, JOB, {"events": batch}, max_attempts=8)
            except Exception:  # noqa: BLE001 - the database is down: these facts are lost, the reports a bit short
                log.exception("analytics: could not queue %d events for retry", len(batch))


async def retry_job(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Job ``analytics.ingest``: write the facts of events whose first write failed (idempotent)."""
    await write_facts(session, await facts_for(session, payload["events"]))


async def drain() -> None:
    """Wait until this process's pending events are written (tests, and a clean shutdown)."""
    loop = asyncio.get_running_loop()
    while _writer is not None and not _writer.done() and _writer.get_loop() is loop:
        await asyncio.shield(_writer)
