"""Domain events: published after commit to in-process subscribers (and Redis in scale-out mode).

``emit(session, CustomerUpdated(customer_id=7))`` queues the event on the session's after-commit queue;
nothing leaves the process for a transaction that rolls back. Every event type and its payload is declared
in ``gasdesk/event_types.py``; anything else is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.clock import utcnow
from gasdesk.db import after_commit
from gasdesk.event_types import EventPayload, spec_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One committed event as it travels (bus, Redis). Built from a declared payload with ``Event.of``; the
    plain constructor only rebuilds events received from Redis."""

    type: str
    payload: dict[str, Any]
    at: str = field(default_factory=lambda: utcnow().isoformat())

    @classmethod
    def of(cls, payload: EventPayload) -> Event:
        """The event for a declared payload; UnknownEventType for anything else."""
        return cls(spec_of(payload).name, payload.as_dict())

    def to_json(self) -> str:
        return json.dumps({"type": self.type, "payload": self.payload, "at": self.at}, ensure_ascii=False)


Subscriber = Callable[[Event], Awaitable[None] | None]


class EventBus:
    """Fan-out of committed events to local subscribers; a Redis bridge is attached in scale-out mode."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.remote_publish: Callable[[Event], Awaitable[None]] | None = None

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    async def deliver_local(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                result = subscriber(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("event subscriber failed for %s", event.type)

    async def publish(self, event: Event) -> None:
        if self.remote_publish is not None:
            # Redis echoes to every process including this one; local delivery happens on receipt.
            await self.remote_publish(event)
        else:
            await self.deliver_local(event)


bus = EventBus()


def emit(session: AsyncSession, payload: EventPayload) -> None:
    """Publish the event of ``payload`` (a class declared in ``gasdesk/event_types.py``) once ``session``
    commits. Refuses anything undeclared at once (UnknownEventType), not after the commit."""
    event = Event.of(payload)
    after_commit(session, lambda: bus.publish(event))


async def publish_now(payload: EventPayload) -> None:
    """Publish an event that records no change (typing), or from an after-commit callback."""
    await bus.publish(Event.of(payload))
