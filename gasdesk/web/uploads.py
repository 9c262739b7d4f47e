"""Reading multipart uploads safely.

FastAPI reads ``Form``/``File`` parameters before any dependency runs, so a route that declares them
accepts the whole body (spooled to a temporary file) before it knows who is asking. Upload routes
therefore declare no body parameters: they authenticate and authorise from headers, path and query,
and only then call :func:`read_upload_form`, which

* refuses a declared ``Content-Length`` above the cap before reading a byte (413),
* stops reading as soon as the cap is passed when no length was declared (chunked bodies),
* keeps the parts in memory (the plaintext of a resident's photo never lands in a temporary file;
  files are encrypted before they are written, see ``conversations.attachments``).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from gasdesk.auth.access import CSRF_FIELD
from gasdesk.errors import InvalidInput, PayloadTooLarge, PermissionDenied
from gasdesk.web.body_limit import body_cap

MB = 1024 * 1024
# Above every cap below: SpooledTemporaryFile then never rolls over to disk.
_IN_MEMORY_LIMIT = 64 * MB


class _InMemoryMultiPartParser(MultiPartParser):
    spool_max_size = _IN_MEMORY_LIMIT


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes


@dataclass
class UploadForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)

    def value(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def values(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def file(self, name: str) -> UploadedFile | None:
        files = self.files.get(name)
        return files[0] if files else None


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"上传内容过大（最大 {max_bytes / MB:g} MB）", code="file_too_large")


def check_declared_length(request: Request, max_bytes: int) -> None:
    """Refuse by the declared Content-Length, before any of the body is read."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise InvalidInput("Content-Length 无效", code="invalid_upload") from None
    if length > max_bytes:
        raise _too_large(max_bytes)


async def read_upload_form(request: Request, *, max_bytes: int | None = None, max_files: int = 1,
                           max_fields: int = 20, session: AsyncSession | None = None) -> UploadForm:
    """Parse a multipart body of at most ``max_bytes`` (default: the route's cap in ``web.body_limit``; call
    only after the caller is authorised).

    ``session`` is committed first: a slow client sending ten megabytes must not hold a database
    connection (SQLite has one) for the whole upload."""
    if max_bytes is None:
        max_bytes = body_cap(request.method, request.url.path)
    if max_bytes > _IN_MEMORY_LIMIT:
        raise ValueError("upload cap above the in-memory limit")
    check_declared_length(request, max_bytes)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidInput("请以 multipart/form-data 方式上传文件", code="invalid_upload")
    if session is not None:
        await session.commit()

    async def capped() -> AsyncGenerator[bytes, None]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise _too_large(max_bytes)
            yield chunk

    stream = capped()
    parser = _InMemoryMultiPartParser(request.headers, stream, max_files=max_files, max_fields=max_fields)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidInput(f"上传内容格式有误：{exc.message}", code="invalid_upload") from None
    finally:
        await stream.aclose()
    out = UploadForm()
    try:
        expected = getattr(request.state, "csrf_expected", None)
        if expected is not None:  # a cookie-authenticated page form: its token travels in the body
            sent = form.get(CSRF_FIELD)
            if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
                raise PermissionDenied("请求缺少有效的安全令牌（CSRF），请刷新页面后重试", code="csrf_failed")
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if value.filename:  # an empty file input in a browser form sends a part without a name
                    out.files.setdefault(name, []).append(UploadedFile(value.filename, await value.read()))
            else:
                out.fields.setdefault(name, []).append(value)
    finally:
        await form.close()
    return out
