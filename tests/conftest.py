"""Shared pytest fixtures: an ephemeral anvil per worker, AsyncWeb3, snapshots, dev keys.

- ``anvil`` (session): an :class:`~ledger.anvil.AnvilProcess` on a free port without state;
  under pytest-xdist every worker gets its own. ``anvil_url`` is its URL.
- ``w3``: an ``AsyncWeb3`` for that node (closed after the test).
- ``chain_snapshot``: ``evm_snapshot`` before the test, ``evm_revert`` after it.
- ``dev_keys``: the node's funded dev account keys.
- ``thrower``: the throwaway ``tests/fixtures/contracts/Thrower.sol`` compiled (into a temp
  tree shared by the workers, guarded by the build lock) and deployed once per session; its
  errors are registered with the revert decoder.

Every async test runs in the session's event loop (pyproject: asyncio_default_*_loop_scope),
so session fixtures and tests share it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger import errors
from ledger.anvil import AnvilProcess, dev_private_keys, rpc_call
from ledger.artifacts import Artifact, ensure_artifacts, load_artifact
from ledger.compiler import build
from ledger.node import Web3Client, close_web3, make_web3

FIXTURES = Path(__file__).parent / "fixtures"


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


@dataclass(frozen=True)
class Deployed:
    """A deployed fixture contract."""

    address: str
    artifact: Artifact

    @property
    def abi(self) -> list[dict[str, Any]]:
        return self.artifact.abi


def compile_fixture(tmp_root: Path, *names: str) -> Path:
    """Copy fixture contracts into ``tmp_root/contracts/src`` and build them there."""
    src = tmp_root / "contracts" / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = src / name
        text = (FIXTURES / "contracts" / name).read_text()
        if not target.exists() or target.read_text() != text:
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(target)
    return build(root=tmp_root).directory


def wait_receipt(url: str, tx_hash: str, within_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        receipt: dict[str, Any] | None = rpc_call(url, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            return receipt
        time.sleep(0.01)
    raise AssertionError(f"no receipt for {tx_hash}")


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
    errors.register_abi(artifact.abi)
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
