"""One writer per mirror: a second indexer on the same database waits or exits.

PostgreSQL: a session-level advisory lock taken on the very connection the indexer writes
through, so losing the connection loses the lock and the ability to write together. SQLite:
an OS file lock next to the database file (released by the kernel if the process dies). On
top of either, every checkpoint update is fenced on the checkpoint it started from
(:func:`indexer.store.advance`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import structlog
from filelock import FileLock, Timeout
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from indexer.errors import WriterLockHeld

log = structlog.get_logger("tierflow.indexer")

#: pg_advisory_lock key: int64 of "tierflow" in ASCII.
ADVISORY_KEY = int.from_bytes(b"tierflow", "big") & 0x7FFF_FFFF_FFFF_FFFF
POLL_S = 0.5


class WriterLock:
    """The single-writer lock for one database; :meth:`acquire` then :meth:`release`."""

    def __init__(self, conn: AsyncConnection, sqlite_file: Path | None) -> None:
        self._conn = conn
        self._file_lock = FileLock(str(sqlite_file) + ".indexer.lock") if sqlite_file else None
        self._held = False

    async def _try(self) -> bool:
        if self._conn.dialect.name == "postgresql":
            got = (
                await self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}
                )
            ).scalar_one()
            await self._conn.commit()
            return bool(got)
        if self._file_lock is not None:
            try:
                self._file_lock.acquire(timeout=0)
            except Timeout:
                return False
        return True

    async def acquire(self, wait: bool, timeout_s: float | None = None) -> None:
        """Take the lock; if another indexer holds it, wait (``wait``) or raise."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        announced = False
        while not await self._try():
            if not wait or (deadline is not None and time.monotonic() > deadline):
                raise WriterLockHeld(
                    "another indexer is writing to this database; this one exits "
                    "(run with --wait to take over when it stops)"
                )
            if not announced:
                log.warning("indexer.lock_wait", detail="another indexer holds the writer lock")
                announced = True
            await asyncio.sleep(POLL_S)
        self._held = True

    async def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._conn.dialect.name == "postgresql":
            try:
                await self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                await self._conn.commit()
            except Exception:  # the connection is gone, and the lock with it
                log.warning("indexer.lock_release_failed")
        elif self._file_lock is not None:
            self._file_lock.release()
