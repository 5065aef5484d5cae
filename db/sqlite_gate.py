"""One writer at a time per process and SQLite file, queued in the event loop.

SQLite lets one connection write at a time. Python's ``sqlite3`` begins a transaction at its
first data-changing statement, and another connection's write then waits in SQLite's busy
handler: it sleeps and retries (1, 2, 5, … up to 100 ms between tries) until the lock is free
or its busy timeout runs out. Inside one API worker, with sixteen requests writing at once, the
pooled connections so waiting poll each other: the lock sits free for up to a sleep's length
after each commit, and which waiter gets it next is chance (one can lose every round until its
timeout and answer 503 ``database_unavailable`` while others pass).

:func:`install` gates an engine's connections in the event loop instead: before a
transaction's first ``INSERT``/``UPDATE``/``DELETE`` its connection takes the process's gate for
that file (an :class:`asyncio.Lock`, first come first served, handed over at the commit or
rollback that releases it), so within the process the writers queue and the next starts the
moment the last commits. SQLite's own lock still decides between processes (the indexer,
other workers, the command line), each of which has its one waiting writer at most.

Same semantics as SQLite's lock: taken where SQLite would take it, held until the transaction
ends, waited for at most the engine's ``lock_wait_s``, after which the statement fails as
SQLite's would (``OperationalError: database is locked``, a 503 ``database_unavailable``
through the API). A transaction that only reads never takes it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import await_only

#: What makes ``sqlite3`` begin a transaction (its legacy transaction control): a statement
#: that changes data. ``WITH … INSERT`` is not written by this code base.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _writes(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_WRITES)


class Gate:
    """The writer gate of one engine: one :class:`asyncio.Lock` per event loop, and which
    DBAPI connection holds it."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._held: dict[int, asyncio.Lock] = {}  # id(DBAPI connection) → the lock it holds

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def _acquire(self) -> asyncio.Lock:
        lock = self._lock()
        # In the caller's own task, not through ``asyncio.wait_for``: Python 3.11's wait_for
        # runs the acquire as a task of its own and, cancelled just as that task got the lock,
        # returns the lock and drops the cancellation (the caller then writes on, and a task
        # cancelled to end it, such as ``Idempotency._renew``'s, never ends). ``Lock.acquire``
        # cancelled after the lock was handed to it passes the lock on and re-raises.
        async with asyncio.timeout(self.wait_s):
            await lock.acquire()
        return lock

    def before(self, dbapi_connection: Any, statement: str, parameters: Any) -> None:
        """Before a statement (inside SQLAlchemy's greenlet): a connection about to write
        takes the gate unless it holds it already."""
        key = id(dbapi_connection)
        if key in self._held or not _writes(statement):
            return
        try:
            self._held[key] = await_only(self._acquire())
        except TimeoutError as exc:
            raise OperationalError(
                statement, parameters, sqlite3.OperationalError("database is locked")
            ) from exc

    def ended(self, dbapi_connection: Any) -> None:
        """The connection's transaction ended (committed, rolled back, or the connection went
        back to the pool or away): the gate passes to the next writer. ``dbapi_connection``
        may be the pool's proxy of it (what the dialect's ``do_commit``/``do_rollback`` get)."""
        if isinstance(dbapi_connection, PoolProxiedConnection):
            dbapi_connection = dbapi_connection.dbapi_connection
        lock = self._held.pop(id(dbapi_connection), None)
        if lock is not None and lock.locked():
            lock.release()


def install(engine: AsyncEngine, wait_s: float) -> Gate:
    """Gate ``engine``'s writing transactions (an aiosqlite engine). The gate is passed on
    after SQLite's commit or rollback has run (the dialect's, wrapped here), so the next
    writer never finds SQLite's lock still taken by this process."""
    gate = Gate(wait_s)
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine, "before_cursor_execute")
    def before(
        conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        gate.before(conn.connection.dbapi_connection, statement, parameters)

    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            gate.ended(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            gate.ended(dbapi_connection)

    # On this engine's dialect instance only (each engine has its own).
    setattr(dialect, "do_commit", do_commit)  # noqa: B010
    setattr(dialect, "do_rollback", do_rollback)  # noqa: B010

    # A connection handed back to the pool, closed or dropped holds nothing any more (its
    # transaction, if any, was rolled back or went with it).
    def went(dbapi_connection: Any, *_: Any) -> None:
        gate.ended(dbapi_connection)

    for name in ("checkin", "invalidate", "close", "close_detached"):
        event.listen(sync_engine.pool, name, went)
    return gate
