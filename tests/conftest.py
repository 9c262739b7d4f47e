"""Test set-up: every test gets a freshly migrated database on SQLite, or on PostgreSQL when
``GASDESK_TEST_DATABASE_URL`` is set (``make test`` runs the suite on both)."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from gasdesk import clock, db
from gasdesk.all_models import metadata
from gasdesk.analytics import ingest as analytics_ingest
from gasdesk.config import reset_settings_cache
from gasdesk.events import Event, bus
from gasdesk.migrations.runner import upgrade
from gasdesk.worker import register_handlers
from tests.factories import Factory

BASE_PG_URL = os.environ.get("GASDESK_TEST_DATABASE_URL")


def _worker_database_url(base: str | None, worker: str | None) -> str | None:
    """Under pytest-xdist each worker gets a database of its own in the same cluster (created by
    migrated_template): gasdesk_test_gw0, gasdesk_test_gw1…"""
    if not base or not worker:
        return base
    url = make_url(base)
    return url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)


PG_URL = _worker_database_url(BASE_PG_URL, os.environ.get("PYTEST_XDIST_WORKER"))

# Keys for this test run, set before any Settings exist so that nothing generates key files in the
# repository's var/; subprocesses (the browser tests' live server) inherit them.
os.environ.setdefault("GASDESK_SECRET_KEY", secrets.token_urlsafe(48))
os.environ.setdefault("GASDESK_DATA_KEY", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
# Test mode from the start, so that the seeded template database already has cheap password hashes.
os.environ.setdefault("GASDESK_ENV", "test")
# One fitted intent model for the whole run: every xdist worker and every live server loads it instead of
# training it again (seconds of CPU each). Keyed by the NLU code and data (gasdesk/bot/nlu/classifier.py).
os.environ.setdefault("GASDESK_NLU_CACHE_DIR", str(Path(tempfile.gettempdir()) / "gasdesk-test-nlu-cache"))
# PDF exports' common-characters face, built once per machine rather than once per test's var dir.
os.environ.setdefault("GASDESK_REPORT_FONT_CACHE_DIR", str(Path(tempfile.gettempdir()) / "gasdesk-test-font-cache"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"gasdesk database backend: {'postgresql' if PG_URL else 'sqlite'}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run the real Alembic migrations once per session: on PostgreSQL in place, on SQLite into a template file."""
    if PG_URL:
        engine_url = PG_URL
        import asyncio

        async def reset_schema() -> None:
            if engine_url != BASE_PG_URL:  # this xdist worker's own database
                admin = create_async_engine(BASE_PG_URL, isolation_level="AUTOCOMMIT")
                async with admin.connect() as conn:
                    name = make_url(engine_url).database
                    if not await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                        await conn.execute(text(f'CREATE DATABASE "{name}"'))
                await admin.dispose()
            engine = create_async_engine(engine_url)
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()

        asyncio.run(reset_schema())
        upgrade(engine_url)
        asyncio.run(_snapshot_seed_rows(engine_url))
        asyncio.run(_create_reset_function(engine_url))
        return engine_url
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return str(path)


# Rows the migrations insert (default skill groups, rules…), restored after each reset on PostgreSQL.
_SEED_ROWS: dict[str, list[dict]] = {}


