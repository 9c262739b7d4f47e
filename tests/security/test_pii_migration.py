"""Migration 0008 converts plaintext rows and upload files written by earlier versions: nothing readable is
left behind, the app still reads every row and file, and the downgrade gives the plaintext back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gasdesk.conversations.attachments import read_sealed_file
from gasdesk.migrations.runner import upgrade
from gasdesk.security.crypto import decrypt_text

PHONE = "13812345678"
ACCOUNT = "2100012345"


def _rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))


def test_upgrade_encrypts_and_redacts_existing_rows_and_downgrade_restores_them(tmp_path: Path) -> None:
    from alembic import command

    from gasdesk.migrations.runner import alembic_config

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0006")
    now = "2026-01-01 00:00:00.000000"
    with sqlite3.connect(path) as conn:
        # (sqlite3 does not enforce foreign keys by default: user 1 need not exist)
        conn.execute("INSERT INTO tickets (id, number, type, priority, status, title, sla_state, escalation_level, "
                     "reopen_count, created_at, updated_at) VALUES (1, 'GD1', 'repair', 'normal', 'new', ?, 'ok', 0, 0, "
                     "?, ?)",
                     (f"王秀英 {PHONE} 家里漏气", now, now))
        conn.execute("INSERT INTO notifications (id, user_id, kind, title, body, created_at) VALUES "
                     "(1, 1, 'emergency.gas_leak', '燃气泄漏报警 GD1', ?, ?)", (f"我家漏气了，电话{PHONE}", now))
        conn.execute("INSERT INTO saved_views (id, user_id, name, page, query_string, created_at) VALUES "
                     "(1, 1, '我的', 'tickets', 'q=王秀英', ?)", (now,))
        conn.execute("INSERT INTO kb_misses (id, query, normalized, channel, best_score, at) VALUES "
                     "(1, ?, ?, 'webchat', 0.0, ?)", (f"户号{ACCOUNT}能退费吗", f"户号{ACCOUNT}能退费吗", now))
        conn.execute("INSERT INTO jobs (id, name, payload, status, attempts, max_attempts, run_at, last_error, "
                     "created_at) VALUES (1, 'x', '{}', 'failed', 1, 1, ?, ?, ?)", (now, f"ValueError: '{PHONE}'", now))
        photo = tmp_path / "uploads" / "2026" / "01" / "tok123.jpg"
        photo.parent.mkdir(parents=True)
        photo.write_bytes(b"\xff\xd8\xff" + PHONE.encode())
        conn.execute("INSERT INTO attachments (id, token, name, mime, kind, size, path, created_at) VALUES "
                     "(1, 'tok123', 'v1:x', 'image/jpeg', 'image', 14, ?, ?)", (str(photo), now))
    command.upgrade(alembic_config(url), "0008")

    sealed = Path(_rows(path, "SELECT path FROM attachments")[0][0])
    assert sealed.name == "tok123.enc" and not photo.exists()
    assert PHONE.encode() not in sealed.read_bytes()
    assert read_sealed_file(sealed) == b"\xff\xd8\xff" + PHONE.encode()

    rows = "".join(str(r) for t in ("tickets", "notifications", "saved_views", "kb_misses", "jobs")
                   for r in _rows(path, f"SELECT * FROM {t}"))
    raw_file = path.read_bytes()  # the rebuilt tables must not leave the old text in free pages either
    for secret in (PHONE, ACCOUNT, "王秀英"):
        assert secret not in rows and secret.encode() not in raw_file
    assert decrypt_text(_rows(path, "SELECT title FROM tickets")[0][0]) == f"王秀英 {PHONE} 家里漏气"
    assert decrypt_text(_rows(path, "SELECT body FROM notifications")[0][0]) == "我家漏气了，电话[手机号]"
    assert decrypt_text(_rows(path, "SELECT query_string FROM saved_views")[0][0]) == "q=王秀英"
    query, key = _rows(path, "SELECT query, normalized_index FROM kb_misses")[0]
    assert decrypt_text(query) == "户号[户号]能退费吗" and len(key) == 64
    assert decrypt_text(_rows(path, "SELECT last_error FROM jobs")[0][0]) == "ValueError: '[手机号]'"

    command.downgrade(alembic_config(url), "0006")
    assert _rows(path, "SELECT title FROM tickets")[0][0] == f"王秀英 {PHONE} 家里漏气"
    assert _rows(path, "SELECT query, normalized FROM kb_misses")[0] == ("户号[户号]能退费吗", "户号户号能退费")
    restored = Path(_rows(path, "SELECT path FROM attachments")[0][0])
    assert restored.read_bytes() == b"\xff\xd8\xff" + PHONE.encode() and not sealed.exists()
