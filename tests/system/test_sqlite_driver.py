"""The SQLite driver path (gasdesk/sqlite_driver.py): one round trip to aiosqlite's thread per statement, with the
same results, counts, row ids and errors as SQLAlchemy's own aiosqlite adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, exc, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gasdesk.db import make_engine
from gasdesk.sqlite_driver import OneTripConnection, OneTripCursor

# Each test makes SQLite files of its own: run once, in the SQLite pass.
pytestmark = pytest.mark.no_database

meta = MetaData()
items = Table("items", meta, Column("id", Integer, primary_key=True), Column("name", String, unique=True),
              Column("qty", Integer))


async def _with_items(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def one_trip(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async for engine in _with_items(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'one_trip.db'}")):
        yield engine


@pytest.fixture
async def adapter(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """SQLAlchemy's own aiosqlite adapter, for comparison."""
    async for engine in _with_items(create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'adapter.db'}")):
        yield engine


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every function queued to an aiosqlite connection's thread, by name."""
    queued: list[str] = []
    original = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        queued.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return queued


async def test_the_apps_sqlite_engine_uses_the_one_trip_cursor(one_trip: AsyncEngine) -> None:
    async with one_trip.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, OneTripConnection)
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)
        # The app's connect-time pragmas went through it.
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"


async def test_a_select_is_one_round_trip_instead_of_four(one_trip: AsyncEngine, adapter: AsyncEngine,
                                                          trips: list[str]) -> None:
    for engine in (one_trip, adapter):
        async with engine.begin() as conn:
            await conn.execute(insert(items), [{"name": "表", "qty": 1}, {"name": "卡", "qty": 2}])
    counts = {}
    for label, engine in (("one_trip", one_trip), ("adapter", adapter)):
        async with engine.connect() as conn:
            trips.clear()
            rows = (await conn.execute(select(items.c.name, items.c.qty).order_by(items.c.id))).all()
            counts[label] = len(trips)
            assert [tuple(r) for r in rows] == [("表", 1), ("卡", 2)]
    assert counts == {"one_trip": 1, "adapter": 4}


async def _workload(conn: AsyncConnection) -> list[Any]:
    """Statements of every kind the app runs, and what each gives back."""
    seen: list[Any] = []
    result = await conn.execute(insert(items).values(name="阀门", qty=3))
    seen.append(("insert pk", result.inserted_primary_key))
    result = await conn.execute(insert(items), [{"name": f"n{i}", "qty": i} for i in range(5)])
    seen.append(("executemany rowcount", result.rowcount))
    result = await conn.execute(insert(items).values(name="燃气表", qty=7).returning(items.c.id, items.c.name))
    seen.append(("insert returning", [tuple(r) for r in result]))
    result = await conn.execute(update(items).where(items.c.qty < 3).values(qty=items.c.qty + 10))
    seen.append(("update rowcount", result.rowcount))
    result = await conn.execute(update(items).where(items.c.qty > 100).values(qty=0))
    seen.append(("update none", result.rowcount))
    result = await conn.execute(delete(items).where(items.c.name == "n4").returning(items.c.qty))
    seen.append(("delete returning", result.all(), result.rowcount))
    result = await conn.execute(select(items).order_by(items.c.id))
    seen.append(("keys", list(result.keys())))
    seen.append(("fetchmany", [tuple(r) for r in result.fetchmany(2)], [tuple(r) for r in result.fetchmany(2)]))
    seen.append(("rest", [tuple(r) for r in result.fetchall()]))
    seen.append(("no row", (await conn.execute(select(items.c.id).where(items.c.id < 0))).first()))
    seen.append(("scalar", (await conn.execute(text("SELECT count(*) FROM items"))).scalar()))
    streamed = await conn.stream(select(items.c.name).order_by(items.c.id))
    seen.append(("stream", [r[0] async for r in streamed]))
    return seen


async def _on_both(engines: tuple[AsyncEngine, AsyncEngine],
                   run: Callable[[AsyncConnection], Awaitable[list[Any]]]) -> list[list[Any]]:
    """What ``run`` gives back on each engine, each in a transaction of its own."""
    outcomes = []
    for engine in engines:
        async with engine.begin() as conn:
            outcomes.append(await run(conn))
    return outcomes


async def test_results_counts_and_row_ids_match_sqlalchemys_adapter(one_trip: AsyncEngine,
                                                                     adapter: AsyncEngine) -> None:
    outcomes = await _on_both((one_trip, adapter), _workload)
    assert outcomes[0] == outcomes[1]
    assert dict((s[0], s[1:]) for s in outcomes[0])["executemany rowcount"] == (5,)
    assert dict((s[0], s[1:]) for s in outcomes[0])["update rowcount"] == (3,)


async def _errors(conn: AsyncConnection) -> list[Any]:
    caught: list[Any] = []
    await conn.execute(insert(items).values(name="唯一", qty=1))
    for statement in (insert(items).values(name="唯一", qty=2), text("SELEC 1"), text("SELECT * FROM nowhere")):
        savepoint = await conn.begin_nested()
        with pytest.raises(exc.DBAPIError) as raised:
            await conn.execute(statement)
        caught.append(type(raised.value).__name__)
        await savepoint.rollback()
    # The connection goes on working, and the failed statements left nothing behind.
    caught.append(str((await conn.execute(select(items.c.qty).where(items.c.name == "唯一"))).scalar_one()))
    return caught


async def test_errors_are_the_same_dbapi_errors_and_leave_the_connection_usable(one_trip: AsyncEngine,
                                                                               adapter: AsyncEngine) -> None:
    outcomes = await _on_both((one_trip, adapter), _errors)
    assert outcomes[0] == outcomes[1] == ["IntegrityError", "OperationalError", "OperationalError", "1"]


async def test_a_closed_driver_connection_is_an_operational_error(one_trip: AsyncEngine) -> None:
    async with one_trip.connect() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.close()
        with pytest.raises(exc.OperationalError):
            await conn.execute(text("SELECT 1"))
        await conn.invalidate()

