"""Alembic histories, one per package that owns tables, run under one lock.

A package that owns tables declares its :class:`History` (its ``migrations`` directory and
its version table): the indexer's mirror (``alembic_version_mirror``), the API's own tables
(``alembic_version_api``). :func:`upgrade` brings one history to its head under the migration
lock (idempotent, and safe when the indexer and API workers start together: one migrates,
the others wait and find it done). Each history's ``env.py`` calls :func:`run_env`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from db.locks import exclusive, lock_key

#: pg_advisory_xact_lock key and lock file name of migrations.
MIGRATION_LOCK = lock_key(b"tfmigrat")


@dataclass(frozen=True)
class History:
    """One package's Alembic history: where its scripts are and its version table."""

    name: str
    script_location: Path
    version_table: str

    def config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.script_location))
        config.attributes["version_table"] = self.version_table
        if connection is not None:
            config.attributes["connection"] = connection
        return config


async def upgrade(engine: AsyncEngine, history: History, revision: str = "head") -> None:
    """Upgrade ``history`` to ``revision`` under the migration lock."""

    def run(connection: Connection) -> None:
        command.upgrade(history.config(connection), revision)

    async with exclusive(engine, MIGRATION_LOCK, "migrate") as conn:
        await conn.run_sync(run)


async def current_revision(engine: AsyncEngine, history: History) -> str | None:
    """The revision of ``history`` in the database (``None`` before its first migration)."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        context = MigrationContext.configure(
            connection, opts={"version_table": history.version_table}
        )
        return context.get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


def run_env(metadata: MetaData, version_table: str) -> None:
    """The body of a history's ``env.py``.

    Programmatic runs (:func:`upgrade`) pass a connection in ``config.attributes``; the
    ``alembic`` command line (``alembic -n mirror|api …``, ``alembic.ini``) connects to
    ``TIERFLOW_DATABASE_URL`` (or the default SQLite file) itself. Only this history's tables
    are compared by ``--autogenerate``: the other history's live in the same database.
    """
    import asyncio

    from alembic import context

    own = set(metadata.tables)

    def include_name(name: Any, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name in own

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=version_table,
            include_name=include_name,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        from db.config import DatabaseSettings
        from db.engine import create_engine

        engine = create_engine(DatabaseSettings().database_url)
        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
    else:
        asyncio.run(online())
