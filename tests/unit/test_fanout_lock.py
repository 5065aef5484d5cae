"""The webhook fan-out locks its cursor only when the outbox holds something to queue
(:func:`backend.webhooks.fanout.fan_out`): a dispatcher looks twenty times a second, and an
idle look must not take SQLite's one write lock from the API's and the indexer's writes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.models import WebhookCursor
from backend.webhooks.fanout import fan_out
from indexer.models import OutboxEntry


@contextlib.contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another connection holding the file's write lock (an API write or the indexer's batch)."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def entry(seq: int) -> dict[str, object]:
    return {
        "seq": seq,
        "event_id": f"evt_{seq}",
        "kind": "event",
        "event": "ClaimSplit",
        "contract": "ClaimLedger",
        "block_number": seq,
        "log_index": 0,
        "block_hash": "0x" + "ab" * 32,
        "block_time": 1_700_000_000,
        "object_key": "claim:1",
        "data": "{}",
        "reverted": False,
        "reverts": None,
    }


async def test_an_idle_look_waits_for_no_writer(engine: AsyncEngine, tmp_path: Path) -> None:
    assert await fan_out(engine) == 0  # nothing mirrored yet: no cursor either
    async with engine.begin() as conn:
        await conn.execute(insert(OutboxEntry), [entry(1), entry(2)])
    assert await fan_out(engine) == 2  # consumed (no endpoints: no deliveries)
    with write_lock_held(tmp_path / "tierflow.db"):
        # Caught up: the look reads past the other connection's lock (WAL) and leaves.
        assert await asyncio.wait_for(fan_out(engine), 2.0) == 0
    async with engine.connect() as conn:
        assert (await conn.execute(select(WebhookCursor.seq))).scalar_one() == 2


async def test_a_new_entry_is_queued_once_the_writer_is_done(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(OutboxEntry), [entry(1)])
    with write_lock_held(tmp_path / "tierflow.db"):
        waiting = asyncio.create_task(fan_out(engine))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # something to queue: it takes the cursor's lock, and waits
    assert await asyncio.wait_for(waiting, 5.0) == 1
