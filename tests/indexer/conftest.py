"""Fixtures for the indexer tests: a fresh chain and a fresh database per test.

- ``database_url``: parametrised over SQLite (a temp file) and PostgreSQL (a new database on
  the server at 127.0.0.1:5432, dropped after the test), so every test runs on both.
- ``chain``: a fresh anvil with the platform deployed and its cast registered; indexer tests
  reorganise and rewind chains, so none is shared.
- ``index_config``: an :class:`IndexerConfig` for the two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bench.cast import build_platform
from indexer.config import IndexerConfig
from ledger.anvil import AnvilProcess, dev_private_keys
from ledger.node import close_web3, make_web3
from tests.support.chain import Chain


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
