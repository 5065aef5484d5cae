"""The committed ABI snapshot (contracts/abi) must match what contracts/src compiles to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.abi_snapshot import diff_snapshot, write_snapshot
from ledger.paths import contracts_src_dir


def test_committed_abi_snapshot_matches_the_contracts() -> None:
    if not any(contracts_src_dir().rglob("*.sol")):
        pytest.skip("contracts/src has no Solidity sources yet")
    problems = diff_snapshot()
    assert not problems, (
        "the contracts' ABI drifted from the committed snapshot in contracts/abi:\n  "
        + "\n  ".join(problems)
        + "\nIf the change is intended, run scripts/update-abi and commit contracts/abi."
    )


def test_snapshot_round_trip_and_drift_report(tmp_path: Path) -> None:
    src = tmp_path / "contracts" / "src"
    src.mkdir(parents=True)
    (src / "IThing.sol").write_text(
        "// SPDX-License-Identifier: UNLICENSED\npragma solidity ^0.8.24;\n"
        "interface IThing { function a() external; }\n"
    )
    (src / "Thing.sol").write_text(
        "// SPDX-License-Identifier: UNLICENSED\npragma solidity ^0.8.24;\n"
        "contract Thing { error Nope(uint256 x); function a() external {} "
        "function b(uint8 y) external pure returns (uint8) { return y; } }\n"
    )
    written = write_snapshot(root=tmp_path)
    assert [p.name for p in written] == ["Thing.json"]  # interfaces have no bytecode
    text = written[0].read_text()
    assert text.endswith("\n")
    assert [e.get("name") for e in json.loads(text)] == ["a", "b", "Nope"]
    assert diff_snapshot(root=tmp_path) == []
    assert write_snapshot(root=tmp_path)[0].read_text() == text  # stable

    snap = json.loads(text)
    snap = [e for e in snap if e.get("name") != "b"]
    written[0].write_text(json.dumps(snap))
    (tmp_path / "contracts" / "abi" / "Gone.json").write_text("[]")
    problems = diff_snapshot(root=tmp_path)
    assert problems == [
        "Gone: snapshot exists but no such deployable contract compiles",
        "Thing: ABI drifted: + function b(uint8) pure returns (uint8)",
    ]
