"""Scale-out: carry committed events between app processes over Redis pub/sub.

Each process publishes its committed events to one channel and delivers every event it receives
(its own included) to its local hub, so a resident on process A and an agent on process B see each
other's messages. Without Redis the bus delivers in-process only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque

import redis.asyncio as redis

from gasdesk.events import Event, EventBus
from gasdesk.jobs import queue
from gasdesk.jobs.queue import wake_local

log = logging.getLogger(__name__)
CHANNEL = "gasdesk:events"
JOBS_CHANNEL = "gasdesk:jobs"  # "there is new work": every worker process wakes and claims from the job table
PUBLISH_BATCH = 500  # events per pipelined round trip to Redis


class RedisBridge:
    def __init__(self, url: str, bus: EventBus, channel: str = CHANNEL) -> None:
        self.url = url
        self.bus = bus
        self.channel = channel
        self._client: redis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # Events wait here for the one publisher task, which sends all that are waiting in one pipelined
        # round trip. Awaiting one PUBLISH per event (as first written) needed a turn of the busy event loop per
        # event: under chat load every process then delivered ~100-200 messages a second through Redis, the
        # rest queuing for seconds behind (bench/chat_load.py --cluster). One task keeps the order.
        self._outbox: deque[Event] = deque()
        self._pending = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._client = redis.from_url(self.url, socket_connect_timeout=2)
        await self._client.ping()
        self._task = asyncio.create_task(self._listen(), name="gasdesk-redis-events")
        await asyncio.wait_for(self._ready.wait(), timeout=10)
        self._publisher = asyncio.create_task(self._publish_loop(), name="gasdesk-redis-publish")
        self.bus.remote_publish = self.publish
        queue.remote_wake = self.wake_workers

    async def publish(self, event: Event) -> None:
        """Queue a committed event for every process (this one included, when Redis echoes it back)."""
        self._outbox.append(event)
        self._pending.set()

    async def _publish_loop(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            while self._outbox:
                try:
                    await self._send([self._outbox.popleft() for _ in range(min(len(self._outbox), PUBLISH_BATCH))])
                except Exception:  # noqa: BLE001 - the publisher must outlive any one batch
                    log.exception("publishing events failed")

    async def _send(self, batch: list[Event]) -> None:
        assert self._client is not None
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for event in batch:
                    pipe.publish(self.channel, event.to_json())
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            # Redis down: still serve this process's own sockets rather than lose the events entirely.
            log.error("redis publish failed (%s); delivering %d events locally only", exc, len(batch))
            for event in batch:
                await self.bus.deliver_local(event)

    async def wake_workers(self) -> None:
        """Tell every process's worker that a job was enqueued (the job itself is a database row)."""
        assert self._client is not None
        try:
            await self._client.publish(JOBS_CHANNEL, "1")
        except redis.RedisError:
            log.warning("redis unavailable; workers will find the job on their next poll")

    async def _listen(self) -> None:
        assert self._client is not None
        while True:
            try:
                pubsub = self._client.pubsub()
                await pubsub.subscribe(self.channel, JOBS_CHANNEL)
                self._ready.set()
                async for item in pubsub.listen():
                    if item.get("type") != "message":
                        continue
                    if item.get("channel") in (JOBS_CHANNEL, JOBS_CHANNEL.encode()):
                        wake_local()
                        continue
                    data = json.loads(item["data"])
                    await self.bus.deliver_local(Event(data["type"], data["payload"], data["at"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis event listener failed; reconnecting")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        self.bus.remote_publish = None
        queue.remote_wake = None
        if self._outbox:  # what was committed before the shutdown still goes out
            await self._send(list(self._outbox))
            self._outbox.clear()
        for task in (self._publisher, self._task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        if self._client is not None:
            await self._client.aclose()
