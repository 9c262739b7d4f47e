"""Rate limits and failure lock-outs that hold across sockets and processes.

Public surfaces (the chat socket, visitor tokens, the identity check) are limited per visitor, per client IP
and, for the identity check, per account — never per socket, since an attacker opens as many sockets as they
like. Counters live in Redis when ``GASDESK_REDIS_URL`` is set, so every app process sees the same counts;
otherwise in this process's memory (the embedded single-process mode). Every limit is listed in ``LIMITS``
and documented in docs/security.md.

Counting uses fixed windows (one counter per subject per window): cheap, one round trip in Redis, and at most
twice the rate across a window boundary — acceptable for flood control.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
import weakref
from dataclasses import dataclass
from typing import Protocol

from gasdesk.config import get_settings
from gasdesk.errors import RateLimited

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """At most ``count`` events per ``per_s`` seconds for one subject (a visitor, an IP, an account)."""

    name: str
    count: int
    per_s: int


# Every public-surface limit in one place. Per-IP limits are generous: mobile carriers put many residents
# behind one address (carrier-grade NAT), so the per-visitor limits do the fine-grained work.
LIMITS: dict[str, Limit] = {limit.name: limit for limit in (
    Limit("visitor_token.ip", 30, 60),            # new widget identities per client IP
    Limit("conversation.visitor", 10, 3600),      # new conversations per visitor
    Limit("conversation.ip", 120, 3600),          # new conversations per client IP
    Limit("message.visitor", 50, 10),             # resident messages per visitor (all sockets together)
    Limit("message.ip", 200, 10),                 # resident messages per client IP
    Limit("typing.visitor", 10, 10),              # typing frames per visitor (excess dropped silently)
    Limit("frame.visitor", 60, 10),               # any other frame per visitor (history, resume, rate…)
    Limit("identify.visitor", 5, 900),            # failed identity checks per visitor
    Limit("identify.ip", 20, 3600),               # failed identity checks per client IP
    Limit("identify.account", 5, 1800),           # failed identity checks per 户号 → lock-out + staff alert
    Limit("wechat.openid", 30, 60),               # WeChat messages per follower (excess answered, not stored)
    Limit("sms.number", 20, 600),                 # inbound SMS per mobile number
    Limit("ichat_message.user", 30, 10),          # staff chat messages and shared cards per staff user
    Limit("ichat_upload.user", 20, 60),           # staff chat files and pictures per staff user
    Limit("ichat_frame.user", 60, 10),            # staff chat frames (ichat_read) on /ws/staff per staff user
    Limit("video.visitor", 120, 10),              # video assist frames (answers, SDP, ICE) per visitor
    Limit("video.user", 120, 10),                 # video assist frames on /ws/agent per staff user
    Limit("video_upload.user", 30, 60),           # video assist snapshots and recordings per staff user
)}

IDENTITY_LOCKOUT_S = 1800
MAX_BACKOFF_S = 300
FREE_FAILURES = 3

# The client address of the socket or request being served, for limits deep inside domain code (the bot's
# identity flow runs inside a socket frame and cannot see the socket).
client_ip: contextvars.ContextVar[str] = contextvars.ContextVar("gasdesk_client_ip", default="unknown")


class CounterStore(Protocol):
    async def incr(self, key: str, ttl_s: int) -> int: ...
    async def put(self, key: str, ttl_s: float) -> None: ...
    async def ttl(self, key: str) -> float: ...
    async def delete(self, *keys: str) -> None: ...


class MemoryStore:
    """Counters in this process: the embedded mode has one process."""

    SWEEP_EVERY_S = 10.0

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}
        self._swept = time.monotonic()

    def _live(self, key: str, now: float) -> tuple[int, float] | None:
        found = self._values.get(key)
        if found is not None and found[1] <= now:
            del self._values[key]
            return None
        return found

    def _sweep(self, now: float) -> None:
        """Forget expired counters now and then (each window leaves one key per subject behind)."""
        if now - self._swept >= self.SWEEP_EVERY_S:
            self._swept = now
            self._values = {k: v for k, v in self._values.items() if v[1] > now}

    async def incr(self, key: str, ttl_s: int) -> int:
        now = time.monotonic()
        self._sweep(now)
        found = self._live(key, now)
        count = (found[0] if found else 0) + 1
        self._values[key] = (count, found[1] if found else now + ttl_s)
        return count

    async def put(self, key: str, ttl_s: float) -> None:
        self._values[key] = (1, time.monotonic() + ttl_s)

    async def ttl(self, key: str) -> float:
        now = time.monotonic()
        found = self._live(key, now)
        return max(0.0, found[1] - now) if found else 0.0

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._values.pop(key, None)


class RedisStore:
    """Counters in Redis, shared by every app process.

    While Redis cannot be reached, counting goes on in this process's memory instead (a warning is logged once
    per outage): the chat keeps working through a Redis restart, its flood limits then held per process — at
    most N times a limit across N processes — rather than refusing every resident message until Redis is back.
    """

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis  # noqa: PLC0415 - only when Redis is configured (scale-out)

        # A Redis that does not answer must not hold a resident's frame: give up quickly, count locally.
        self._client = redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._fallback = MemoryStore()
        self._down = False

    def _failed(self, exc: BaseException) -> MemoryStore:
        if not self._down:
            self._down = True
            log.warning("redis unreachable (%s): flood limits counted per process until it is back", exc)
        return self._fallback

    def _up(self) -> None:
        if self._down:
            self._down = False
            log.warning("redis reachable again: flood limits shared across processes")

    async def incr(self, key: str, ttl_s: int) -> int:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, ex=ttl_s, nx=True)  # starts the window once; later hits keep its expiry
                pipe.incr(key)
                _, count = await pipe.execute()
        except self._errors as exc:
            return await self._failed(exc).incr(key, ttl_s)
        self._up()
        return int(count)

    async def put(self, key: str, ttl_s: float) -> None:
        try:
            await self._client.set(key, 1, px=max(1, int(ttl_s * 1000)))
        except self._errors as exc:
            await self._failed(exc).put(key, ttl_s)

    async def ttl(self, key: str) -> float:
        try:
            ms = await self._client.pttl(key)
        except self._errors as exc:
            return await self._failed(exc).ttl(key)
        return max(0.0, ms / 1000) if ms and ms > 0 else 0.0

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._fallback.delete(*keys)
            try:
                await self._client.delete(*keys)
            except self._errors as exc:
                self._failed(exc)


# One store per event loop and configuration (a Redis client belongs to one loop); weak keys, so a finished
# loop's counters go with it instead of being inherited by a new loop that reuses its id().
_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str | None, CounterStore]] = (
    weakref.WeakKeyDictionary())


def store() -> CounterStore:
    """The counter store for this event loop and configuration."""
    url = get_settings().redis_url
    per_loop = _stores.setdefault(asyncio.get_running_loop(), {})
    found = per_loop.get(url)
    if found is None:
        found = per_loop[url] = RedisStore(url) if url else MemoryStore()
    return found


def limit_for(name: str) -> Limit:
    """The limit called ``name``, with any override from ``GASDESK_RATE_LIMITS``."""
    base = LIMITS[name]
    override = get_settings().rate_limits.get(name)
    if not override:
        return base
    count, _, per_s = override.partition("/")
    return Limit(name, int(count), int(per_s or base.per_s))


def _exempt(name: str, subject: str) -> bool:
    return name.endswith(".ip") and is_exempt_ip(subject)


def is_exempt_ip(ip: str) -> bool:
    return ip in get_settings().limit_exempt_ips


def _window_key(limit: Limit, subject: str) -> str:
    return f"gasdesk:rl:{limit.name}:{subject}:{int(time.time() // limit.per_s)}"


def _retry_after(limit: Limit) -> int:
    return max(1, math.ceil(limit.per_s - time.time() % limit.per_s))


async def hit(limit: Limit, subject: str) -> int:
    """Count one event; returns seconds to wait (0 = allowed)."""
    count = await store().incr(_window_key(limit, subject), limit.per_s + 1)
    return 0 if count <= limit.count else _retry_after(limit)


async def check_rate(*checks: tuple[str, str]) -> None:
    """Count one event against each ``(limit name, subject)``; raise ``RateLimited`` if any is exceeded."""
    waits = [await hit(limit_for(name), subject) for name, subject in checks if not _exempt(name, subject)]
    wait = max(waits, default=0)
    if wait:
        raise RateLimited(f"操作太频繁，请 {wait} 秒后再试", code="rate_limited", details={"retry_after_s": wait})


async def allowed(name: str, subject: str) -> bool:
    """Count one event; False when over the limit (for frames that are dropped silently, like typing)."""
    return _exempt(name, subject) or await hit(limit_for(name), subject) == 0


# ---------------------------------------------------------------- failure lock-outs with back-off


@dataclass(frozen=True)
class FailureState:
    failures: int
    locked_s: float  # seconds left of a lock-out or back-off (0 = may try now)


async def attempt_wait(*checks: tuple[str, str]) -> float:
    """Seconds a new attempt must wait: a lock-out or a back-off on any of the subjects."""
    s = store()
    waits = [await s.ttl(f"gasdesk:lock:{name}:{subject}") for name, subject in checks if not _exempt(name, subject)]
    return max(waits, default=0.0)


async def record_failure(name: str, subject: str, *, lockout_s: int) -> FailureState:
    """Count a failed attempt. From the third failure on, each backs the subject off for 2^(n-1) s; reaching the limit
    locks it for ``lockout_s``. Returns the new state (``failures == limit.count`` exactly once per lock-out,
    so callers alert once)."""
    if _exempt(name, subject):
        return FailureState(0, 0.0)
    limit = limit_for(name)
    s = store()
    failures = await s.incr(f"gasdesk:fail:{name}:{subject}", limit.per_s)
    if failures >= limit.count:
        wait = float(lockout_s)
    elif failures >= FREE_FAILURES:
        wait = float(min(MAX_BACKOFF_S, 2 ** (failures - 1)))
    else:
        wait = 0.0  # a typo or two costs nothing
    if wait:
        await s.put(f"gasdesk:lock:{name}:{subject}", wait)
    return FailureState(failures, wait)


async def clear_failures(name: str, subject: str) -> None:
    await store().delete(f"gasdesk:fail:{name}:{subject}", f"gasdesk:lock:{name}:{subject}")
