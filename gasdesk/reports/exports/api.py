"""Report files for supervisors and admins: any report exported as xlsx or PDF with the report's own query,
and the stored scheduled reports (日报/周报). Every export and download is audited."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response

from gasdesk.auth.access import allow
from gasdesk.auth.models import User
from gasdesk.auth.roles import MANAGERS
from gasdesk.db import DbSession
from gasdesk.fields import Id
from gasdesk.reports.exports import service
from gasdesk.reports.exports.schemas import ExportQuery, ReportFileOut

router = APIRouter(tags=["reports"])

FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media: {} for media in service.MEDIA_TYPES.values()}, "description": "the report file (xlsx or PDF)"}}
ReportKey = Annotated[str, Path(pattern=r"^[a-z_]{1,20}$", description="报表：overview、channels、ai、kb、tickets…")]


def file_response(data: bytes, filename: str, media_type: str) -> Response:
    """The file as an attachment: an ASCII name for old clients and the UTF-8 one (RFC 6266 ``filename*``)."""
    fallback = "report." + filename.rsplit(".", 1)[-1]
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": disposition, "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/api/v1/reports/{key}/export", response_class=Response, responses=FILE_RESPONSES)
async def export_report(key: ReportKey, query: Annotated[ExportQuery, Query()], session: DbSession,
                        user: User = allow(*MANAGERS)) -> Response:
    """Download report ``key`` as xlsx (native Excel charts) or PDF (charts drawn on the server), for the
    same grain, day and filters as the report page. Audited as ``report.export``."""
    exported = await service.do_export_report(session, user, key, query)
    return file_response(exported.data, exported.filename, exported.media_type)


@router.get("/api/v1/report-files", response_model=list[ReportFileOut])
async def list_report_files(session: DbSession, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                            _: User = allow(*MANAGERS)) -> list[ReportFileOut]:
    """The scheduled reports stored so far (日报, 周报), newest first."""
    return [ReportFileOut(id=row.id, report_key=row.report_key, grain=row.grain, label=row.label, fmt=row.fmt,
                          filename=row.filename, size=row.size, created_at=row.created_at, url=service.file_url(row))
            for row in await service.list_report_files(session, limit=limit)]


@router.get("/api/v1/report-files/{file_id}", response_class=Response, responses=FILE_RESPONSES)
async def download_report_file(file_id: Id, session: DbSession, user: User = allow(*MANAGERS)) -> Response:
    """One stored scheduled report file. Audited as ``report.download``."""
    row, data = await service.access_report_file(session, user, file_id)
    return file_response(data, row.filename, service.MEDIA_TYPES[row.fmt])
