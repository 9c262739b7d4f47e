"""The wall's live feed: each process keeps its wall sockets and pushes them a fresh snapshot after a change.

The feed listens on the bus (committed events; in scale-out they arrive through the Redis bridge from every
process) for the events that move the queue, the agents or the tickets. A burst is debounced: the first event
schedules one snapshot ``DEBOUNCE_S`` later, events meanwhile ride along, so a wall is at most ~0.3 s plus one
snapshot behind, and a storm of events costs one snapshot per window for all walls of the process (built
once, encoded once, queued on each socket's bounded queue). With no wall open the feed does nothing. A slow
refresh (``REFRESH_S``) covers what no event announces (the clock moving longest waits and the trend, new
thresholds saved in another process).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from gasdesk.db import transaction
from gasdesk.events import Event, bus
from gasdesk.realtime.hub import Connection, encode
from gasdesk.wall.service import wall_snapshot

log = logging.getLogger(__name__)

# The bus events after which the wall may show something else.
WALL_EVENTS = frozenset({
    "conversation.started", "conversation.state", "conversation.rated", "queue.changed", "agent.presence",
    "call.ringing", "call.ended", "emergency.alert", "ticket.created", "ticket.updated", "ticket.sla",
    "followup.completed",
})
DEBOUNCE_S = 0.3
REFRESH_S = 30.0
# Wall sockets per user and process: a kiosk login may drive a few screens, not hundreds.
MAX_WALL_SOCKETS_PER_USER = 10


class WallFeed:
    """The wall sockets of this process and the debounced snapshot pushes to them."""

    def __init__(self) -> None:
        self.by_user: dict[int, set[Connection]] = defaultdict(set)
        self.snapshots = 0  # how many were built (tests: a burst is one snapshot)
        self._flush: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._unsubscribe = bus.subscribe(self.on_event)

    def connections(self) -> set[Connection]:
        return {conn for conns in self.by_user.values() for conn in conns if not conn.closed}

    def add(self, conn: Connection) -> bool:
        """Register a wall socket; False (refuse it) past the per-user cap."""
        assert conn.user_id is not None
        if len(self.by_user.get(conn.user_id, ())) >= MAX_WALL_SOCKETS_PER_USER:
            return False
        self.by_user[conn.user_id].add(conn)
        if not _running_here(self._ticker):
            self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="gasdesk-wall-refresh")
        return True

    def remove(self, conn: Connection) -> None:
        members = self.by_user.get(conn.user_id or 0)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.by_user[conn.user_id or 0]
        if not self.by_user and self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def on_event(self, event: Event) -> None:
        if event.type in WALL_EVENTS and self.by_user:
            self.soon()

    def soon(self) -> None:
        """Push a fresh snapshot to every wall within ``DEBOUNCE_S`` (one for a whole burst)."""
        if not _running_here(self._flush):
            self._flush = asyncio.get_running_loop().create_task(self._after(DEBOUNCE_S), name="gasdesk-wall-push")

    async def _after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._flush = None  # events from here on schedule the next push: nothing is missed
        await self.push()

    async def push(self) -> None:
        """Build one snapshot and queue it on every wall socket of this process."""
        targets = self.connections()
        if not targets:
            return
        try:
            async with transaction() as session:
                snapshot = await wall_snapshot(session)
        except Exception:  # a failed snapshot must not kill the feed; the next change or refresh retries
            log.exception("wall snapshot failed")
            return
        self.snapshots += 1
        text = encode({"type": "snapshot", "snapshot": snapshot})
        for conn in targets:
            conn.push_text(text)

    async def _tick(self) -> None:
        while self.by_user:
            await asyncio.sleep(REFRESH_S)
            if self.by_user:
                await self.push()


def _running_here(task: asyncio.Task[None] | None) -> bool:
    """Whether ``task`` is still to run in this event loop (a task left behind by a closed loop is not)."""
    return task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop()


_feed: WallFeed | None = None


def get_feed() -> WallFeed:
    """This process's wall feed (made, and subscribed to the bus, on first use)."""
    global _feed
    if _feed is None:
        _feed = WallFeed()
    return _feed


def refresh_walls() -> None:
    """Push a fresh snapshot to this process's walls soon (e.g. after new thresholds were saved here)."""
    if _feed is not None and _feed.by_user:
        _feed.soon()
