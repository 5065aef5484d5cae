"""Fixtures for the indexer tests: a fresh chain and a fresh database per test.

- ``database_url``: parametrised over SQLite (a temp file) and PostgreSQL (a new database on
  the server at 127.0.0.1:5432, dropped after the test), so every test runs on both.
- ``chain``: a fresh anvil with the platform deployed and its cast registered; indexer tests
  reorganise and rewind chains, so none is shared.
- ``index_config``: an :class:`IndexerConfig` for the two.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from indexer.config import IndexerConfig
from ledger.anvil import AnvilProcess, dev_private_keys
from ledger.node import close_web3, make_web3
from tests.support.platform import Platform, build_platform

#: The PostgreSQL server of the machine (and CI's): trust auth, database ``test``.
PG_SERVER = os.environ.get("TIERFLOW_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")


def _pg_url(database: str) -> str:
    base = PG_SERVER.rsplit("/", 1)[0]
    return f"{base}/{database}"


async def create_pg_database() -> str:
    name = f"tierflow_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"
        return
    name = await create_pg_database()
    try:
        yield _pg_url(name).replace("postgresql://", "postgresql+asyncpg://")
    finally:
        await drop_pg_database(name)


@dataclass
class Chain:
    node: AnvilProcess
    platform: Platform

    @property
    def url(self) -> str:
        return self.node.url


@pytest.fixture
def anvil_node() -> Iterator[AnvilProcess]:
    with AnvilProcess.ephemeral() as node:
        yield node


@pytest.fixture
async def chain(anvil_node: AnvilProcess) -> AsyncIterator[Chain]:
    w3 = make_web3(anvil_node.url)
    try:
        platform = await build_platform(w3, dev_private_keys())
        yield Chain(anvil_node, platform)
    finally:
        await close_web3(w3)


@pytest.fixture
def index_config(chain: Chain, database_url: str) -> IndexerConfig:
    return IndexerConfig(
        rpc_url=chain.url,
        database_url=database_url,
        deployment=chain.platform.deployment,
        initial_range=50,
        target_logs=200,
    )
