from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime
from gasdesk.security.crypto import EncryptedJSON


class AuditEntry(Base):
    """One change. Snapshots may hold personal data, so they are encrypted like the data itself."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor_name: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(40), index=True)
    entity_id: Mapped[str | None] = mapped_column(String(64), index=True)
    changes: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    source: Mapped[str] = mapped_column(String(32), default="web")


class AuditLogIsAppendOnly(RuntimeError):
    pass


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(*_: Any) -> None:
    raise AuditLogIsAppendOnly("audit entries cannot be changed")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(*_: Any) -> None:
    raise AuditLogIsAppendOnly("audit entries cannot be deleted")


class AuditRekeyGrant(Base):
    """Present only inside a key rotation's own transaction (inserted, then deleted before it commits): while it
    exists the database's append-only trigger lets an UPDATE re-encrypt ``changes`` and nothing else
    (migration 0024). No other transaction ever sees a row here."""

    __tablename__ = "audit_rekey_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
