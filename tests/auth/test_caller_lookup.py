"""Who is calling is looked up on SQLite's reader connection (``db.lookup_session``), not on the one connection
chat's writes take, and the row read there becomes the request's own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, exc, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gasdesk import db
from gasdesk.auth.models import User
from gasdesk.config import get_settings
from tests.factories import login


@contextmanager
def statements(engine: AsyncEngine | None) -> Iterator[list[str]]:
    """The SQL ``engine`` runs meanwhile."""
    seen: list[str] = []
    if engine is None:
        yield seen
        return

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


def _caller_lookups(seen: list[str]) -> list[str]:
    return [s for s in seen if "FROM users JOIN" in s]


async def test_a_bearer_token_is_looked_up_on_the_reader_not_on_chats_connection(client, factory) -> None:
    headers = await factory.headers("supervisor")
    sqlite = get_settings().is_sqlite
    with statements(db.get_engine()) as writer, statements(db.current_reader_engine()) as reader:
        response = await client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200 and response.json()["role"] == "supervisor"
    if sqlite:
        assert len(_caller_lookups(reader)) == 1 and _caller_lookups(writer) == []
        # a read-only request leaves the writer alone altogether
        assert writer == []
    else:  # PostgreSQL: a pool of connections; the request's own session asks
        assert db.reader_sessionmaker() is None and len(_caller_lookups(writer)) == 1


async def test_a_cookie_session_is_looked_up_on_the_reader_too(client, factory) -> None:
    user = await factory.user("agent")
    assert (await login(client, user.username)).status_code == 303
    with statements(db.get_engine()) as writer, statements(db.current_reader_engine()) as reader:
        assert (await client.get("/api/v1/auth/me")).status_code == 200
    lookups = _caller_lookups(reader if get_settings().is_sqlite else writer)
    assert len(lookups) == 1 and "auth_sessions" in lookups[0]


async def test_the_reader_refuses_to_write() -> None:
    maker = db.reader_sessionmaker()
    if maker is None:
        pytest.skip("PostgreSQL has no reader connection: the request's session is the lookup's")
    async with maker() as reader:
        assert (await reader.execute(text("PRAGMA query_only"))).scalar() == 1
        with pytest.raises(exc.OperationalError, match="readonly"):
            await reader.execute(text("UPDATE users SET display_name = 'x'"))


async def test_a_change_to_the_caller_read_on_the_reader_is_stored(client, factory) -> None:
    """The caller's row, read on the reader, is attached to the request's session: a route that changes it
    (an admin renaming themself) stores the change, and an audit row names the new state."""
    admin = await factory.user("admin")
    headers = {"Authorization": f"Bearer {await factory.token(admin)}"}
    response = await client.patch(f"/api/v1/users/{admin.id}", headers=headers, json={"display_name": "新的名字"})
    assert response.status_code == 200 and response.json()["display_name"] == "新的名字"
    async with db.sessionmaker()() as fresh:
        assert (await fresh.scalar(select(User.display_name).where(User.id == admin.id))) == "新的名字"


async def test_a_revoked_token_is_refused_at_once(client, factory) -> None:
    """The reader sees the writer's commits as they happen: a token revoked by one request is refused by the
    next."""
    headers = await factory.headers("agent")
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert (await client.post("/api/v1/auth/revoke", headers=headers)).status_code == 204
    refused = await client.get("/api/v1/auth/me", headers=headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_token"
