"""Several API workers starting together on one fresh database each seed the operator: all
start, and the operator ends up with one keystore entry, one profile and one API key.

Found on CI: with two workers on PostgreSQL, the second worker's insert of the same operator
rows failed with a unique-key violation, its startup failed, and uvicorn's supervisor then
stopped the whole server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from backend.context import _seed_operator
from backend.db import create_engine, sessions
from backend.keystore import Keystore
from backend.models import ApiKey, KeystoreEntry, MemberProfile
from indexer.db import migrate
from ledger.anvil import ANVIL_CHAIN_ID
from tests.indexer.conftest import _pg_url, create_pg_database, drop_pg_database
from tests.support.stack import OPERATOR_KEY
from tierflow.settings import TierflowSettings

WORKERS = 4


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"
        return
    name = await create_pg_database()
    try:
        yield _pg_url(name).replace("postgresql://", "postgresql+asyncpg://")
    finally:
        await drop_pg_database(name)


@pytest.mark.parametrize("operator_key", [OPERATOR_KEY, None], ids=["given", "generated"])
async def test_workers_starting_together_seed_the_operator_once(
    database_url: str, tmp_path: Path, operator_key: str | None
) -> None:
    settings = TierflowSettings(
        data_dir=tmp_path,
        database_url=database_url,
        operator_api_key=SecretStr(operator_key) if operator_key else None,
    )
    engines = [create_engine(database_url) for _ in range(WORKERS)]
    try:
        await migrate(engines[0])
        password = SecretStr("a password for this test only")
        seeded = await asyncio.gather(
            *(
                _seed_operator(settings, ANVIL_CHAIN_ID, Keystore(password), engine)
                for engine in engines
            )
        )
        assert len(set(seeded)) == 1
        async with sessions(engines[0])() as session:
            for model in (KeystoreEntry, MemberProfile, ApiKey):
                count = await session.scalar(select(func.count()).select_from(model))
                assert (model.__tablename__, count) == (model.__tablename__, 1)
    finally:
        for engine in engines:
            await engine.dispose()
