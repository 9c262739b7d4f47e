"""Images and files in chats: type and size limits, stored on disk under the upload directory."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.config import get_settings
from gasdesk.conversations.models import Conversation
from gasdesk.db import Base, UTCDateTime
from gasdesk.errors import InvalidInput, NotFound
from gasdesk.security.crypto import EncryptedString


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
    path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_payload(self) -> dict[str, Any]:
        return {"file_token": self.token, "name": self.name, "mime": self.mime, "size": self.size,
                "url": f"/api/v1/files/{self.token}"}


def check_upload(filename: str, data: bytes) -> FileKind:
    """Reject unknown types, oversize files and content that does not match its extension."""
    ext = Path(filename or "").suffix.lower().lstrip(".")
    kind = ALLOWED.get(ext)
    if kind is None:
        raise InvalidInput(f"不支持的文件类型 .{ext or '?'}；支持 {', '.join(sorted(ALLOWED))}", code="file_type")
    if not data:
        raise InvalidInput("文件是空的", code="file_empty")
    if len(data) > kind.max_bytes:
        raise InvalidInput(f"文件过大（{kind.kind == 'image' and '图片' or '文件'}最大 {kind.max_bytes // MB} MB）",
                           code="file_too_large")
    if kind.magic and not any(data.startswith(m) for m in kind.magic):
        raise InvalidInput("文件内容与扩展名不符", code="file_type")
    return kind


async def do_store_upload(session: AsyncSession, conversation: Conversation, filename: str, data: bytes, *,
                          visitor_id: str | None = None, user_id: int | None = None) -> Attachment:
    kind = check_upload(filename, data)
    token = secrets.token_urlsafe(18)
    now = utcnow()
    folder = Path(get_settings().upload_dir) / now.strftime("%Y/%m")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{token}.{Path(filename).suffix.lower().lstrip('.')}"
    path.write_bytes(data)
    attachment = Attachment(token=token, conversation_id=conversation.id, owner_visitor_id=visitor_id,
                            owner_user_id=user_id, name=Path(filename).name[:120], mime=kind.mime, kind=kind.kind,
                            size=len(data), path=str(path), created_at=now)
    session.add(attachment)
    await session.flush()
    return attachment


async def check_attachment_payload(session: AsyncSession, conversation: Conversation,
                                   payload: dict[str, Any] | None) -> dict[str, Any]:
    """A file message must reference an upload of the same conversation."""
    from sqlalchemy import select

    token = (payload or {}).get("file_token")
    attachment = await session.scalar(select(Attachment).where(Attachment.token == str(token or "")))
    if attachment is None or attachment.conversation_id != conversation.id:
        raise NotFound("附件不存在或已失效", code="attachment_not_found")
    return attachment.to_payload()
