"""SQLite through aiosqlite in one driver-thread round trip per statement.

aiosqlite runs the sqlite3 connection in a thread of its own; every call on it is a queued function and a
future the event loop wakes up for. SQLAlchemy's aiosqlite adapter makes four such calls for each statement
(open a cursor, execute, fetch the rows, close the cursor): ~160 µs of event-loop time for ``SELECT 1`` on this
machine, against ~40 µs when the four steps run as one function in the driver's thread. That event-loop time is
taken from every other request and WebSocket message the process serves, so a report export or an API call cost
chat's tail more than the work it did. Here a statement's cursor lives and dies in the driver's thread; its
description, row count, last row id and rows come back together.

Only the buffered (client-side) cursor changes. Server-side cursors (``stream()``) keep the adapter's own,
which fetches in chunks on purpose.
"""

from __future__ import annotations

import collections
import sqlite3
from threading import Thread
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# What one statement gives back from the driver's thread: description, rowcount, lastrowid, rows.
_Outcome = tuple[Any, int, int | None, list[Any] | None]


def _run_statement(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """Runs in aiosqlite's thread: the whole life of one cursor."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        # Read after the fetch, as the adapter did: sqlite3 counts a RETURNING statement's rows as they are read.
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered DBAPI cursor whose statement runs in one round trip to the driver's thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # The base class opens an aiosqlite cursor here (a round trip of its own); this one opens none.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:  # type: ignore[override]
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        """Nothing to close: the driver's cursor was closed with its statement."""

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._run(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._run(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            driver = self._connection
            outcome = await driver._execute(_run_statement, driver._conn, operation, parameters, many)
        self._description, self._rowcount, self._lastrowid, rows = outcome
        self._rows = collections.deque(rows or ())

    def nextset(self) -> None:
        """sqlite3 has one result set per statement."""
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls: type[AsyncAdapt_aiosqlite_cursor] = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI adapter, handing out connections whose cursors take one round trip."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        creator_fn = kw.pop("async_creator_fn", None)
        if creator_fn:
            connection = creator_fn(*arg, **kw)
        else:
            connection = self.aiosqlite.connect(*arg, **kw)
            # aiosqlite's thread must not keep the process alive at exit (as SQLAlchemy's adapter sets it).
            thread = connection if isinstance(connection, Thread) else connection._thread
            thread.daemon = True
        return OneTripConnection(self, await_(connection))


def one_trip_dbapi() -> OneTripDBAPI | None:
    """The DBAPI module to hand ``create_async_engine(module=...)``, or None (keep SQLAlchemy's adapter) when
    the installed aiosqlite lacks the internals this relies on."""
    if not (hasattr(aiosqlite.Connection, "_execute") and hasattr(aiosqlite.Connection, "_conn")):
        return None
    return OneTripDBAPI(aiosqlite, sqlite3)
