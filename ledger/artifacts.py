"""Compiled contract artifacts: make sure they are current, and load them.

``ensure_artifacts()`` builds ``build/artifacts`` through :mod:`ledger.compiler` when the
sources changed (cheap no-op otherwise); ``load_artifact("ClaimLedger")`` returns a frozen
:class:`Artifact` read from ``build/artifacts/ClaimLedger.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.compiler import build
from ledger.errors import ArtifactNotFoundError
from ledger.paths import artifacts_dir


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    contract_name: str
    source_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    method_identifiers: dict[str, str] = field(default_factory=dict)

    @property
    def is_deployable(self) -> bool:
        """False for interfaces and abstract contracts (they have no bytecode)."""
        return len(self.bytecode) > 2

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Artifact:
        """Build from the JSON written by the compiler."""
        return cls(
            contract_name=doc["contractName"],
            source_name=doc["sourceName"],
            abi=list(doc["abi"]),
            bytecode=doc["bytecode"],
            deployed_bytecode=doc["deployedBytecode"],
            method_identifiers=dict(doc.get("methodIdentifiers", {})),
        )


def ensure_artifacts(force: bool = False) -> Path:
    """Compile ``contracts/src`` if its fingerprint changed (or ``force``); return the dir."""
    return build(force=force).directory


def load_artifact(name: str, directory: Path | None = None) -> Artifact:
    """Load ``<directory or build/artifacts>/<name>.json``.

    Raises :class:`ArtifactNotFoundError` when absent (call :func:`ensure_artifacts` first).
    """
    path = (directory or artifacts_dir()) / f"{name}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactNotFoundError(
            f"no artifact for {name!r} at {path} (is it under contracts/src? "
            "run ensure_artifacts())"
        ) from exc
    return Artifact.from_json(doc)


def list_artifacts(directory: Path | None = None) -> list[Artifact]:
    """Load every artifact in ``directory`` (default ``build/artifacts``), sorted by name."""
    folder = directory or artifacts_dir()
    return [load_artifact(p.stem, folder) for p in sorted(folder.glob("*.json"))]
