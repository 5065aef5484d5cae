"""Writing the API's own tables where two workers may race on one row."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.types import table_of


async def upsert(
    session: AsyncSession, model: Any, values: dict[str, Any], keys: list[str]
) -> None:
    """Insert or replace one row of the API's own tables (two workers may race on one)."""
    table = table_of(model)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}
    )
    await session.execute(statement)
