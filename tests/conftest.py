"""Shared pytest fixtures: an ephemeral anvil per worker, AsyncWeb3, snapshots, dev keys.

- ``anvil`` (session): an :class:`~ledger.anvil.AnvilProcess` on a free port without state;
  under pytest-xdist every worker gets its own. ``anvil_url`` is its URL.
- ``w3``: an ``AsyncWeb3`` for that node (closed after the test).
- ``chain_snapshot``: ``evm_snapshot`` before the test, ``evm_revert`` after it.
- ``dev_keys``: the node's funded dev account keys.
- ``database_url``: parametrised over SQLite (a temp file) and PostgreSQL (a new database on
  the server at 127.0.0.1:5432, dropped after the test), so a test using it runs on both.
- ``thrower``: the throwaway ``tests/fixtures/contracts/Thrower.sol`` compiled (into a temp
  tree shared by the workers, guarded by the build lock) and deployed once per session; its
  errors are registered with the revert decoder.

Every async test runs in the session's event loop (pyproject: asyncio_default_*_loop_scope),
so session fixtures and tests share it.

Hypothesis runs without its per-example deadline (profile ``tierflow``): the suite runs on
two shared cores, where a 200 ms deadline fails a correct property because the machine is
busy; properties assert behaviour, speed is bench/'s.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from ledger import reverts
from ledger.anvil import AnvilProcess, dev_private_keys, rpc_call
from ledger.artifacts import Artifact, ensure_artifacts, load_artifact
from ledger.node import Web3Client, close_web3, make_web3
from tests.support.chain import Deployed, compile_fixture, wait_receipt
from tests.support.databases import create_pg_database, drop_pg_database, pg_url

hypothesis_settings.register_profile("tierflow", deadline=None)
hypothesis_settings.load_profile("tierflow")


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    node = AnvilProcess.ephemeral()
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def anvil_url(anvil: AnvilProcess) -> str:
    return anvil.url


@pytest.fixture
async def w3(anvil_url: str) -> AsyncIterator[Web3Client]:
    client = make_web3(anvil_url)
    try:
        yield client
    finally:
        await close_web3(client)


@pytest.fixture
def chain_snapshot(anvil_url: str) -> Iterator[str]:
    """Revert the chain to its state before the test (nonces included)."""
    snapshot_id: str = rpc_call(anvil_url, "evm_snapshot")
    try:
        yield snapshot_id
    finally:
        assert rpc_call(anvil_url, "evm_revert", [snapshot_id]) is True


@pytest.fixture(scope="session")
def dev_keys() -> list[str]:
    return dev_private_keys()


@pytest.fixture(scope="session")
def thrower_artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    # Shared by xdist workers (the parent of each worker's basetemp): the build lock makes one
    # worker compile and the other find the fingerprint current.
    root = tmp_path_factory.getbasetemp().parent / "thrower-tree"
    try:
        directory = compile_fixture(root, "Thrower.sol")
    except FileNotFoundError:  # pragma: no cover - a concurrent cleanup
        shutil.rmtree(root, ignore_errors=True)
        directory = compile_fixture(root, "Thrower.sol")
    artifact = load_artifact("Thrower", directory)
    reverts.register_abi(artifact.abi)
    return artifact


@pytest.fixture(scope="session")
def thrower(anvil_url: str, thrower_artifact: Artifact) -> Deployed:
    """Thrower deployed once per session by the node's unlocked first account."""
    deployer = rpc_call(anvil_url, "eth_accounts")[0]
    tx_hash = rpc_call(
        anvil_url,
        "eth_sendTransaction",
        [{"from": deployer, "data": thrower_artifact.bytecode, "gas": hex(3_000_000)}],
    )
    receipt = wait_receipt(anvil_url, tx_hash)
    assert receipt["status"] == "0x1", receipt
    return Deployed(receipt["contractAddress"], thrower_artifact)


def pytest_configure(config: pytest.Config) -> None:
    # Some test modules read the contracts' ABIs at import (parametrising over their events):
    # build the artifacts before collection. The build is fingerprinted and file-locked, so the
    # xdist workers and the controller build once between them.
    ensure_artifacts()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="also run tests marked slow (the long budgets; see docs/testing.md)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'mirror.db'}"
        return
    name = await create_pg_database()
    try:
        yield pg_url(name).replace("postgresql://", "postgresql+asyncpg://")
    finally:
        await drop_pg_database(name)
