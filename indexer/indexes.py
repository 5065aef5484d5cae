"""The mirror's secondary indexes, left out during a long backfill and built once caught up.

Every row a backfill inserts also goes into each non-unique index of its table (``events``
has six, ``claims`` three): on PostgreSQL that is most of an insert's cost once the rows come
by ``COPY``. So when the indexer starts a pass more than
``IndexerConfig.defer_indexes_blocks`` blocks behind the head it drops them, and builds them
again (one ``CREATE INDEX`` each, over the whole table) when it has caught up. Primary keys
and unique constraints stay: IX-2's deduplication and the row upserts rely on them.

Crash-safe without any state of its own: a missing index *is* the state. At start the
indexer looks for missing ones (:func:`missing`); if any is, it treats them as deferred and
builds them when it has caught up, whatever stopped the last process between the drop and
the build. Each ``CREATE INDEX`` is atomic, the build one transaction on PostgreSQL, and
``IF NOT EXISTS`` skips those already there. Reads of the mirror meanwhile (the API's) go
without them: the mirror is far behind the chain then anyway.
"""

from __future__ import annotations

from sqlalchemy import Index, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, DropIndex

from indexer import models

#: The non-unique indexes of the mirror's tables, as the migrations create them.
SECONDARY: tuple[Index, ...] = tuple(
    sorted(
        (
            index
            for table in models.Base.metadata.sorted_tables
            for index in table.indexes
            if not index.unique
        ),
        key=lambda index: str(index.name),
    )
)


async def present(conn: AsyncConnection) -> set[str]:
    """Names of the indexes the database has (any table of the connection's schema)."""
    if conn.dialect.name == "postgresql":
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
    return {row[0] for row in await conn.execute(text(query))}


async def missing(conn: AsyncConnection) -> list[str]:
    """The secondary indexes the mirror lacks (deferred by a backfill, maybe interrupted)."""
    async with conn.begin():
        have = await present(conn)
    return [str(index.name) for index in SECONDARY if index.name not in have]


async def drop(conn: AsyncConnection) -> None:
    """Drop every secondary index (those already gone are skipped), in one transaction."""
    async with conn.begin():
        for index in SECONDARY:
            await conn.execute(DropIndex(index, if_exists=True))


async def build(conn: AsyncConnection) -> None:
    """Build every missing secondary index, in one transaction on PostgreSQL: one commit (a
    new index is a new file to sync there: 25 commits cost more than the builds of a small
    mirror). A crash leaves them all missing there, some on SQLite (whose driver commits DDL
    as it goes); the next start builds what is missing either way."""
    async with conn.begin():
        for index in SECONDARY:
            await conn.execute(CreateIndex(index, if_not_exists=True))
