"""Database engine, sessions and the after-commit queue.

Side effects (WebSocket pushes, jobs, webhooks) are registered on the session with
``after_commit(session, fn)`` and run only once the transaction has committed; a
rollback drops them. Every ``do_*`` function uses this instead of firing directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import Depends
from sqlalchemy import CursorResult, DateTime, Executable, MetaData, Table, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from gasdesk.clock import as_utc, utcnow
from gasdesk.config import get_settings
from gasdesk.errors import DatabaseUnavailable, InvalidInput
from gasdesk.fields import has_unstorable_chars
from gasdesk.sqlite_driver import one_trip_dbapi

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite returns naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for bulk statements that skip the ORM's per-row bookkeeping.

    SQLAlchemy types ``Model.__table__`` as any FROM clause (a model may map a join or a subquery); every
    gasdesk model maps one plain Table.
    """
    return cast(Table, model.__table__)


async def execute_counted(session: AsyncSession, statement: Executable) -> int:
    """Run an UPDATE or DELETE and return how many rows it matched (conditional updates decide by this)."""
    # session.execute is typed as returning Result; a DML statement's result is a CursorResult.
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


_engine: AsyncEngine | None = None
_sessionmaker: async_sessionmaker[AsyncSession] | None = None
_reader_engine: AsyncEngine | None = None
_reader_sessionmaker: async_sessionmaker[AsyncSession] | None = None

AfterCommit = Callable[[], Awaitable[None] | None]


def refuse_unstorable_text(parameters: Any) -> None:
    """Backstop for text no backend can store — NUL (PostgreSQL) or an unpaired surrogate (no UTF-8) — whatever
    way it came in (an import file, a multipart form field, a frame): refused as the caller's bad input, the
    same on SQLite and PostgreSQL, instead of failing inside the driver as a 500. The HTTP edge
    (gasdesk.web.input_guard) and the socket frames refuse it earlier where they can. Also called by writers
    that bypass SQLAlchemy's cursor (group commit on SQLite)."""
    stack = [parameters]  # a row, a list of rows (executemany), or values in a list (arrays)
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if has_unstorable_chars(item):
                raise InvalidInput("内容含有无法保存的字符（如 \\u0000）")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _refuse_unstorable_text(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                            executemany: bool) -> None:
    refuse_unstorable_text(parameters)


def make_engine(url: str, *, reader: bool = False) -> AsyncEngine:
    """A new engine for ``url`` set up as the app's (SQLite pragmas, the unstorable-text guard): the app's own
    (``get_engine``), or a process's that reads the database beside the web process (the report render
    process). ``reader`` (SQLite): connections that refuse writes and hold no transaction
    (``reader_sessionmaker``)."""
    engine = _make_backend_engine(url, reader=reader)
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_unstorable_text)
    return engine


def _make_backend_engine(url: str, *, reader: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        size = get_settings().sqlite_pool_size
        dbapi = one_trip_dbapi()
        options: dict[str, Any] = {"module": dbapi} if dbapi is not None else {}
        if reader:
            # Each SELECT is a transaction of its own (no BEGIN, no snapshot held between statements), so a
            # connection going back to the pool has nothing to roll back: one round trip fewer per lookup.
            options.update(isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=size, max_overflow=0,
                                     pool_timeout=60, **options)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # Deleted or overwritten rows are zeroed, not left readable in free pages of the file
            # (the default of Debian's SQLite, not of every build).
            cur.execute("PRAGMA secure_delete=ON")
            if reader:
                cur.execute("PRAGMA query_only=ON")
            cur.close()

        return engine
    # A connection attempt gives up after 5 s (asyncpg waits 60 s by default): a database that is down or
    # unreachable must fail the request quickly (503), not hold it and its socket for a minute.
    engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args={"timeout": 5})
    event.listen(engine.sync_engine, "do_connect", _connect_or_unavailable)
    return engine


