"""Fixtures for the contract tests: one anvil and one deployed platform per test process,
each test isolated by ``evm_snapshot`` / ``evm_revert``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from ledger.anvil import AnvilProcess, dev_private_keys
from ledger.node import close_web3, make_web3
from bench.cast import Platform, build_platform


@pytest.fixture(scope="session")
def contracts_anvil() -> Iterator[AnvilProcess]:
    with AnvilProcess.ephemeral() as node:
        yield node


@pytest.fixture(scope="session")
async def platform_session(contracts_anvil: AnvilProcess) -> AsyncIterator[Platform]:
    w3 = make_web3(contracts_anvil.url)
    platform = await build_platform(w3, dev_private_keys())
    yield platform
    await close_web3(w3)


@pytest.fixture
async def platform(platform_session: Platform) -> AsyncIterator[Platform]:
    """The deployed platform, rolled back to its freshly deployed state after the test."""
    snap = await platform_session.snapshot()
    try:
        yield platform_session
    finally:
        await platform_session.revert(snap)
