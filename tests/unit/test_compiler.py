"""The compiler: fingerprinted caching, locking, errors, first-party-only artifacts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ledger.artifacts import load_artifact
from ledger.compiler import EVM_VERSION, build, compiler_settings, find_sources
from ledger.errors import ArtifactNotFoundError, CompilationError

COUNTER = """// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;
contract Counter { uint256 public n; function inc() external { n += 1; } }
"""
IFACE = """// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;
interface ICounter { function inc() external; }
"""
GUARDED = """// SPDX-License-Identifier: UNLICENSED
pragma solidity ^0.8.24;
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ICounter} from "../ICounter.sol";
contract Guarded is Ownable, ICounter {
    constructor() Ownable(msg.sender) {}
    function inc() external onlyOwner {}
}
"""


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "contracts" / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_settings_are_pinned() -> None:
    settings = compiler_settings()
    assert settings["evmVersion"] == EVM_VERSION == "cancun"
    assert settings["optimizer"] == {"enabled": True, "runs": 200}
    assert "@openzeppelin/=node_modules/@openzeppelin/" in settings["remappings"]


def test_second_build_is_cached_and_an_edit_rebuilds(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"Counter.sol": COUNTER, "ICounter.sol": IFACE})
    first = build(root=root)
    assert first.compiled
    assert first.contracts == ["Counter", "ICounter"]
    assert (root / "build" / "artifacts" / ".fingerprint").read_text().strip() == first.fingerprint

    second = build(root=root)
    assert not second.compiled
    assert second.fingerprint == first.fingerprint

    (root / "contracts" / "src" / "Counter.sol").write_text(COUNTER + "// touched\n")
    third = build(root=root)
    assert third.compiled
    assert third.fingerprint != first.fingerprint

    # A removed source takes its artifact with it.
    (root / "contracts" / "src" / "ICounter.sol").unlink()
    assert build(root=root).contracts == ["Counter"]
    assert not (root / "build" / "artifacts" / "ICounter.json").exists()


def test_only_first_party_contracts_get_artifacts(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"ICounter.sol": IFACE, "sub/Guarded.sol": GUARDED})
    assert list(find_sources(root)) == [
        "contracts/src/ICounter.sol",
        "contracts/src/sub/Guarded.sol",
    ]
    result = build(root=root)
    assert result.contracts == ["Guarded", "ICounter"]  # no Ownable, Context...
    out = result.directory
    guarded = load_artifact("Guarded", out)
    assert guarded.source_name == "contracts/src/sub/Guarded.sol"
    assert guarded.is_deployable
    assert guarded.deployed_bytecode.startswith("0x6080")
    assert "owner()" in guarded.method_identifiers
    iface = load_artifact("ICounter", out)
    assert not iface.is_deployable
    assert iface.bytecode == "0x"
    with pytest.raises(ArtifactNotFoundError):
        load_artifact("Ownable", out)


def test_compiler_errors_are_reported_formatted(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"Broken.sol": COUNTER.replace("n += 1;", "n += ;")})
    with pytest.raises(CompilationError) as info:
        build(root=root)
    assert "contracts/src/Broken.sol" in str(info.value)
    assert info.value.messages
    assert not (root / "build" / "artifacts" / ".fingerprint").exists()


def test_concurrent_builds_compile_once(tmp_path: Path) -> None:
    root = make_tree(tmp_path, {"Counter.sol": COUNTER})
    results: list[bool] = []

    def run() -> None:
        results.append(build(root=root).compiled)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, True]


def test_empty_source_tree_builds_nothing(tmp_path: Path) -> None:
    (tmp_path / "contracts" / "src").mkdir(parents=True)
    result = build(root=tmp_path)
    assert result.contracts == []
