"""The API's database handle: the mirror's engine (same database), sessions, a clock.

The API reads the mirror's tables and writes only its own (:mod:`backend.models`); both live
in the same database and the same Alembic history. ``now_ms`` is the one wall clock the API
uses for its own records (chain time is the block's).
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from indexer.db import create_engine as create_mirror_engine


def create_engine(url: str) -> AsyncEngine:
    """The API's engine: pooled (several requests at once), SQLite in WAL mode.

    A PostgreSQL connection is pinged when taken from the pool (the server may have restarted
    or a proxy dropped it); a SQLite file needs no such round trip on every request.
    """
    return create_mirror_engine(url, pool_pre_ping=not url.startswith("sqlite"))


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def now_ms() -> int:
    return int(time.time() * 1000)


def now_s() -> int:
    return int(time.time())
