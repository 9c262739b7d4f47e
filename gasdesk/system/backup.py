"""``gasdesk backup DEST`` and ``gasdesk restore SRC`` (docs/operations.md).

A backup is a folder: the database (SQLite: ``database.sqlite``, a consistent copy made with SQLite's online
backup API while the app keeps writing; PostgreSQL: ``database.dump``, ``pg_dump -Fc``, one snapshot), the upload
folder as ``uploads.tar`` (the files are sealed with AES-GCM already) and ``manifest.json`` (backend, schema
revision, version, SHA-256 of each file, and a check value of ``GASDESK_DATA_KEY`` — never the key itself: a
backup is no use without the keys, which are kept apart from it). Restore checks all of that first, and refuses to
write over a database or upload folder that holds anything unless ``force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from gasdesk import __version__
from gasdesk.clock import utcnow
from gasdesk.config import Settings
from gasdesk.security.crypto import blind_index

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
PG_FILE = "database.dump"
UPLOADS_FILE = "uploads.tar"
FORMAT = 1

# Exit codes of the commands (and BackupError.code).
EXIT_FAILED = 1  # a tool failed (pg_dump, pg_restore), or the database is unreachable
EXIT_BAD_PATH = 2  # DEST not empty, SRC missing / not a backup / damaged, wrong backend
EXIT_NOT_EMPTY = 3  # the target database or upload folder holds data: --force to overwrite
EXIT_OTHER_KEY = 4  # the backup was made under another GASDESK_DATA_KEY: --ignore-key-check to restore anyway


class BackupError(Exception):
    """A backup or restore that cannot go on; ``code`` is the command's exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class BackupReport:
    folder: Path
    backend: str
    revision: str | None
    files: dict[str, int]  # name → bytes


def key_check() -> str:
    """A value that changes with ``GASDESK_DATA_KEY`` and reveals nothing of it (an HMAC under the blind-index
    key): restore tells a backup made under another key before writing anything."""
    return blind_index("gasdesk-backup-key-check", kind="backup")[:16]


def pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore`` of the newest PostgreSQL client installed under /usr/lib/postgresql/*/bin (as
    scripts/with-postgres.sh finds the server), else the one on PATH."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.parent.name)) or (0,)

    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=version)
    if candidates:
        return str(candidates[-1])
    found = shutil.which(name)
    if not found:
        raise BackupError(
            f"找不到 {name}：请安装 PostgreSQL 客户端（Debian: postgresql-client）", EXIT_FAILED
        )
    return found


def libpq_args(database_url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options for the PostgreSQL tools from gasdesk's SQLAlchemy URL; the password goes into the
    environment (PGPASSWORD), never onto the command line where ``ps`` shows it."""
    url = make_url(database_url)
    host = url.host or url.query.get("host")
    args = []
    if host:
        args += ["-h", str(host)]
    if url.port:
        args += ["-p", str(url.port)]
    if url.username:
        args += ["-U", url.username]
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("SQLite 数据库不是文件，无法备份", EXIT_BAD_PATH)
    return Path(database)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BackupError(f"{what} 失败（退出码 {result.returncode}）: {' / '.join(tail)}", EXIT_FAILED)


async def _revision_and_table_count(database_url: str) -> tuple[str | None, int]:
    """The schema revision (None when there is none) and how many tables the database has."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                tables = await conn.scalar(
                    text(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
                    )
                )
            else:
                tables = await conn.scalar(text("SELECT count(*) FROM sqlite_master WHERE type = 'table'"))
            revision = None
            if tables:
                try:
                    revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
                except Exception:  # noqa: BLE001 - no alembic table: a database gasdesk did not make
                    revision = None
            return revision, int(tables or 0)
    except BackupError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreachable server, unreadable file: one clear message
        raise BackupError(f"无法连接数据库: {type(exc).__name__}", EXIT_FAILED) from exc
    finally:
        await engine.dispose()


async def backup(dest: Path, settings: Settings) -> BackupReport:
    """Write a backup folder at ``dest`` (which must not exist, or be an empty folder)."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"目标已存在且不是空目录: {dest}", EXIT_BAD_PATH)
    if not dest.parent.is_dir():
        raise BackupError(f"目标的上级目录不存在: {dest.parent}", EXIT_BAD_PATH)
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    if backend == "sqlite" and not sqlite_path(settings.database_url).is_file():
        raise BackupError(f"数据库文件不存在: {sqlite_path(settings.database_url)}", EXIT_BAD_PATH)
    revision, _ = await _revision_and_table_count(settings.database_url)
    dest.mkdir(mode=0o700, exist_ok=True)
    if backend == "sqlite":
        database_file = SQLITE_FILE
        source = sqlite3.connect(f"file:{sqlite_path(settings.database_url)}?mode=ro", uri=True)
        target = sqlite3.connect(dest / SQLITE_FILE)
        try:
            source.backup(target)  # one consistent snapshot, even while the app writes (WAL)
        finally:
            target.close()
            source.close()
    else:
        database_file = PG_FILE
        args, env = libpq_args(settings.database_url)
        _run(
            [
                pg_tool("pg_dump"),
                "-Fc",
                "--no-owner",
                "--no-privileges",
                "-f",
                str(dest / PG_FILE),
                *args,
                "-d",
                str(make_url(settings.database_url).database),
            ],
            env,
            "pg_dump",
        )
    with tarfile.open(dest / UPLOADS_FILE, "w") as tar:
        if settings.upload_dir.is_dir():
            tar.add(settings.upload_dir, arcname=".")
    files = {name: (dest / name).stat().st_size for name in (database_file, UPLOADS_FILE)}
    manifest = {
        "format": FORMAT,
        "created_at": utcnow().isoformat(),
        "gasdesk_version": __version__,
        "backend": backend,
        "revision": revision,
        "database_file": database_file,
        "key_check": key_check(),
        "files": {name: _sha256(dest / name) for name in files},
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    for name in (*files, MANIFEST):
        (dest / name).chmod(0o600)
    return BackupReport(dest, backend, revision, files)


def read_manifest(src: Path) -> dict:
    """The manifest of backup folder ``src``, after checking every file it lists against its SHA-256."""
    if not src.is_dir():
        raise BackupError(f"备份目录不存在: {src}", EXIT_BAD_PATH)
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"不是 gasdesk 备份（缺少或无法读取 {MANIFEST}）: {src}", EXIT_BAD_PATH) from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise BackupError(f"不支持的备份格式: {src}", EXIT_BAD_PATH)
    for name, digest in manifest["files"].items():
        path = src / name
        if "/" in name or not path.is_file():
            raise BackupError(f"备份缺少文件: {name}", EXIT_BAD_PATH)
        if _sha256(path) != digest:
            raise BackupError(f"备份文件已损坏（校验值不符）: {name}", EXIT_BAD_PATH)
    return manifest


async def restore(
    src: Path, settings: Settings, *, force: bool = False, ignore_key_check: bool = False
) -> dict:
    """Restore backup folder ``src`` into the configured database and upload folder; returns the manifest.
    Stop the app first (SQLite) — PostgreSQL restores in one transaction, but running processes would see the
    change of every table at once."""
    manifest = read_manifest(src)
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest.get("backend") != backend:
        raise BackupError(
            f"备份来自 {manifest.get('backend')}，当前数据库是 {backend}：不能跨数据库恢复", EXIT_BAD_PATH
        )
    if manifest.get("key_check") != key_check() and not ignore_key_check:
        raise BackupError(
            "备份时的 GASDESK_DATA_KEY 与当前配置不同，恢复后个人信息将无法解密；"
            "请配置备份时的密钥（或用 --ignore-key-check 仍然恢复）",
            EXIT_OTHER_KEY,
        )
    uploads = settings.upload_dir
    if backend == "sqlite" and not sqlite_path(settings.database_url).exists():
        tables = 0
    else:
        _, tables = await _revision_and_table_count(settings.database_url)
    uploads_used = uploads.is_dir() and any(uploads.iterdir())
    if (tables or uploads_used) and not force:
        what = "数据库" if tables else "上传目录"
        raise BackupError(f"目标{what}不是空的，拒绝覆盖（确认要覆盖请加 --force）", EXIT_NOT_EMPTY)

    if backend == "sqlite":
        target_path = sqlite_path(settings.database_url)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"file:{src / manifest['database_file']}?mode=ro", uri=True)
        target = sqlite3.connect(target_path)
        try:
            source.backup(target)  # page by page into the target, WAL included: no half-copied file
        finally:
            target.close()
            source.close()
    else:
        args, env = libpq_args(settings.database_url)
        clean = ["--clean", "--if-exists"] if tables else []
        _run(
            [
                pg_tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                *clean,
                *args,
                "-d",
                str(make_url(settings.database_url).database),
                str(src / manifest["database_file"]),
            ],
            env,
            "pg_restore",
        )
    uploads.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src / UPLOADS_FILE) as tar:
        tar.extractall(uploads, filter="data")  # no absolute paths, no "..", no devices or links out
    return manifest
