"""Rotating the personal-data key while the app runs: a key ring, key ids in the ciphertext, ``keys rotate`` in
committed batches (resumable, idempotent, audited), and the old key removable afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from gasdesk.all_models import metadata
from gasdesk.audit.models import AuditEntry
from gasdesk.audit.service import Actor
from gasdesk.config import Settings, new_data_key, reset_settings_cache
from gasdesk.customers.models import Customer
from gasdesk.customers.service import CustomerQuery, access_customer, find_customers
from gasdesk.security.crypto import KeyNotAvailable, decrypt_text, encrypt_text, key_id_of
from gasdesk.security.rotation import encrypted_tables, key_usage, rotate_keys
from tests.factories import bot_conversation

PHONE = "13811112222"


def use_ring(monkeypatch: pytest.MonkeyPatch, ring: str | None) -> None:
    if ring is None:
        monkeypatch.delenv("GASDESK_DATA_KEYS", raising=False)
    else:
        monkeypatch.setenv("GASDESK_DATA_KEYS", ring)
    reset_settings_cache()


async def total_usage(session) -> dict[str, int]:
    totals: dict[str, int] = {}
    for counts in (await key_usage(session)).values():
        for key_id, n in counts.items():
            totals[key_id] = totals.get(key_id, 0) + n
    return totals


async def read_every_encrypted_value(session) -> int:
    """Decrypt every encrypted column of every row (through the column types, as the app reads them)."""
    values = 0
    for t in encrypted_tables():
        table = metadata.tables[t.name]
        for row in await session.execute(select(*(table.c[c] for c in t.columns))):
            values += sum(v is not None for v in row)
    return values


def test_ring_format_and_legacy_values(monkeypatch) -> None:
    legacy = encrypt_text("张三")
    assert legacy.startswith("v1:") and key_id_of(legacy) == "legacy"
    key = new_data_key()
    use_ring(monkeypatch, f"k2:{key},legacy")
    fresh = encrypt_text("张三")
    assert fresh.startswith("v2:k2:") and key_id_of(fresh) == "k2"
    assert decrypt_text(fresh) == decrypt_text(legacy) == "张三"
    use_ring(monkeypatch, f"k2:{key}")
    with pytest.raises(KeyNotAvailable):
        decrypt_text(legacy)
    for bad in ("k2", "k2:short", f"a b:{key}", f"k2:{key},k2:{key}", f"legacy:{key}", ","):
        with pytest.raises(ValueError):
            Settings(data_keys=bad)


async def test_rotate_with_data_present_midway_readable_then_old_key_removed(
    session, factory, monkeypatch
) -> None:
    customer = await factory.customer(name="欧阳丽华", phones=[PHONE], account_no="2188003344")
    conversation = await bot_conversation(session, customer_id=customer.id)
    assert (await total_usage(session)).keys() == {"legacy"}
    values_before = await read_every_encrypted_value(session)
    assert values_before >= 5  # name, phone, 户号, building/unit/room, audit snapshots

    new_key = new_data_key()
    use_ring(monkeypatch, f"k2026:{new_key},legacy")
    first = await rotate_keys(Actor.system("test"), batch_size=1, max_batches=1)
    assert not first.complete and first.batches == 1 and first.reencrypted >= 1
    midway = await total_usage(session)
    assert midway["k2026"] >= 1 and midway["legacy"] >= 1, midway
    # both keys readable meanwhile: the app still finds and reads everything
    session.expunge_all()
    assert (await access_customer(session, customer.id)).name == "欧阳丽华"
    assert [c.id for c in await find_customers(session, CustomerQuery(phone=PHONE))] == [customer.id]
    assert await read_every_encrypted_value(session) == values_before + 1  # + the run's audit row

    rest = await rotate_keys(Actor.system("test"), batch_size=2)
    assert rest.complete and rest.reencrypted >= 1
    assert (await total_usage(session)).keys() == {"k2026"}
    again = await rotate_keys(Actor.system("test"), batch_size=50)
    assert again.complete and again.reencrypted == 0, "a second run finds nothing to do"

    # the old key removed: everything still decrypts, lookups by blind index still work
    use_ring(monkeypatch, f"k2026:{new_key}")
    session.expunge_all()
    assert await read_every_encrypted_value(session) == values_before + 3  # + the runs' own audit rows
    assert (await access_customer(session, customer.id)).name == "欧阳丽华"
    assert [c.id for c in await find_customers(session, CustomerQuery(phone=PHONE))] == [customer.id]
    assert (await session.get(type(conversation), conversation.id)).customer_id == customer.id

    rows = (
        await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "keys.rotate").order_by(AuditEntry.id)
        )
    ).all()
    assert [(r.entity_id, r.changes["after"]["complete"], r.actor_name, r.source) for r in rows] == [
        ("k2026", False, "test", "cli"),
        ("k2026", True, "test", "cli"),
        ("k2026", True, "test", "cli"),
    ]
    assert rows[0].changes["after"]["values_reencrypted"] == first.reencrypted


async def test_audit_rows_stay_append_only_outside_a_rotation(session, factory) -> None:
    await factory.customer()
    entry_id = await session.scalar(select(AuditEntry.id).limit(1))
    raw = metadata.tables["audit_entries"]
    for change in ({"changes": encrypt_text("{}")}, {"action": "x"}):
        with pytest.raises((DBAPIError, IntegrityError)):
            async with session.begin_nested():
                await session.execute(update(raw).where(raw.c.id == entry_id).values(change))
    # even inside a grant, only the snapshot may change
    await session.execute(text("INSERT INTO audit_rekey_grants (id) VALUES (1)"))
    with pytest.raises((DBAPIError, IntegrityError)):
        async with session.begin_nested():
            await session.execute(update(raw).where(raw.c.id == entry_id).values(action="x"))


def test_unencrypted_prefixes_are_not_counted_as_keys() -> None:
    assert Customer.__table__.name in {t.name for t in encrypted_tables()}
    with pytest.raises(ValueError):
        key_id_of("plain text")


async def test_keys_commands(factory, monkeypatch) -> None:
    import asyncio

    from typer.testing import CliRunner

    from gasdesk import db
    from gasdesk.cli import app as cli

    async def invoke(*args: str):  # noqa: ANN202 - the CLI in its own loop and engine, as an operator runs it
        await db.dispose_engine()
        return await asyncio.to_thread(CliRunner().invoke, cli, list(args))

    await factory.customer(name="诸葛明远")
    status = await invoke("keys", "status")
    assert (
        status.exit_code == 0
        and "primary key: legacy" in status.output
        and "customers: legacy 1" in status.output
    )
    use_ring(monkeypatch, f"k9:{new_data_key()},legacy")
    partial = await invoke("keys", "rotate", "--batch-size", "1", "--max-batches", "2")
    assert partial.exit_code == 0 and "stopped early" in partial.output and "2 批" in partial.output
    done = await invoke("keys", "rotate")
    assert done.exit_code == 0 and "complete" in done.output, done.output
    use_ring(monkeypatch, f"k10:{new_data_key()}")  # a ring without the key the data is under
    lost = await invoke("keys", "status")
    assert lost.exit_code == 1 and "k9" in lost.output
