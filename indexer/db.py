"""Database engines for the mirror: SQLite by default, PostgreSQL in production.

:func:`create_engine` builds an ``AsyncEngine`` for a SQLAlchemy URL (``sqlite+aiosqlite``
or ``postgresql+asyncpg``; plain ``sqlite://`` and ``postgresql://`` URLs get their async
driver). SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed batch survives the
process being killed, and readers (the API) never block the writer. :func:`migrate` brings
the schema to the head of the project's single Alembic history (``tierflow/migrations``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from filelock import FileLock
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "tierflow" / "migrations"


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


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An ``AsyncEngine`` for ``url``; SQLite files are created with their directory."""
    url = async_url(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration of the project's one history, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


#: pg_advisory_xact_lock key of migrations ("tfmigrat").
MIGRATION_LOCK = int.from_bytes(b"tfmigrat", "big") & 0x7FFF_FFFF_FFFF_FFFF


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine, key: int, name: str) -> AsyncIterator[AsyncConnection]:
    """A transaction that runs alone among the processes (and engines) asking for ``key``:
    on PostgreSQL under ``pg_advisory_xact_lock(key)``, on SQLite under the lock file
    ``<database>.<name>.lock`` (SQLite would let two check-then-insert transactions
    interleave)."""
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


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (idempotent, and safe when the indexer and API
    workers start together: one migrates, the others wait and find it done)."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with exclusive(engine, MIGRATION_LOCK, "migrate") as conn:
        await conn.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema's Alembic revision (``None`` before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
