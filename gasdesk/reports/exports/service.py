"""Report files: a report exported on demand (xlsx or PDF, audited), and the scheduled reports — the
overview of yesterday every morning and of last week every Monday, rendered in both formats, stored sealed
and announced to the supervisors in their notification bell.

Rendering takes from a few hundred milliseconds (a day) to seconds (a year of charts): the report's figures
are read and its files rendered in a render process (``reports/render.py``, its own database connection, the
lowest CPU priority) once the request's transaction is committed, so neither the event loop nor the web
process's database connection (SQLite has one) waits on it, and chat goes on meanwhile."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gasdesk.audit.service import Actor, record_audit
from gasdesk.auth.models import User
from gasdesk.auth.roles import Role
from gasdesk.clock import local_zone, to_local, utcnow
from gasdesk.config import get_settings
from gasdesk.db import on_rollback
from gasdesk.errors import NotFound
from gasdesk.notifications.service import do_notify
from gasdesk.reports.builders import check_report_query, period_for
from gasdesk.reports.exports.models import ReportFile
from gasdesk.reports.exports.schemas import ExportQuery
from gasdesk.reports.figures import GRAIN_LABELS, export_filename
from gasdesk.reports.model import Grain, Report
from gasdesk.reports.render import MEDIA_TYPES, RENDERERS, build_and_render_report
from gasdesk.security.crypto import decrypt_bytes, encrypt_bytes

log = logging.getLogger(__name__)

FILTER_KEYS = ("team", "channel", "district")

SCHEDULED_KEY = "overview"
SCHEDULE_EVERY_S = 300  # the job looks every 5 minutes; a period's files are made once (report_files rows)
SCHEDULER = Actor.system("定时报表", source="job")
NOTIFY_KIND = "report.ready"


@dataclass(frozen=True)
class ExportFile:
    """A rendered report, ready to send: the bytes, the file name people get and its media type."""

    data: bytes
    filename: str
    media_type: str


def filters_of(query: ExportQuery) -> dict[str, str]:
    """The report filters set in the query (team, channel, district), blanks dropped."""
    return {key: value for key in FILTER_KEYS if (value := getattr(query, key))}


async def do_export_report(session: AsyncSession, user: User, key: str, query: ExportQuery) -> ExportFile:
    """Build report ``key`` for the query's period and filters, render it, and audit the export
    (``report.export``). Commits first: the render process reads the figures on its own connection."""
    day = query.day or to_local(utcnow()).date()
    period = period_for(query.grain, day)
    filters = filters_of(query)
    check_report_query(key, filters)
    actor = Actor.of(user)
    report, files = await build_and_render_report(session, key, period, filters, [query.format], utcnow())
    data = files[query.format]
    record_audit(session, actor, "report.export", "report", key,
                 after={"format": query.format, "grain": period.grain, "period": period.label, **filters,
                        "bytes": len(data)})
    return ExportFile(data=data, filename=export_filename(report, query.format), media_type=MEDIA_TYPES[query.format])


# ---------------------------------------------------------------- stored files


def _sealed_path(created: datetime) -> Path:
    return get_settings().var_dir / "reports" / created.strftime("%Y") / f"{secrets.token_urlsafe(18)}.sealed"


def _write_sealed(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    part.write_bytes(encrypt_bytes(data, aad=path.stem.encode()))
    os.replace(part, path)  # readers never see half a file


def _read_sealed(path: Path) -> bytes:
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise NotFound("报表文件不存在", code="report_file_not_found") from None
    return decrypt_bytes(blob, aad=path.stem.encode())


def file_url(row: ReportFile) -> str:
    return f"/api/v1/report-files/{row.id}"


async def list_report_files(session: AsyncSession, *, limit: int = 50) -> list[ReportFile]:
    """The stored report files, newest period first."""
    return list(await session.scalars(
        select(ReportFile).order_by(ReportFile.period_start.desc(), ReportFile.id.desc()).limit(limit)))


async def access_report_file(session: AsyncSession, user: User, file_id: int) -> tuple[ReportFile, bytes]:
    """A stored report file and its contents, for the staff the route allows; each download is audited."""
    row = await session.get(ReportFile, file_id)
    if row is None:
        raise NotFound("报表文件不存在", code="report_file_not_found")
    data = await asyncio.to_thread(_read_sealed, Path(row.path))
    record_audit(session, Actor.of(user), "report.download", "report_file", row.id,
                 after={"filename": row.filename})
    return row, data


# ---------------------------------------------------------------- scheduled reports


def due_periods(now: datetime, hour: int) -> list[tuple[Grain, date]]:
    """The latest daily and weekly periods whose files are due at ``now``: yesterday's once today's ``hour``
    (local) has passed, else the day before; last week's once Monday's ``hour`` has passed, else the week
    before. A worker that was down at that hour catches up with the latest period (not older ones)."""
    local = to_local(now)
    zone = local_zone()
    today_at = datetime.combine(local.date(), time(hour), zone)
    day = local.date() - timedelta(days=1 if local >= today_at else 2)
    monday = local.date() - timedelta(days=local.weekday())
    if local < datetime.combine(monday, time(hour), zone):
        monday -= timedelta(days=7)
    return [("day", day), ("week", monday - timedelta(days=7))]


async def make_scheduled_reports(session: AsyncSession) -> int:
    """Periodic: make the due daily and weekly overview reports (xlsx + PDF) that are not stored yet, and
    tell every active supervisor. Returns how many files it made."""
    settings = get_settings()
    if not settings.reports_schedule_enabled:
        return 0
    made = 0
    for grain, day in due_periods(utcnow(), settings.reports_schedule_hour):
        made += await _make_period(session, grain, day)
    return made


async def _make_period(session: AsyncSession, grain: Grain, day: date) -> int:
    period = period_for(grain, day)
    stored = set(await session.scalars(select(ReportFile.fmt).where(
        ReportFile.report_key == SCHEDULED_KEY, ReportFile.grain == grain, ReportFile.period_start == period.start)))
    missing = [fmt for fmt in RENDERERS if fmt not in stored]
    if not missing:
        return 0
    # read and rendered in the render process; the session is committed first (the periodic runner commits
    # the rest)
    report, rendered = await build_and_render_report(session, SCHEDULED_KEY, period, {}, missing, utcnow())
    now = utcnow()
    rows: dict[str, ReportFile] = {}
    for fmt, data in rendered.items():
        path = _sealed_path(now)
        await asyncio.to_thread(_write_sealed, path, data)
        on_rollback(session, partial(path.unlink, missing_ok=True))
        row = ReportFile(report_key=SCHEDULED_KEY, grain=grain, period_start=period.start, period_end=period.end,
                         label=period.label, fmt=fmt, filename=export_filename(report, fmt), path=str(path),
                         size=len(data), sha256=hashlib.sha256(data).hexdigest(), created_at=now)
        session.add(row)
        rows[fmt] = row
    await session.flush()
    record_audit(session, SCHEDULER, "report.generate", "report", SCHEDULED_KEY,
                 after={"grain": grain, "period": period.label, "files": sorted(rows)})
    await _notify_supervisors(session, report, rows)
    log.info("scheduled %s report %s: %s", grain, period.label, ", ".join(sorted(rows)))
    return len(rows)


async def _notify_supervisors(session: AsyncSession, report: Report, rows: dict[str, ReportFile]) -> None:
    supervisors = list(await session.scalars(select(User.id).where(
        User.role == Role.supervisor.value, User.is_active.is_(True)).order_by(User.id)))
    link_row = rows.get("pdf") or next(iter(rows.values()))
    others = "；".join(f"{fmt.upper()}：{file_url(row)}" for fmt, row in sorted(rows.items()))
    title = f"{GRAIN_LABELS[report.period.grain]}已生成：{report.period.label}"
    for user_id in supervisors:
        do_notify(session, user_id, NOTIFY_KIND, title, f"{report.title}（{others}）", link=file_url(link_row))
