"""The rate limits' token buckets in the database (``backend.ratelimit``), on SQLite and on
PostgreSQL: a burst, then one token a second; two limiters (two API workers) on one database
share a bucket; concurrent takes never hand out more tokens than the bucket holds (the one
upsert is atomic). A statement the database refused would let everything through (the
limiter fails open), so these counts also show the SQL works on both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.models import migrate
from backend.ratelimit import RateLimiter
from db.engine import create_engine
from tests.support.databases import create_pg_database, drop_pg_database, pg_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    name = None
    if request.param == "postgresql":
        name = await create_pg_database()
        url = pg_url(name).replace("postgresql://", "postgresql+asyncpg://")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'buckets.db'}"
    engine = create_engine(url)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        if name is not None:
            await drop_pg_database(name)


async def test_a_burst_then_one_token_a_second(db: AsyncEngine) -> None:
    limiter = RateLimiter(db, per_minute=60, burst=3)
    t = 1_000_000
    assert [await limiter.take("m", t) for _ in range(3)] == [0, 0, 0]
    assert await limiter.take("m", t) == 1
    assert await limiter.take("m", t + 500) == 1  # half a token back: still refused
    assert await limiter.take("m", t + 1000) == 0
    assert await limiter.take("m", t + 1000) == 1
    assert await limiter.take("other", t) == 0  # another member's bucket
    # Long idle: full again, never more than the burst.
    assert [await limiter.take("m", t + 600_000) for _ in range(4)] == [0, 0, 0, 1]


async def test_two_workers_share_the_bucket(db: AsyncEngine) -> None:
    first, second = RateLimiter(db, 60, burst=4), RateLimiter(db, 60, burst=4)
    t = 2_000_000
    waits = [await (first if n % 2 else second).take("shared", t) for n in range(8)]
    assert waits.count(0) == 4, waits


async def test_concurrent_takes_hand_out_at_most_the_burst(db: AsyncEngine) -> None:
    limiters = [RateLimiter(db, 60, burst=5) for _ in range(4)]
    t = 3_000_000
    waits = await asyncio.gather(*(limiters[n % 4].take("race", t) for n in range(20)))
    assert waits.count(0) == 5, waits


async def test_a_busy_bucket_is_taken_in_leases_never_past_its_burst(db: AsyncEngine) -> None:
    """A burst of 100 is taken ten tokens at a time: one worker gets exactly the burst, with
    one write per ten requests; two workers together never more than the burst, and no
    fewer than the burst less what the other still holds unspent (nine)."""
    one = RateLimiter(db, per_minute=60, burst=100)
    assert one.lease == 10
    t = 4_000_000
    waits = [await one.take("busy", t) for _ in range(101)]
    assert waits[:100] == [0] * 100
    assert waits[100] >= 1
    first, second = RateLimiter(db, 60, burst=100), RateLimiter(db, 60, burst=100)
    t = 5_000_000
    shared = [await (first if n % 3 else second).take("shared-busy", t) for n in range(150)]
    assert 100 - (first.lease - 1) <= shared.count(0) <= 100, shared.count(0)
    # Unspent lease tokens lapse: a second later the worker asks the bucket again.
    assert await first.take("shared-busy", t + 2_000) == 0
