"""A chain for tests: a fresh anvil with the platform deployed (:class:`Chain`), a fixture
contract deployed by the node's own account (:class:`Deployed`), and waiting for a receipt."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cast import Platform
from ledger.anvil import AnvilProcess, rpc_call
from ledger.artifacts import Artifact
from ledger.compiler import build

#: The fixture contracts of the tests (tests/fixtures/contracts).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


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


@dataclass
class Chain:
    node: AnvilProcess
    platform: Platform

    @property
    def url(self) -> str:
        return self.node.url
