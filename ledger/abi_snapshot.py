"""The committed ABI snapshot in ``contracts/abi`` and its drift check.

``write_snapshot()`` compiles (if needed) and writes ``contracts/abi/<Name>.json`` for every
first-party contract that has bytecode (interfaces and abstract contracts are skipped), in a
stable form: entries sorted by kind and signature, keys sorted, two-space indentation,
trailing newline. Snapshots of contracts that no longer exist are removed.

``diff_snapshot()`` returns human-readable lines describing how the compiled ABIs differ
from the committed snapshot (empty when in step). ``scripts/update-abi`` runs
``python -m ledger.abi_snapshot`` to refresh it; the unit test fails on drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from eth_utils.abi import collapse_if_tuple

from ledger.artifacts import Artifact, list_artifacts
from ledger.compiler import build
from ledger.paths import abi_dir, repo_root


def _entry_signature(entry: dict[str, Any]) -> str:
    kind = entry.get("type", "function")
    types = ",".join(collapse_if_tuple(dict(i)) for i in entry.get("inputs", []))
    name = entry.get("name", "")
    if kind in ("function", "event", "error"):
        sig = f"{kind} {name}({types})"
        if kind == "function":
            outs = ",".join(collapse_if_tuple(dict(o)) for o in entry.get("outputs", []))
            sig += f" {entry.get('stateMutability', '')}".rstrip()
            if outs:
                sig += f" returns ({outs})"
        return sig
    if kind == "constructor":
        return f"constructor({types}) {entry.get('stateMutability', '')}".rstrip()
    return f"{kind} {entry.get('stateMutability', '')}".rstrip()


_KIND_ORDER = {"constructor": 0, "fallback": 1, "receive": 2, "function": 3, "event": 4, "error": 5}


def canonical_abi(abi: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return ``abi`` with entries in a stable order (kind, then signature)."""
    return sorted(
        abi,
        key=lambda e: (
            _KIND_ORDER.get(e.get("type", "function"), 9),
            _entry_signature(e),
            json.dumps(e, sort_keys=True),
        ),
    )


def render(abi: list[dict[str, Any]]) -> str:
    """Serialise an ABI the way the snapshot stores it."""
    return json.dumps(canonical_abi(abi), indent=2, sort_keys=True) + "\n"


def snapshot_contracts(artifacts_directory: Path | None = None) -> list[Artifact]:
    """First-party contracts that belong in the snapshot (those with bytecode)."""
    return [a for a in list_artifacts(artifacts_directory) if a.is_deployable]


def _compiled(root: Path | None, artifacts_directory: Path | None) -> dict[str, str]:
    result = build(root=root, out_dir=artifacts_directory)
    return {a.contract_name: render(a.abi) for a in snapshot_contracts(result.directory)}


def write_snapshot(
    root: Path | None = None,
    artifacts_directory: Path | None = None,
    snapshot_directory: Path | None = None,
) -> list[Path]:
    """Compile if needed and (re)write the snapshot; return the files written."""
    root = root or repo_root()
    target = snapshot_directory or abi_dir(root)
    compiled = _compiled(root, artifacts_directory)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stale in target.glob("*.json"):
        if stale.stem not in compiled:
            stale.unlink()
    for name, text in sorted(compiled.items()):
        path = target / f"{name}.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _signatures(text: str) -> set[str]:
    try:
        return {_entry_signature(e) for e in json.loads(text)}
    except (ValueError, TypeError, AttributeError):
        return {"<unreadable snapshot>"}


def diff_snapshot(
    root: Path | None = None,
    artifacts_directory: Path | None = None,
    snapshot_directory: Path | None = None,
) -> list[str]:
    """Describe how the compiled ABIs differ from the snapshot; empty list when in step."""
    root = root or repo_root()
    target = snapshot_directory or abi_dir(root)
    compiled = _compiled(root, artifacts_directory)
    stored = (
        {p.stem: p.read_text(encoding="utf-8") for p in sorted(target.glob("*.json"))}
        if target.is_dir()
        else {}
    )
    problems: list[str] = []
    for name in sorted(compiled.keys() - stored.keys()):
        problems.append(f"{name}: compiled but has no snapshot contracts/abi/{name}.json")
    for name in sorted(stored.keys() - compiled.keys()):
        problems.append(f"{name}: snapshot exists but no such deployable contract compiles")
    for name in sorted(compiled.keys() & stored.keys()):
        if compiled[name] == stored[name]:
            continue
        new, old = _signatures(compiled[name]), _signatures(stored[name])
        changes = [f"+ {s}" for s in sorted(new - old)] + [f"- {s}" for s in sorted(old - new)]
        detail = "; ".join(changes) if changes else "formatting or parameter names differ"
        problems.append(f"{name}: ABI drifted: {detail}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m ledger.abi_snapshot [--check]``: write the snapshot, or check for drift."""
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        problems = diff_snapshot()
        for line in problems:
            print(line)
        return 1 if problems else 0
    for path in write_snapshot():
        print(f"wrote {path.relative_to(repo_root())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
