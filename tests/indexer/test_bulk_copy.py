"""Bulk inserts by ``COPY`` on PostgreSQL (``indexer.bulk``) stay inside the batch's
transaction (IX-3): asyncpg under SQLAlchemy begins a transaction at its first statement, and
a ``COPY`` sent first would otherwise commit on its own. A batch that fails after its
``COPY`` leaves nothing behind, whether the ``COPY`` came first or after a statement; the
rows it writes read back as the statements would have written them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.types import table_of
from indexer import models
from indexer.bulk import COPY_MIN_ROWS, BulkWriter
from tests.support.databases import create_pg_database, drop_pg_database, pg_url

pytestmark = pytest.mark.postgres

_EXPOSURES = table_of(models.Exposure)
_MEMBERS = table_of(models.Member)


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    name = await create_pg_database()
    made = create_engine(pg_url(name).replace("postgresql://", "postgresql+asyncpg://"))
    try:
        await models.migrate(made)
        yield made
    finally:
        await made.dispose()
        await drop_pg_database(name)


def _exposures(writer: BulkWriter, count: int) -> list[tuple[object, ...]]:
    rows = [
        {
            "financier": f"0x{i:040x}",
            "obligor": "0x" + "0b" * 20,
            "outstanding": 2**128 - 1 - i,
            "exposure_limit": i,
        }
        for i in range(count)
    ]
    return writer.from_dicts(_EXPOSURES, rows)


class _Failed(Exception):
    pass


@pytest.mark.parametrize("copy_first", [True, False])
async def test_a_failed_batch_leaves_no_copied_rows(engine: AsyncEngine, copy_first: bool) -> None:
    writer = BulkWriter(engine.dialect)
    assert writer.copy
    rows = _exposures(writer, COPY_MIN_ROWS + 8)
    async with engine.connect() as conn:

        async def failing_batch() -> None:
            async with conn.begin():
                if not copy_first:
                    await conn.execute(select(func.count()).select_from(_MEMBERS))
                await writer.insert(conn, _EXPOSURES, rows)
                raise _Failed

        with pytest.raises(_Failed):
            await failing_batch()
        async with conn.begin():
            count = (await conn.execute(select(func.count()).select_from(_EXPOSURES))).scalar()
    assert count == 0


async def test_copied_rows_read_back_as_statements_write_them(engine: AsyncEngine) -> None:
    copying, statements = BulkWriter(engine.dialect), BulkWriter(engine.dialect, copy=False)
    assert not statements.copy
    rows = _exposures(copying, 2 * COPY_MIN_ROWS)
    async with engine.begin() as conn:
        await copying.insert(conn, _EXPOSURES, rows)
        copied = [tuple(r) for r in await conn.execute(select(_EXPOSURES))]
        await conn.execute(_EXPOSURES.delete())
        await statements.insert(conn, _EXPOSURES, rows)
        written = [tuple(r) for r in await conn.execute(select(_EXPOSURES))]
    assert sorted(copied) == sorted(written)
    assert len(copied) == len(rows)
    assert max(r[2] for r in copied) == 2**128 - 1  # NUMERIC(78, 0) exact through COPY
