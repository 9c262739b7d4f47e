"""The Alembic migrations produce exactly the schema the models describe (on the test backend)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gasdesk import db
from gasdesk.all_models import metadata


async def test_migrated_schema_matches_models() -> None:
    async with db.get_engine().connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
    assert diff == []


async def test_default_skill_groups_and_rules_are_seeded(session) -> None:
    from sqlalchemy import select

    from gasdesk.routing.models import HandoffRule, SkillGroup

    codes = set(await session.scalars(select(SkillGroup.code)))
    assert {"gas", "heating", "billing", "complaint"} <= codes
    kinds = set(await session.scalars(select(HandoffRule.kind)))
    assert {"emergency", "request", "keyword", "bot_misses"} <= kinds
