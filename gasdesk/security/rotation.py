"""Rotating the field-encryption key while the app runs (``gasdesk keys rotate`` / ``keys status``).

Every encrypted column (``EncryptedString``/``EncryptedJSON``, found in the models, so a new one is never
forgotten) is read in primary-key order, in batches; each value not yet under the ring's primary key is decrypted
with the key its id names and encrypted again under the primary, and the batch commits. An UPDATE changes a value
only if it still holds what was read (compare-and-set): a value the app rewrote meanwhile is already under the
primary key of the processes that run the new ring. Values under the primary key are skipped, so a run stopped
half-way simply starts again (resumable and idempotent). Audit snapshots are append-only: their batch holds a row
in ``audit_rekey_grants`` (inserted and deleted inside that transaction), which is what lets the database trigger
accept an UPDATE of ``changes`` alone (migration 0024).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, and_, column, delete, func, insert, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.all_models import metadata
from gasdesk.audit.models import AuditEntry, AuditRekeyGrant
from gasdesk.audit.service import Actor, record_audit
from gasdesk.db import transaction
from gasdesk.security.crypto import EncryptedJSON, EncryptedString, key_id_of, key_ring, reencrypt

DEFAULT_BATCH = 500
# "v2:" + a key id of at most 20 characters + ":" fits: enough of each value to read its key id
_KEY_ID_PREFIX_CHARS = 32


@dataclass(frozen=True)
class EncryptedTable:
    """A table with encrypted columns: its name, its (single) primary-key column and those columns."""

    name: str
    key: str
    columns: tuple[str, ...]


def encrypted_tables() -> list[EncryptedTable]:
    """Every table holding encrypted columns, read from the models."""
    found = []
    for t in metadata.sorted_tables:
        cols = tuple(c.name for c in t.c if isinstance(c.type, EncryptedString | EncryptedJSON))
        if cols:
            [key] = [c.name for c in t.primary_key]  # all of them have a one-column key; a new one must too
            found.append(EncryptedTable(t.name, key, cols))
    return found


def _raw(t: EncryptedTable) -> Any:
    # plain Text columns: the ciphertext itself, not the TypeDecorator's plaintext
    return table(t.name, column(t.key), *(column(c, Text) for c in t.columns))


@dataclass
class RotationReport:
    """What a run did. ``complete`` is False when it stopped after ``max_batches``."""

    primary: str
    scanned: int = 0
    reencrypted: int = 0
    batches: int = 0
    complete: bool = False
    per_table: dict[str, int] = field(default_factory=dict)


async def _rotate_batch(
    session: AsyncSession, t: EncryptedTable, after: Any, batch_size: int
) -> tuple[list[Any], int]:
    raw = _raw(t)
    query = select(raw.c[t.key], *(raw.c[c] for c in t.columns)).order_by(raw.c[t.key]).limit(batch_size)
    if after is not None:
        query = query.where(raw.c[t.key] > after)
    rows = (await session.execute(query)).all()
    changed = 0
    audit = t.name == AuditEntry.__tablename__
    if audit and rows:
        await session.execute(insert(AuditRekeyGrant).values(id=1))
    for row in rows:
        new_values, unchanged = {}, []
        for name in t.columns:
            value = row._mapping[name]
            if value is None:
                continue
            rotated = reencrypt(value)
            if rotated is not None:
                new_values[name] = rotated
                unchanged.append(raw.c[name] == value)
        if new_values:
            result = await session.execute(
                update(raw).where(and_(raw.c[t.key] == row[0], *unchanged)).values(new_values)
            )
            changed += len(new_values) if result.rowcount else 0  # type: ignore[attr-defined]
    if audit and rows:
        await session.execute(delete(AuditRekeyGrant))
    return [row[0] for row in rows], changed


async def rotate_keys(
    actor: Actor,
    *,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    on_progress: Callable[[str, RotationReport], None] | None = None,
) -> RotationReport:
    """Re-encrypt every encrypted value not under the primary key, one committed transaction per batch of rows;
    then write the audit row ``keys.rotate`` (also for a run cut short by ``max_batches``, marked incomplete)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport(primary=key_ring().primary)
    stopped = False
    for t in encrypted_tables():
        after = None
        while not stopped:
            if max_batches is not None and report.batches >= max_batches:
                stopped = True
                break
            async with transaction() as session:
                keys, changed = await _rotate_batch(session, t, after, batch_size)
            if not keys:
                break  # an empty table (or the end of one) is no batch
            report.batches += 1
            report.scanned += len(keys)
            report.reencrypted += changed
            report.per_table[t.name] = report.per_table.get(t.name, 0) + changed
            if on_progress is not None:
                on_progress(t.name, report)
            if len(keys) < batch_size:
                break
            after = keys[-1]
        if stopped:
            break
    report.complete = not stopped
    async with transaction() as session:
        record_audit(
            session,
            actor,
            "keys.rotate",
            "data_keys",
            report.primary,
            after={
                "primary": report.primary,
                "complete": report.complete,
                "rows_scanned": report.scanned,
                "values_reencrypted": report.reencrypted,
            },
        )
    return report


async def key_usage(session: AsyncSession) -> dict[str, Counter[str]]:
    """Per table, how many encrypted values each key id holds (``legacy`` = written before key ids)."""
    usage: dict[str, Counter[str]] = {}
    for t in encrypted_tables():
        raw = _raw(t)
        counts: Counter[str] = Counter()
        for name in t.columns:
            query = select(func.substr(raw.c[name], 1, _KEY_ID_PREFIX_CHARS)).where(raw.c[name].is_not(None))
            for (prefix,) in await session.execute(query):
                try:
                    counts[key_id_of(prefix)] += 1
                except ValueError:
                    counts["(not encrypted)"] += 1
        usage[t.name] = counts
    return usage
