"""Alembic environment of Tierflow's single migration history.

Programmatic runs (``indexer.db.migrate``) pass a connection in ``config.attributes``; the
``alembic`` command line (``alembic.ini`` at the repository root) connects to
``TIERFLOW_DATABASE_URL`` (or the default SQLite file) itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from backend.models import Base as ApiBase
from indexer.models import Base as MirrorBase

#: One history for both: the mirror's tables (the indexer's) and the API's own.
target_metadata = [MirrorBase.metadata, ApiBase.metadata]


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    from indexer.db import create_engine
    from tierflow.settings import TierflowSettings

    engine = create_engine(TierflowSettings().database_url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_online())