async def _snapshot_seed_rows(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = [dict(r._mapping) for r in await conn.execute(table.select())]
            if rows:
                _SEED_ROWS[table.name] = rows
    await engine.dispose()


# Emptying the tables between tests. TRUNCATE of every table cost ~0.2 s per test (it makes new files for each
# table), a third of the PostgreSQL pass. Instead, in one round trip: delete the rows of the tables a test
# wrote (foreign-key triggers off for the transaction), restart the sequences it used, and leave each table of
# the migrations' seed rows alone while its content is unchanged (compared by digest) — the ones a test
# changed are emptied and listed, and get their seed rows back. Same result as TRUNCATE + restore.
_RESET_FUNCTIONS = ["""
CREATE OR REPLACE FUNCTION gasdesk_test_digest(name text) RETURNS text AS $$
DECLARE
  digest text;
BEGIN
  EXECUTE format('SELECT md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), %L)) FROM %I t', '', name)
    INTO digest;
  RETURN digest;
END
$$ LANGUAGE plpgsql
""", """
CREATE OR REPLACE FUNCTION gasdesk_test_reset(tables text[], seeded text[], digests text[], serial text[]) RETURNS text[] AS $$
DECLARE
  name text;
  idx int;
  dirty boolean;
  kept text[] := '{}';
  emptied text[] := '{}';
BEGIN
  SET LOCAL session_replication_role = replica;
  FOREACH name IN ARRAY tables LOOP
    idx := array_position(seeded, name);
    IF idx IS NOT NULL THEN
      IF gasdesk_test_digest(name) = digests[idx] THEN
        kept := kept || name;
        CONTINUE;
      END IF;
      emptied := emptied || name;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', name) INTO dirty;
    IF dirty THEN
      EXECUTE format('DELETE FROM %I', name);
    END IF;
  END LOOP;
  FOR name IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL LOOP
    PERFORM setval(quote_ident(name)::regclass, 1, false);
  END LOOP;
  FOREACH name IN ARRAY kept LOOP
    CONTINUE WHEN NOT name = ANY(serial);
    EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L), (SELECT max(id) FROM %I))', name, 'id', name);
  END LOOP;
  RETURN emptied;
END
$$ LANGUAGE plpgsql
"""]
_SEED_DIGESTS: dict[str, str] = {}


async def _create_reset_function(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for statement in _RESET_FUNCTIONS:
            await conn.execute(text(statement))
        for name in _SEED_ROWS:
            _SEED_DIGESTS[name] = await conn.scalar(text("SELECT gasdesk_test_digest(:n)"), {"n": name})
    await engine.dispose()


async def _reset_tables(conn) -> None:
    seeded = list(_SEED_DIGESTS)
    emptied = await conn.scalar(text("SELECT gasdesk_test_reset(:tables, :seeded, :digests, :serial)"), {
        "tables": [t.name for t in metadata.sorted_tables], "seeded": seeded,
        "digests": [_SEED_DIGESTS[n] for n in seeded],
        "serial": [t.name for t in metadata.sorted_tables if t.name in _SEED_DIGESTS and "id" in t.c]})
    await _restore_seed_rows(conn, set(emptied))


async def _restore_seed_rows(conn, names: set[str]) -> None:
    for table in metadata.sorted_tables:
        rows = _SEED_ROWS.get(table.name)
        if not rows or table.name not in names:
            continue
        await conn.execute(table.insert(), rows)
        if "id" in table.c:
            await conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))"))


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        yield PG_URL
        return
    # A file per test: a connection or task a test leaves behind can only ever touch its own test's data.
    target = tmp_path / "gasdesk.db"
    shutil.copyfile(migrated_template, target)
    yield f"sqlite+aiosqlite:///{target}"


# On SQLite every test has its own database file (above), and a new engine per test recompiled every SQL
# statement every test (a quarter of a database-heavy test's time). So one engine serves the worker's tests:
# its pool is closed between tests and each new connection opens the current test's file.
_SQLITE_FILE: dict[str, str] = {}


def _open_current_test_file(_dialect, _record, cargs, _cparams) -> None:
    cargs[0] = _SQLITE_FILE["path"]


async def _use_test_database(database_url: str) -> None:
    """Keep the app's engine when it serves this test's database (PostgreSQL: the same URL; SQLite: the worker's
    engine that opens the current test's file), with a fresh pool; else make a new one."""
    engine = db.current_engine()
    if PG_URL:
        kept = engine is not None and engine.url == make_url(database_url)
    else:
        _SQLITE_FILE["path"] = make_url(database_url).database
        kept = engine is not None and event.contains(engine.sync_engine, "do_connect", _open_current_test_file)
    if engine is not None and kept:
        await _close_pools()  # fresh pools; the dialect and its compiled-statement cache stay
        return
    await db.dispose_engine()
    if not PG_URL:
        event.listen(db.get_engine().sync_engine, "do_connect", _open_current_test_file)
        db.reader_sessionmaker()  # made now, so that the reader opens each test's file too
        reader = db.current_reader_engine()
        assert reader is not None
        event.listen(reader.sync_engine, "do_connect", _open_current_test_file)


