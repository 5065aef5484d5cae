"""Database engines: SQLite by default, PostgreSQL in production.

:func:`create_engine` builds an ``AsyncEngine`` for a SQLAlchemy URL (``sqlite+aiosqlite``
or ``postgresql+asyncpg``; plain ``sqlite://`` and ``postgresql://`` URLs get their async
driver). SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed batch survives the
process being killed, and readers (the API) never block the writer (the indexer).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db import aiosqlite_cursor, sqlite_gate


def async_url(url: str) -> str:
    """``url`` with its async driver (``aiosqlite`` / ``asyncpg``) filled in."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername != "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and parsed.drivername != "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (``None`` for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


def create_engine(url: str, *, lock_wait_s: float = 30.0, **kwargs: Any) -> AsyncEngine:
    """An ``AsyncEngine`` for ``url``; SQLite files are created with their directory.

    ``lock_wait_s``: how long a SQLite statement waits for another connection's write lock
    before it fails with ``database is locked`` (SQLite's busy timeout)."""
    url = async_url(url)
    path = sqlite_path(url)
    if path is not None:
        _private_file(path)
        kwargs.setdefault("connect_args", {"timeout": lock_wait_s})
    if make_url(url).drivername == "sqlite+aiosqlite":
        # One round trip to the connection's thread per statement, not four.
        kwargs.setdefault("module", aiosqlite_cursor.dbapi())
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if engine.dialect.driver == "aiosqlite":
            _no_idle_transaction_ends(engine)
            sqlite_gate.install(engine, lock_wait_s)
    return engine


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether SQLite has a transaction open on this pooled aiosqlite connection (when it
    cannot tell: yes)."""
    try:
        return bool(dbapi_connection.driver_connection.in_transaction)
    except Exception:
        return True


def _no_idle_transaction_ends(engine: AsyncEngine) -> None:
    """A rollback or commit with no SQLite transaction open is not sent to the connection's
    thread.

    Python's ``sqlite3`` begins a transaction only before a data-changing statement, and its
    ``rollback()``/``commit()`` do nothing when none is open; through aiosqlite that nothing
    still costs a round trip to the connection's thread and back into the event loop. Every
    read (a session closed after its ``SELECT``s; the pool's reset of a returned
    connection) ended with one, as did every empty commit. Only that hop is skipped: with a
    transaction open the call goes through as before (``sqlite3_get_autocommit`` tells, the
    very test ``sqlite3`` itself makes before doing nothing)."""
    dialect = engine.sync_engine.dialect
    rollback, commit = dialect.do_rollback, dialect.do_commit

    def do_rollback(dbapi_connection: Any) -> None:
        if _in_transaction(dbapi_connection):
            rollback(dbapi_connection)

    def do_commit(dbapi_connection: Any) -> None:
        if _in_transaction(dbapi_connection):
            commit(dbapi_connection)

    # On this engine's dialect instance only (each engine has its own).
    setattr(dialect, "do_rollback", do_rollback)  # noqa: B010
    setattr(dialect, "do_commit", do_commit)  # noqa: B010


def _private_file(path: Path) -> None:
    """Create the SQLite file (and its directory) readable by this user only: 0600 in a 0700
    directory when made here (SQLite gives its -wal and -shm files the database's mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


#: Connections an API worker keeps open to a SQLite file (and as many more at most, opened
#: and closed as needed).
SQLITE_POOL = 20


def create_pooled_engine(url: str, lock_wait_s: float = 30.0) -> AsyncEngine:
    """An engine for a server answering many requests at once (the API).

    A PostgreSQL connection is pinged when taken from the pool (the server may have restarted
    or a proxy dropped it); a SQLite file needs no such round trip on every request. A SQLite
    statement waits at most ``lock_wait_s`` for the write lock.
    """
    if sqlite_path(url) is not None:
        # A pooled SQLite connection is a file handle and an idle aiosqlite thread; one made
        # past the pool's size is opened (a thread, the file, the pragmas) and closed again
        # for each request that needs it, which under a burst of reads is most of them.
        return create_engine(
            url, lock_wait_s=lock_wait_s, pool_size=SQLITE_POOL, max_overflow=SQLITE_POOL
        )
    return create_engine(url, lock_wait_s=lock_wait_s, pool_pre_ping=not url.startswith("sqlite"))


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (short units of work)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    mode = cursor.fetchone()
    if mode is not None and str(mode[0]).lower() == "wal":  # not for ':memory:'
        aiosqlite_cursor.mark_wal(dbapi_connection)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def now_ms() -> int:
    """The wall clock in milliseconds, for the platform's own records (chain time is the
    block's)."""
    return int(time.time() * 1000)


def now_s() -> int:
    """The wall clock in whole seconds."""
    return int(time.time())
