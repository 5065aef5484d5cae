"""A batch's checkpoint move (``indexer.store.advance``): fenced, headers kept and pruned, the
journal pruned, and on PostgreSQL (one statement there) the checkpoint notified on commit
only (IX-3)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import insert, select

from db.engine import create_engine
from db.types import table_of
from indexer import models, store
from indexer.errors import CheckpointMoved
from indexer.models import migrate
from indexer.store import CHECKPOINT_CHANNEL, Header

HEADERS = table_of(models.BlockHeader)
JOURNAL = table_of(models.JournalEntry)


def header(number: int) -> Header:
    return Header(
        number, f"0x{number:064x}", f"0x{max(number - 1, 0):064x}", 1_700_000_000 + number
    )


async def test_advance_moves_keeps_and_prunes_and_is_fenced(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    listener: asyncpg.Connection | None = None
    heard: asyncio.Queue[str] = asyncio.Queue()
    if engine.dialect.name == "postgresql":
        listener = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        await listener.add_listener(CHECKPOINT_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    try:
        async with engine.connect() as conn:
            async with conn.begin():
                start = await store.create_checkpoint(conn, 1, {"A": "0x1"}, header(0))
                await conn.execute(
                    insert(JOURNAL),
                    [
                        {"block_number": n, "table_name": "claims", "row_key": "[1]", "image": None}
                        for n in (1, 2, 3)
                    ],
                )
            if listener is not None:
                assert await asyncio.wait_for(heard.get(), 5) == "0"
            # Blocks 1-3 kept, then a batch to 5 whose window starts at block 3.
            first = store.next_checkpoint(start, header(3), 1, 128)
            async with conn.begin():
                assert await store.advance(conn, start, first, [header(n) for n in (1, 2, 3)])
            second = store.next_checkpoint(first, header(5), 3, 128)
            async with conn.begin():
                await store.advance(conn, first, second, [header(4), header(5)])
            if listener is not None:
                assert await asyncio.wait_for(heard.get(), 5) == "3"
                assert await asyncio.wait_for(heard.get(), 5) == "5"
            async with conn.begin():
                kept = [r.number for r in await conn.execute(select(HEADERS.c.number))]
                journaled = [r.block_number for r in await conn.execute(select(JOURNAL))]
                assert await store.read_checkpoint(conn) == second
            assert sorted(kept) == [2, 3, 4, 5]  # the one below the journaled blocks stays
            assert journaled == [3]

            # A writer that still believes in the first checkpoint moves nothing at all.
            stale = store.next_checkpoint(first, header(7), 3, 128)
            with pytest.raises(CheckpointMoved):
                async with conn.begin():
                    await store.advance(conn, first, stale, [header(6), header(7)])
            async with conn.begin():
                kept = [r.number for r in await conn.execute(select(HEADERS.c.number))]
                assert await store.read_checkpoint(conn) == second
            assert sorted(kept) == [2, 3, 4, 5]
            if listener is not None:
                await asyncio.sleep(0.2)
                assert heard.empty()  # the failed move's notification was never sent
    finally:
        if listener is not None:
            await listener.close()
        await engine.dispose()
