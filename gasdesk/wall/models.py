"""Wall-screen settings: the thresholds that turn tiles amber or red."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gasdesk.clock import utcnow
from gasdesk.db import Base, UTCDateTime


class WallThreshold(Base):
    """One tile's thresholds: the tile is amber above ``amber`` and red above ``red`` (None: never). A metric
    without a row uses its default (``service.DEFAULT_THRESHOLDS``)."""

    __tablename__ = "wall_thresholds"

    metric: Mapped[str] = mapped_column(String(30), primary_key=True)
    amber: Mapped[int | None] = mapped_column(Integer)
    red: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
