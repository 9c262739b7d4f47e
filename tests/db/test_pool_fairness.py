"""A task that commits and queries again in a loop must not keep SQLite's one pooled connection from a task
waiting for it (``db.commit`` yields after the commit; asyncio's queue alone is not fair)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk import db
from gasdesk.config import reset_settings_cache

ROUNDS = 40
BUSY_S = 0.005  # CPU per round, like one 质检 score


async def test_a_waiting_query_gets_the_connection_between_two_commits_of_a_loop(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                                  ) -> None:
    monkeypatch.setenv("GASDESK_SQLITE_POOL_SIZE", "1")  # the product's SQLite pool
    reset_settings_cache()
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'fair.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE scores (n INTEGER)"))
        waited: list[int] = []
        rounds_done = 0

        async def scan() -> None:
            nonlocal rounds_done
            async with AsyncSession(engine) as session:
                for n in range(ROUNDS):
                    await session.execute(text("INSERT INTO scores VALUES (:n)"), {"n": n})
                    started = time.perf_counter()
                    while time.perf_counter() - started < BUSY_S:  # the score's Python work, on the event loop
                        pass
                    await db.commit(session)
                    rounds_done += 1

        async def resident() -> None:
            while rounds_done < 2:  # the scan is under way
                await asyncio.sleep(0.001)
            async with AsyncSession(engine) as session:
                await session.execute(text("SELECT count(*) FROM scores"))
            waited.append(rounds_done)

        await asyncio.gather(scan(), resident())
        # Without the yield the resident's query ran only after all 40 rounds; now within a round or two.
        assert waited[0] <= 5, f"the waiting query ran after round {waited[0]} of {ROUNDS}"
    finally:
        await engine.dispose()
