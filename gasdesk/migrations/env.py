"""Alembic environment: runs migrations over the async engine configured in Settings."""

from __future__ import annotations

import asyncio
from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import DateTime, Text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.types import TypeDecorator

from gasdesk.all_models import metadata
from gasdesk.config import get_settings

config = context.config


def _url() -> str:
    return config.attributes.get("database_url") or get_settings().database_url


def _render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render gasdesk's TypeDecorators as their plain SQL types, so migrations never import app code."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl_instance if hasattr(obj, "impl_instance") else obj.impl
        if isinstance(impl, DateTime):
            return "sa.DateTime(timezone=True)"
        if isinstance(impl, Text):
            return "sa.Text()"
    return False


def _configure(connection: Connection | None = None) -> None:
    context.configure(
        connection=connection,
        url=None if connection is not None else _url(),
        target_metadata=metadata,
        render_as_batch=True,  # SQLite needs table rebuilds for ALTER
        compare_type=True,
        render_item=_render_item,
    )


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    _configure()
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(_run_async())
