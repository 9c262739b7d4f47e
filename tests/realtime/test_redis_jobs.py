"""With Redis, an enqueued job wakes the workers of every process at once (the job row stays the record)."""

from __future__ import annotations

import asyncio

from gasdesk.db import transaction
from gasdesk.events import EventBus
from gasdesk.jobs import queue
from gasdesk.jobs.models import Job
from gasdesk.realtime.redis_bridge import RedisBridge


async def test_enqueue_wakes_workers_through_redis(redis_url: str) -> None:
    # Two bridges stand for two processes; the second's listener must see the first's wake-up.
    first, second = RedisBridge(redis_url, EventBus()), RedisBridge(redis_url, EventBus())
    await first.start()
    await second.start()
    try:
        queue.remote_wake = first.wake_workers
        queue.wake_event().clear()
        async with transaction() as session:
            queue.enqueue(session, "test.noop", {"n": 1})
            assert not queue.wake_event().is_set()  # nothing before commit
        await asyncio.wait_for(queue.wake_event().wait(), timeout=5)
        queue.wake_event().clear()
        await first.wake_workers()  # the message itself, as another process would receive it
        await asyncio.wait_for(queue.wake_event().wait(), timeout=5)
        async with transaction() as session:
            job = await session.scalar(Job.__table__.select().where(Job.name == "test.noop"))
        assert job is not None
    finally:
        await second.stop()
        await first.stop()
