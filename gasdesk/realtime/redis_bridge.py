"""Scale-out: carry committed events between app processes over Redis pub/sub.

Each process publishes its committed events to one channel and delivers every event it receives
(its own included) to its local hub, so a resident on process A and an agent on process B see each
other's messages. Without Redis the bus delivers in-process only.
"""

from __future__ import annotations

import asyncio
import json
import logging

import redis.asyncio as redis

from gasdesk.events import Event, EventBus
from gasdesk.jobs import queue
from gasdesk.jobs.queue import wake_local

log = logging.getLogger(__name__)
CHANNEL = "gasdesk:events"
JOBS_CHANNEL = "gasdesk:jobs"  # "there is new work": every worker process wakes and claims from the job table


class RedisBridge:
    def __init__(self, url: str, bus: EventBus, channel: str = CHANNEL) -> None:
        self.url = url
        self.bus = bus
        self.channel = channel
        self._client: redis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._client = redis.from_url(self.url)
        await self._client.ping()
        self._task = asyncio.create_task(self._listen(), name="gasdesk-redis-events")
        await asyncio.wait_for(self._ready.wait(), timeout=10)
        self.bus.remote_publish = self.publish
        queue.remote_wake = self.wake_workers

    async def publish(self, event: Event) -> None:
        assert self._client is not None
        try:
            await self._client.publish(self.channel, event.to_json())
        except redis.RedisError:
            # Redis down: still serve this process's own sockets rather than lose the event entirely.
            log.exception("redis publish failed; delivering %s locally only", event.type)
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
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._client is not None:
            await self._client.aclose()
