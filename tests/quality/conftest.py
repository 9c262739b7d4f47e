"""The ``desk`` fixture: an agent in a team with its own scoring sheet (scenes in tests/quality/scenes.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.quality.scenes import Desk, open_desk


@pytest.fixture
async def desk(session: AsyncSession) -> Desk:
    """An agent in a team whose active sheet is TEST_SHEET; the clock at T0."""
    return await open_desk(session)