def _connect_or_unavailable(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """Open a DBAPI connection; a server that refuses, is gone or does not answer in time becomes
    DatabaseUnavailable (503) — the driver raises bare OSError / TimeoutError there, which would otherwise
    end as a 500 with a traceback."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as exc:
        log.warning("database connection failed: %s", exc)
        raise DatabaseUnavailable() from exc
    except Exception as exc:
        # PostgreSQL starting up or shutting down answers with SQLSTATE 57P0x (asyncpg's
        # CannotConnectNowError and its siblings): unavailable too, for a moment.
        if str(getattr(exc, "sqlstate", "") or "").startswith("57P"):
            raise DatabaseUnavailable() from exc
        raise


def get_engine() -> AsyncEngine:
    global _engine, _sessionmaker
    if _engine is None:
        settings = get_settings()
        if settings.is_sqlite:
            path = settings.database_url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        _engine = make_engine(settings.database_url)
        _sessionmaker = async_sessionmaker(_engine, expire_on_commit=False)
    return _engine


def reader_sessionmaker() -> async_sessionmaker[AsyncSession] | None:
    """SQLite: sessions on a connection of their own that can only read, for the lookups every request makes
    first (who is calling). SQLite's pool has one connection, and a lookup on it held that connection — from
    the query to the request's commit, milliseconds later — away from chat's writes; in WAL mode a reader
    never waits for the writer nor the writer for it. None on PostgreSQL (a pool of connections already) and
    for an in-memory database (another connection would see another database)."""
    global _reader_engine, _reader_sessionmaker
    if _reader_sessionmaker is None:
        settings = get_settings()
        if not settings.is_sqlite or ":memory:" in settings.database_url:
            return None
        get_engine()  # the writer first: it creates the file and switches it to WAL
        _reader_engine = make_engine(settings.database_url, reader=True)
        _reader_sessionmaker = async_sessionmaker(_reader_engine, expire_on_commit=False)
    return _reader_sessionmaker


@asynccontextmanager
async def lookup_session(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A session for a read-only lookup made on behalf of ``session``'s request: the reader's (SQLite) or
    ``session`` itself. Rows read through the reader are detached when this ends; ``session.add`` attaches
    one without a query, so the request can change it as if it had read it."""
    maker = reader_sessionmaker()
    if maker is None:
        yield session
        return
    async with maker() as reader:
        yield reader


def current_engine() -> AsyncEngine | None:
    """The engine ``get_engine`` would return, without making one."""
    return _engine


def current_reader_engine() -> AsyncEngine | None:
    """The reader's engine (``reader_sessionmaker``) if one was made."""
    return _reader_engine


def sessionmaker() -> async_sessionmaker[AsyncSession]:
    get_engine()
    assert _sessionmaker is not None
    return _sessionmaker


async def dispose_engine() -> None:
    """Close the pools (tests and shutdown)."""
    global _engine, _sessionmaker, _reader_engine, _reader_sessionmaker
    for engine in (_reader_engine, _engine):
        if engine is not None:
            await engine.dispose()
    _engine = _reader_engine = None
    _sessionmaker = _reader_sessionmaker = None



def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Queue ``callback`` to run after ``session`` commits; it is dropped on rollback."""
    session.info.setdefault("after_commit", []).append(callback)


def on_rollback(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Undo a side effect made ahead of the commit (a file written for a new row) if ``session`` rolls
    back instead; forgotten once it commits. ``callback`` is synchronous and must not raise."""
    sync = session.sync_session
    pending: list[Callable[[], None]] = session.info.setdefault("on_rollback", [])
    if not pending and not session.info.get("on_rollback_hooked"):
        session.info["on_rollback_hooked"] = True

        def _committed(_: Any) -> None:
            session.info.get("on_rollback", []).clear()

        def _rolled_back(_: Any) -> None:
            for undo in session.info.get("on_rollback", []):
                try:
                    undo()
                except Exception:  # noqa: BLE001 - cleanup is best effort
                    log.exception("rollback cleanup failed")
            session.info.get("on_rollback", []).clear()

        event.listen(sync, "after_commit", _committed)
        event.listen(sync, "after_rollback", _rolled_back)
    pending.append(callback)


async def run_after_commit(session: AsyncSession) -> None:
    callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
    for callback in callbacks:
        try:
            result = callback()
            if asyncio.iscoroutine(result):
                await result
        except Exception:  # one failing side effect must not block the others
            log.exception("after-commit callback failed")


async def commit(session: AsyncSession) -> None:
    """Commit, then run the queued side effects, then let others have the connection: the commit returned it
    to the pool, and a task waiting there (a resident's message) takes it before this task's next statement
    can. asyncio's queue is not fair — a task that commits and queries again in a loop without yielding gets
    the connection straight back, and on SQLite's one connection the 质检 scan (50 scores a minute) held chat
    off for its whole half-second run."""
    await session.commit()
    await run_after_commit(session)
    await asyncio.sleep(0)


async def rollback(session: AsyncSession, *reload: Any) -> None:
    """Roll back (queued after-commit work is dropped) and reload ``reload`` (e.g. the signed-in user), so a
    page can re-render with the error after a failed form post."""
    session.info.pop("after_commit", None)
    await session.rollback()
    for instance in reload:
        await session.refresh(instance)


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncSession]:
    """A session that commits on success (then runs after-commit work) and rolls back on error."""
    async with sessionmaker()() as session:
        try:
            yield session
            await commit(session)
        except BaseException:
            await rollback(session)
            raise


async def get_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one transaction per request."""
    async with transaction() as session:
        yield session


# scope="function": commit before the response is sent, so a failed commit is never reported as success.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
