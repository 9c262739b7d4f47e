"""Images and files in chats and on tickets: type and size limits, stored encrypted under the upload
directory (AES-GCM, bound to the attachment token), decrypted only when someone allowed downloads them."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.conversations.models import Conversation
from gasdesk.db import Base, UTCDateTime, on_rollback
from gasdesk.errors import InsufficientStorage, InvalidInput, NotFound
from gasdesk.security.crypto import EncryptedString, decrypt_bytes, encrypt_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileKind:
    mime: str
    kind: str  # image | file
    max_bytes: int
    magic: tuple[bytes, ...]


MB = 1024 * 1024
ALLOWED: dict[str, FileKind] = {
    "jpg": FileKind("image/jpeg", "image", 5 * MB, (b"\xff\xd8\xff",)),
    "jpeg": FileKind("image/jpeg", "image", 5 * MB, (b"\xff\xd8\xff",)),
    "png": FileKind("image/png", "image", 5 * MB, (b"\x89PNG\r\n\x1a\n",)),
    "gif": FileKind("image/gif", "image", 5 * MB, (b"GIF87a", b"GIF89a")),
    "webp": FileKind("image/webp", "image", 5 * MB, (b"RIFF",)),
    "pdf": FileKind("application/pdf", "file", 10 * MB, (b"%PDF",)),
    "docx": FileKind("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "file", 10 * MB,
                     (b"PK\x03\x04",)),
    "xlsx": FileKind("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "file", 10 * MB,
                     (b"PK\x03\x04",)),
    "txt": FileKind("text/plain", "file", 1 * MB, ()),
}


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)  # unguessable id used in URLs
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"),
                                                        index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    owner_visitor_id: Mapped[str | None] = mapped_column(String(64))
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(EncryptedString)
    mime: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    size: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(300))  # <upload_dir>/…/<token>.enc, AES-GCM sealed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_payload(self) -> dict[str, Any]:
        return {"file_token": self.token, "name": self.name, "mime": self.mime, "size": self.size,
                "url": f"/api/v1/files/{self.token}"}


def check_upload(filename: str, data: bytes, allowed: Mapping[str, FileKind] = ALLOWED) -> FileKind:
    """Reject unknown types, oversize files and content that does not match its extension. ``allowed``: the
    types of this kind of upload (by default a chat's; video assist takes only pictures and its webm)."""
    ext = Path(filename or "").suffix.lower().lstrip(".")
    kind = allowed.get(ext)
    if kind is None:
        raise InvalidInput(f"不支持的文件类型 .{ext or '?'}；支持 {', '.join(sorted(allowed))}", code="file_type")
    if not data:
        raise InvalidInput("文件是空的", code="file_empty")
    if len(data) > kind.max_bytes:
        raise InvalidInput(f"文件过大（{kind.kind == 'image' and '图片' or '文件'}最大 {kind.max_bytes // MB} MB）",
                           code="file_too_large")
    if kind.magic and not any(data.startswith(m) for m in kind.magic):
        raise InvalidInput("文件内容与扩展名不符", code="file_type")
    return kind


MAX_UPLOAD = max(k.max_bytes for k in ALLOWED.values())


def sealed_path(folder: str, token: str) -> Path:
    """Where the encrypted bytes of attachment ``token`` live; the file name carries no original name."""
    return Path(get_settings().upload_dir) / folder / f"{token}.enc"


# A full disk or an exhausted quota: the upload is refused as the server's trouble (507), not a 500.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def _write_sealed(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(encrypt_bytes(data, aad=path.stem.encode()))
        os.replace(partial, path)  # readers never see half a file
    except OSError as exc:
        partial.unlink(missing_ok=True)  # the half-written file goes; the row goes with the rollback
        if exc.errno in _NO_SPACE:
            log.error("upload not stored, no space left under %s", path.parent)
            raise InsufficientStorage("服务器存储空间不足，文件未保存。请稍后重试，或联系管理员清理空间。",
                                      code="storage_full") from None
        raise


async def store_sealed_file(session: AsyncSession, attachment: Attachment, data: bytes) -> None:
    """Flush the attachment row, then write its file encrypted; the file is removed if the transaction
    rolls back, so a failed request leaves neither a row nor a file."""
    session.add(attachment)
    await session.flush()
    path = Path(attachment.path)
    on_rollback(session, lambda: path.unlink(missing_ok=True))
    await asyncio.to_thread(_write_sealed, path, data)


async def store_staff_file(session: AsyncSession, user_id: int, filename: str, data: bytes, kind: FileKind,
                           folder: str) -> Attachment:
    """An attachment owned by a staff member and tied to no conversation or ticket (a staff chat's file, a
    training document), stored sealed under ``folder/YYYY/MM``. ``kind`` is ``check_upload``'s verdict. The
    resident file route (/api/v1/files/…) answers 404 for it; its own domain serves it."""
    token = secrets.token_urlsafe(18)
    now = utcnow()
    attachment = Attachment(token=token, owner_user_id=user_id, name=Path(filename).name[:120], mime=kind.mime,
                            kind=kind.kind, size=len(data), path=str(sealed_path(f"{folder}/{now:%Y/%m}", token)),
                            created_at=now)
    await store_sealed_file(session, attachment, data)
    return attachment


def read_sealed_file(path: str | os.PathLike[str]) -> bytes:
    """The plaintext of a stored attachment (the token in the file name is the AES-GCM associated data)."""
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFound("文件不存在", code="file_not_found") from None
    return decrypt_bytes(blob, aad=Path(path).stem.encode())


class SealedFileResponse(Response):
    """Like Starlette's FileResponse (same arguments), for a file stored encrypted: reads and decrypts it
    off the event loop and sends the plaintext."""

    def __init__(self, path: str | os.PathLike[str], status_code: int = 200, headers: Mapping[str, str] | None = None,
                 media_type: str | None = None, background: BackgroundTask | None = None,
                 filename: str | None = None, content_disposition_type: str = "attachment") -> None:
        self.path = path
        super().__init__(None, status_code, headers, media_type, background)
        if filename is not None:
            quoted = quote(filename)
            if quoted != filename:
                disposition = f"{content_disposition_type}; filename*=utf-8''{quoted}"
            else:
                disposition = f'{content_disposition_type}; filename="{filename}"'
            self.headers.setdefault("content-disposition", disposition)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.body = await asyncio.to_thread(read_sealed_file, self.path)
        self.headers["content-length"] = str(len(self.body))
        await super().__call__(scope, receive, send)


# Types a browser only ever renders as pictures. Uploads are typed by their magic bytes, not by the
# client, but a valid PNG may still carry HTML after its image data: with nosniff the browser keeps to
# the declared type, and the sandbox CSP gives any document the file might become no script and no origin.
INLINE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
FILE_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


def serve_attachment(attachment: Attachment) -> Response:
    """A stored upload: its verified type; inline only for images, every other file as a download."""
    inline = attachment.kind == "image" and attachment.mime in INLINE_IMAGE_TYPES
    return SealedFileResponse(attachment.path, media_type=attachment.mime or "application/octet-stream",
                              filename=attachment.name, content_disposition_type="inline" if inline else "attachment",
                              headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": FILE_CSP,
                                       "Cache-Control": "private, no-cache"})


async def do_store_upload(session: AsyncSession, conversation: Conversation, filename: str, data: bytes, *,
                          visitor_id: str | None = None, user_id: int | None = None,
                          allowed: Mapping[str, FileKind] = ALLOWED) -> Attachment:
    kind = check_upload(filename, data, allowed)
    token = secrets.token_urlsafe(18)
    now = utcnow()
    attachment = Attachment(token=token, conversation_id=conversation.id, owner_visitor_id=visitor_id,
                            owner_user_id=user_id, name=Path(filename).name[:120], mime=kind.mime, kind=kind.kind,
                            size=len(data), path=str(sealed_path(now.strftime("%Y/%m"), token)), created_at=now)
    await store_sealed_file(session, attachment, data)
    return attachment


async def check_attachment_payload(session: AsyncSession, conversation: Conversation,
                                   payload: dict[str, Any] | None) -> dict[str, Any]:
    """A file message must reference an upload of the same conversation."""
    token = (payload or {}).get("file_token")
    attachment = await session.scalar(select(Attachment).where(Attachment.token == str(token or "")))
    if attachment is None or attachment.conversation_id != conversation.id:
        raise NotFound("附件不存在或已失效", code="attachment_not_found")
    return attachment.to_payload()
