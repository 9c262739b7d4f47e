"""What a web process does when PostgreSQL or Redis cannot be reached (the fault tests in tests/cluster break
real servers; these check the same answers in-process, in every pass)."""

from __future__ import annotations

import socket
import time

import pytest

from gasdesk import db
from gasdesk.config import reset_settings_cache
from gasdesk.security.limits import RedisStore


async def test_an_unreachable_database_answers_503_at_once(client, monkeypatch, tmp_path) -> None:
    # a PostgreSQL URL whose Unix socket directory holds no server
    monkeypatch.setenv("GASDESK_DATABASE_URL", f"postgresql+asyncpg://gasdesk@/gasdesk?host={tmp_path}")
    reset_settings_cache()
    await db.dispose_engine()
    started = time.monotonic()
    response = await client.post(
        "/api/v1/auth/token", json={"username": "agent1", "password": "whatever-pass"}
    )
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.json()["error"]["message"] == "数据库暂时无法连接，请稍后重试"
    assert response.headers["Retry-After"] == "5"
    assert (await client.get("/readyz")).status_code == 503


@pytest.mark.no_database  # a Redis client against a closed port; no database
async def test_flood_counters_go_on_in_memory_while_redis_is_down() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    store = RedisStore(f"redis://127.0.0.1:{port}/0")
    started = time.monotonic()
    counts = [await store.incr("gasdesk:rl:test:v1:1", 10) for _ in range(3)]
    await store.put("gasdesk:lock:test:v1", 30)
    assert counts == [1, 2, 3] and await store.ttl("gasdesk:lock:test:v1") > 25
    await store.delete("gasdesk:lock:test:v1")
    assert await store.ttl("gasdesk:lock:test:v1") == 0
    assert time.monotonic() - started < 2, "an unreachable Redis must not hold the frame"
