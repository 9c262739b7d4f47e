"""``gasdesk backup`` / ``gasdesk restore``: data made through the do_* functions survives a backup, a wiped
database and upload folder, and a restore — personal data decrypts and blind-index lookups find it — on SQLite in
the SQLite pass and on PostgreSQL (pg_dump/pg_restore) in the PostgreSQL pass. Bad paths and non-empty targets are
refused with their exit codes."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from gasdesk import db
from gasdesk.cli import app as cli
from gasdesk.config import get_settings, new_data_key, reset_settings_cache
from gasdesk.conversations.attachments import Attachment, do_store_upload, read_sealed_file
from gasdesk.conversations.pipeline import receive_resident_message
from gasdesk.conversations.service import messages_after
from gasdesk.customers.service import CustomerQuery, access_customer, find_customers
from gasdesk.system.backup import EXIT_BAD_PATH, EXIT_NOT_EMPTY, EXIT_OTHER_KEY, MANIFEST, UPLOADS_FILE
from tests.conftest import BASE_PG_URL, PG_URL
from tests.factories import WO_PNG, bot_conversation

PHONE = "13912345678"
NAME = "司马晓燕"


async def invoke(*args: str) -> Result:
    """The CLI as an operator runs it: its own event loop (in a thread) and its own engine."""
    await db.dispose_engine()
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def make_data(session, factory) -> tuple[int, int, int]:
    customer = await factory.customer(name=NAME, phones=[PHONE], account_no="2188112233")
    conversation = await bot_conversation(session, customer_id=customer.id)
    await receive_resident_message(session, conversation, text="燃气表显示余额不足", client_msg_id="m-1")
    attachment = await do_store_upload(
        session, conversation, "meter.png", WO_PNG, visitor_id=conversation.visitor_id
    )
    await db.commit(session)
    return customer.id, conversation.id, attachment.id


async def assert_readable(customer_id: int, conversation_id: int, attachment_id: int) -> None:
    async with db.sessionmaker()() as s:
        assert (await access_customer(s, customer_id)).name == NAME
        assert [c.id for c in await find_customers(s, CustomerQuery(phone=PHONE))] == [customer_id]
        texts = [m.text for m in await messages_after(s, conversation_id)]
        assert "燃气表显示余额不足" in texts
        attachment = await s.get(Attachment, attachment_id)
        assert read_sealed_file(attachment.path) == WO_PNG


async def backup_wipe_restore(tmp_path: Path, ids: tuple[int, int, int], wipe) -> None:  # noqa: ANN001
    dest = tmp_path / "backup-1"
    result = await invoke("backup", str(dest))
    assert result.exit_code == 0, result.output
    manifest = json.loads((dest / MANIFEST).read_text())
    assert set(manifest["files"]) == {manifest["database_file"], UPLOADS_FILE} and manifest["revision"]
    assert PHONE not in (dest / manifest["database_file"]).read_bytes().decode("latin-1")
    assert (await invoke("backup", str(dest))).exit_code == EXIT_BAD_PATH, "never over an earlier backup"

    # the live data is still there: restore refuses to overwrite it
    refused = await invoke("restore", str(dest))
    assert refused.exit_code == EXIT_NOT_EMPTY and "--force" in refused.output

    await wipe()
    shutil.rmtree(get_settings().upload_dir)
    result = await invoke("restore", str(dest))
    assert result.exit_code == 0, result.output
    await db.dispose_engine()
    await assert_readable(*ids)

    # --force restores over data; a backup made under another data key is refused before anything is written
    assert (await invoke("restore", str(dest), "--force")).exit_code == 0
    await assert_readable(*ids)
    return dest


def test_bad_paths_exit_with_clear_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["restore", str(tmp_path / "nope")])
    assert missing.exit_code == EXIT_BAD_PATH and "备份目录不存在" in missing.output
    (tmp_path / "empty").mkdir()
    assert runner.invoke(cli, ["restore", str(tmp_path / "empty")]).exit_code == EXIT_BAD_PATH
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert runner.invoke(cli, ["backup", str(tmp_path / "full")]).exit_code == EXIT_BAD_PATH
    assert runner.invoke(cli, ["backup", str(tmp_path / "no" / "such" / "dir")]).exit_code == EXIT_BAD_PATH


@pytest.mark.skipif(bool(PG_URL), reason="SQLite pass")
async def test_sqlite_backup_wipe_restore(session, factory, tmp_path: Path, monkeypatch) -> None:
    ids = await make_data(session, factory)
    await session.close()
    database = Path(make_url(get_settings().database_url).database)

    async def wipe() -> None:
        await db.dispose_engine()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)

    dest = await backup_wipe_restore(tmp_path, ids, wipe)

    # damaged or foreign backups are refused
    (dest / UPLOADS_FILE).write_bytes((dest / UPLOADS_FILE).read_bytes() + b"x")
    damaged = await invoke("restore", str(dest), "--force")
    assert damaged.exit_code == EXIT_BAD_PATH and "校验" in damaged.output
    other = tmp_path / "backup-2"
    assert (await invoke("backup", str(other))).exit_code == 0
    monkeypatch.setenv("GASDESK_DATA_KEY", new_data_key())
    reset_settings_cache()
    assert (await invoke("restore", str(other), "--force")).exit_code == EXIT_OTHER_KEY


async def test_backup_while_writing_is_consistent(session, factory, tmp_path: Path) -> None:
    """The copy is one snapshot even while the app keeps committing (SQLite's backup API restarts on writes by
    another connection; pg_dump reads one transaction)."""
    await make_data(session, factory)
    stop = asyncio.Event()

    async def keep_writing() -> int:
        n = 0
        while not stop.is_set():
            await factory.customer()
            n += 1
        return n

    writer = asyncio.create_task(keep_writing())
    await asyncio.sleep(0.05)
    result = await invoke("backup", str(tmp_path / "live"))
    stop.set()
    assert await writer > 0
    assert result.exit_code == 0, result.output
    copy = tmp_path / "live" / "database.sqlite"
    if copy.exists():
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] >= 1


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL pass")
async def test_postgresql_backup_wipe_restore(session, factory, tmp_path: Path, monkeypatch) -> None:
    ids = await make_data(session, factory)
    await session.close()
    # "wiped": an empty database of its own in the same cluster, so this worker's test database stays as it was
    fresh = (
        make_url(PG_URL)
        .set(database=f"{make_url(PG_URL).database}_restore")
        .render_as_string(hide_password=False)
    )
    admin = create_async_engine(BASE_PG_URL, isolation_level="AUTOCOMMIT")
    name = make_url(fresh).database
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))

        async def wipe() -> None:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            monkeypatch.setenv("GASDESK_DATABASE_URL", fresh)
            reset_settings_cache()
            await db.dispose_engine()

        await backup_wipe_restore(tmp_path, ids, wipe)
        async with db.sessionmaker()() as s:
            assert await s.scalar(select(text("count(*)")).select_from(text("customers"))) == 1
    finally:
        await db.dispose_engine()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
