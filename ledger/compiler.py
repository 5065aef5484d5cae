"""Compile the first-party Solidity sources into ``build/artifacts``.

Every ``.sol`` file under ``contracts/src`` (recursively) is handed, with its content, to
py-solc-x's ``compile_standard``; the ``solc_binary`` is the project's standard-JSON shim
(``contracts/tools/solc-shim.js``, which drives the npm ``solc`` package: no native solc on
our machines). Source unit names are paths relative to the repository root
(``contracts/src/ClaimLedger.sol``); OpenZeppelin comes in through a remapping
and the shim's import callback.

Artifacts are written only for contracts whose source is under ``contracts/src`` (not for
imported library code), one ``build/artifacts/<ContractName>.json`` each with
``contractName``, ``sourceName``, ``abi``, ``bytecode``, ``deployedBytecode`` (0x hex, empty
for interfaces and abstract contracts) and ``methodIdentifiers``.

``build/artifacts/.fingerprint`` holds a sha256 over every source path and content, the
compiler version, the settings and ``package-lock.json`` (which pins OpenZeppelin); a build
is skipped while it matches. A file lock (``build/.artifacts.lock``) serialises builds, so
parallel pytest workers or processes never race, and a process that waited for another's
build finds the fingerprint current and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ledger.errors import CompilationError, ConfigurationError
from ledger.paths import artifacts_dir, contracts_src_dir, repo_root, solc_shim

log = logging.getLogger(__name__)

#: Pinned EVM version (SPEC §6): the local anvil runs cancun or later, Besu likewise.
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 200
#: First-party sources import only OpenZeppelin (forge tests have their own harness).
REMAPPINGS: tuple[str, ...] = ("@openzeppelin/=node_modules/@openzeppelin/",)
OUTPUT_SELECTION: tuple[str, ...] = (
    "abi",
    "evm.bytecode.object",
    "evm.deployedBytecode.object",
    "evm.methodIdentifiers",
)
FINGERPRINT_FILE = ".fingerprint"
LOCK_TIMEOUT_S = 600.0


def compiler_settings() -> dict[str, Any]:
    """Return the standard-JSON ``settings`` object used for every build."""
    return {
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "evmVersion": EVM_VERSION,
        "remappings": list(REMAPPINGS),
        "outputSelection": {"*": {"*": list(OUTPUT_SELECTION)}},
    }


def find_sources(root: Path | None = None) -> dict[str, str]:
    """Return ``{"contracts/src/X.sol": content}`` for every .sol under contracts/src."""
    root = (root or repo_root()).resolve()
    src = contracts_src_dir(root)
    if not src.is_dir():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(src.rglob("*.sol"))
        if path.is_file()
    }


_version_cache: dict[tuple[str, int], str] = {}


def compiler_version(solc_binary: Path | None = None) -> str:
    """Return the full version (``0.8.30+commit.73712a01...``) the shim reports (cached)."""
    binary = (solc_binary or solc_shim()).resolve()
    try:
        key = (str(binary), binary.stat().st_mtime_ns)
    except OSError as exc:
        raise ConfigurationError(f"solc shim not found: {binary}") from exc
    if key not in _version_cache:
        try:
            out = subprocess.run(
                [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=60
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigurationError(f"cannot run {binary} --version: {exc}") from exc
        version = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if "Version:" in line),
            None,
        )
        if not version:
            raise ConfigurationError(f"{binary} --version printed no version: {out!r}")
        _version_cache[key] = version
    return _version_cache[key]


def fingerprint(sources: dict[str, str], version: str, root: Path | None = None) -> str:
    """sha256 over source names and contents, compiler version, settings and the npm lock."""
    h = hashlib.sha256()
    h.update(b"tierflow-artifacts-v1\0")
    h.update(version.encode() + b"\0")
    h.update(json.dumps(compiler_settings(), sort_keys=True).encode() + b"\0")
    lock_file = (root or repo_root()) / "package-lock.json"
    if lock_file.is_file():
        h.update(hashlib.sha256(lock_file.read_bytes()).digest())
    for name in sorted(sources):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(sources[name].encode()).digest())
    return h.hexdigest()


def standard_input(sources: dict[str, str]) -> dict[str, Any]:
    """Build the standard-JSON input for ``sources``."""
    return {
        "language": "Solidity",
        "sources": {name: {"content": content} for name, content in sorted(sources.items())},
        "settings": compiler_settings(),
    }


def _format_errors(errors: list[dict[str, Any]], severity: str) -> list[str]:
    return [
        str(e.get("formattedMessage") or e.get("message") or e)
        for e in errors
        if e.get("severity") == severity
    ]


def compile_sources(
    sources: dict[str, str], root: Path | None = None, solc_binary: Path | None = None
) -> dict[str, Any]:
    """Run the compiler on ``sources``; return its standard-JSON output.

    Raises :class:`CompilationError` with the formatted messages if solc reports errors;
    warnings are logged.
    """
    import solcx
    from solcx.exceptions import SolcError

    root = (root or repo_root()).resolve()
    binary = solc_binary or solc_shim(root)
    try:
        output: dict[str, Any] = solcx.compile_standard(
            standard_input(sources), base_path=str(root), solc_binary=binary
        )
    except SolcError as exc:
        messages = _format_errors(list(exc.error_dict or []), "error") or [str(exc)]
        raise CompilationError(
            "Solidity compilation failed:\n" + "\n".join(messages), messages
        ) from exc
    except (OSError, ValueError) as exc:
        raise CompilationError(f"cannot run the compiler {binary}: {exc}", [str(exc)]) from exc
    errors = list(output.get("errors", []))
    hard = _format_errors(errors, "error")
    if hard:  # compile_standard raises on these already; kept for other binaries' quirks
        raise CompilationError("Solidity compilation failed:\n" + "\n".join(hard), hard)
    for warning in _format_errors(errors, "warning"):
        log.warning("solc: %s", warning.rstrip())
    return output


def _hex(obj: str | None) -> str:
    return "0x" + obj if obj else "0x"


def extract_artifacts(output: dict[str, Any], prefix: str = "contracts/src/") -> dict[str, Any]:
    """Return ``{name: artifact dict}`` for contracts whose source name starts with prefix."""
    artifacts: dict[str, Any] = {}
    for source_name, contracts in sorted(output.get("contracts", {}).items()):
        if not source_name.startswith(prefix):
            continue
        for name, data in sorted(contracts.items()):
            if name in artifacts:
                raise CompilationError(
                    f"two first-party contracts are named {name}: "
                    f"{artifacts[name]['sourceName']} and {source_name}"
                )
            evm = data.get("evm", {})
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "abi": data.get("abi", []),
                "bytecode": _hex(evm.get("bytecode", {}).get("object")),
                "deployedBytecode": _hex(evm.get("deployedBytecode", {}).get("object")),
                "methodIdentifiers": dict(sorted(evm.get("methodIdentifiers", {}).items())),
            }
    return artifacts


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class BuildResult:
    """What :func:`build` did: the directory, whether it compiled, and the artifact names."""

    directory: Path
    compiled: bool
    fingerprint: str
    contracts: list[str] = field(default_factory=list)


def build(
    force: bool = False,
    root: Path | None = None,
    out_dir: Path | None = None,
    solc_binary: Path | None = None,
) -> BuildResult:
    """Compile ``<root>/contracts/src`` into ``out_dir`` unless the fingerprint is current."""
    root = (root or repo_root()).resolve()
    out = (out_dir or artifacts_dir(root)).resolve()
    binary = solc_binary or solc_shim(root)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out.parent / f".{out.name}.lock"), timeout=LOCK_TIMEOUT_S)
    try:
        with lock:
            return _build_locked(force, root, out, binary)
    except Timeout as exc:
        raise CompilationError(f"timed out waiting for the build lock {lock.lock_file}") from exc


def _build_locked(force: bool, root: Path, out: Path, binary: Path) -> BuildResult:
    sources = find_sources(root)
    version = compiler_version(binary)
    fp = fingerprint(sources, version, root)
    stamp = out / FINGERPRINT_FILE
    existing = sorted(p.stem for p in out.glob("*.json"))
    if not force and stamp.is_file() and stamp.read_text().strip() == fp:
        log.debug("artifacts up to date (%s)", fp[:12])
        return BuildResult(out, False, fp, existing)

    artifacts: dict[str, Any] = {}
    if sources:
        log.info("compiling %d Solidity sources with solc %s", len(sources), version)
        output = compile_sources(sources, root, binary)
        artifacts = extract_artifacts(output)
    # Invalidate first: a crash mid-write leaves no stale fingerprint behind.
    stamp.unlink(missing_ok=True)
    for stale in out.glob("*.json"):
        if stale.stem not in artifacts:
            stale.unlink()
    for name, artifact in artifacts.items():
        _atomic_write(out / f"{name}.json", json.dumps(artifact, indent=2) + "\n")
    _atomic_write(stamp, fp + "\n")
    return BuildResult(out, True, fp, sorted(artifacts))