async def _close_pools() -> None:
    for engine in (db.current_reader_engine(), db.current_engine()):
        if engine is not None:
            await engine.dispose()


@pytest.fixture(autouse=True)
async def configured(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Point Settings at the test database; empty every table between tests on PostgreSQL."""
    monkeypatch.setenv("GASDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("GASDESK_ENV", "test")
    monkeypatch.setenv("GASDESK_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("GASDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("GASDESK_BILLING_URL", raising=False)
    # Plumbing tests (queues, sockets, hand-off rules) run on the small deterministic rule bot; tests of the
    # real bot (tests/bot/dialogue, the booking browser test) switch to "nlu", the product default.
    monkeypatch.setenv("GASDESK_BOT_ENGINE", "rules")
    # Tests hold their own session open while calling app code in the same process: give them a few
    # connections. Live servers (tests/browser) run the production default of one (see live_server).
    monkeypatch.setenv("GASDESK_SQLITE_POOL_SIZE", "5")
    # Scheduled reports render xlsx and PDF files (seconds of CPU) whenever the periodic tasks run; only
    # tests/reports turns them on.
    monkeypatch.setenv("GASDESK_REPORTS_SCHEDULE_ENABLED", "false")
    # Report render processes at normal priority: in the idle scheduling class (the product default) they got a
    # core only when both xdist workers waited, and a 3 s scheduled-report test took 20-25 s. The default has
    # its own test (tests/reports/test_export_routes.py).
    monkeypatch.setenv("GASDESK_REPORTS_RENDER_IDLE", "false")
    monkeypatch.setenv("GASDESK_REPORTS_RENDER_CPU_SHARE", "1")
    reset_settings_cache()
    # Job handlers, periodic tasks and hooks (ticket resolved → 回访) as the app factory and the worker register them.
    register_handlers()
    await _use_test_database(database_url)
    if PG_URL:
        async with db.get_engine().begin() as conn:
            await _reset_tables(conn)
    yield
    # facts of this test's events are written before its database goes (never into the next test's)
    await analytics_ingest.drain()
    clock.set_now(None)
    await _close_pools()  # this test's connections close before its database file goes
    reset_settings_cache()


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    async with db.sessionmaker()() as s:
        yield s
        await db.rollback(s)


@pytest.fixture
def events() -> Iterator[list[Event]]:
    """Every event published (after commit) during the test."""
    seen: list[Event] = []
    unsubscribe = bus.subscribe(seen.append)
    yield seen
    unsubscribe()


_APPS: dict[tuple[object, ...], object] = {}


@pytest.fixture
def app():
    """The ASGI app for this test's settings. Building it costs ~0.1 s (every route's signature and schema),
    so apps are kept per the settings ``create_app`` reads; httpx's ASGITransport runs no lifespan, so an
    app holds no per-test state (``register_handlers`` is idempotent and re-run by ``configured``)."""
    from gasdesk.config import get_settings
    from gasdesk.web.app import create_app

    s = get_settings()
    key = (s.env, s.signing_key, s.session_cookie, s.session_max_age_s, s.cookie_secure, tuple(s.allowed_origins),
           s.chat_frame_ancestors, s.run_worker, s.redis_url)
    if key not in _APPS:
        _APPS[key] = create_app()
    else:
        s.check_production_safety()  # as create_app would: production settings without keys must still fail
    return _APPS[key]


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def factory(session: AsyncSession) -> Factory:
    return Factory(session)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (scale-out and cross-process limit tests)."""
    import socket
    import subprocess
    import time

    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (make test-deps installs it)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
