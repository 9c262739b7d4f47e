"""Domain events: published after commit to in-process subscribers (and Redis in scale-out mode).

``emit(session, "customer.updated", {...})`` queues the event on the session's
after-commit queue; nothing leaves the process for a transaction that rolls back.
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    type: str
    payload: dict[str, Any]
    at: str = field(default_factory=lambda: utcnow().isoformat())

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


def emit(session: AsyncSession, event_type: str, payload: dict[str, Any]) -> None:
    """Publish ``event_type`` once ``session`` commits."""
    event = Event(event_type, payload)
    after_commit(session, lambda: bus.publish(event))
