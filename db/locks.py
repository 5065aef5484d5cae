"""Work that runs alone among processes sharing a database.

:func:`exclusive` is a transaction under a lock named once per purpose (``migrate``,
``seed`` …): ``pg_advisory_xact_lock`` on PostgreSQL, the lock file
``<database>.<name>.lock`` beside a SQLite database (SQLite would let two check-then-insert
transactions interleave).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from filelock import FileLock
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import sqlite_path


def lock_key(name: bytes) -> int:
    """A PostgreSQL advisory lock key from at most eight ASCII bytes (``b"tfmigrat"``)."""
    return int.from_bytes(name, "big") & 0x7FFF_FFFF_FFFF_FFFF


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine, key: int, name: str) -> AsyncIterator[AsyncConnection]:
    """A transaction that runs alone among the processes (and engines) asking for ``key``
    (PostgreSQL) or ``name`` (the lock file beside a SQLite database)."""
    path = sqlite_path(engine.url.render_as_string(hide_password=False))
    lock = FileLock(f"{path}.{name}.lock") if path is not None else None
    if lock is not None:
        await asyncio.to_thread(lock.acquire, timeout=120)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            yield conn
    finally:
        if lock is not None:
            lock.release()
