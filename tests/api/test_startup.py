"""Several API workers starting together on one fresh database each seed the operator: all
start, and the operator ends up with one keystore entry, one profile and one API key.

On CI a two-worker server on PostgreSQL went away under the auto-approval tests: a worker
whose startup fails (here, a duplicate insert of the operator's rows racing the other
worker's) makes uvicorn's supervisor stop the whole server. Without the lock, this test also
finds a generated operator key made once per worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from backend.config import ApiSettings
from backend.context import _seed_operator
from backend.keystore import Keystore
from backend.models import ApiKey, KeystoreEntry, MemberProfile, migrate
from bench.stack import OPERATOR_KEY
from db.engine import create_pooled_engine as create_engine
from db.engine import sessions
from ledger.anvil import ANVIL_CHAIN_ID

WORKERS = 4


@pytest.mark.parametrize("operator_key", [OPERATOR_KEY, None], ids=["given", "generated"])
async def test_workers_starting_together_seed_the_operator_once(
    database_url: str, tmp_path: Path, operator_key: str | None
) -> None:
    settings = ApiSettings(
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
