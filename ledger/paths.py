"""Where things live: the repository root, build artifacts and the data directory.

The repository root is the parent of the ``ledger`` package unless ``TIERFLOW_REPO_ROOT``
is set (useful for tests that compile a throwaway tree, or for an installed copy of the
package running against a checkout elsewhere). The data directory is
``$TIERFLOW_DATA_DIR`` or ``./data``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT_ENV = "TIERFLOW_REPO_ROOT"
DATA_DIR_ENV = "TIERFLOW_DATA_DIR"


def repo_root() -> Path:
    """Return the repository root (``$TIERFLOW_REPO_ROOT`` or the package's grandparent)."""
    override = os.environ.get(REPO_ROOT_ENV)
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parent.parent


def contracts_src_dir(root: Path | None = None) -> Path:
    """Return ``<root>/contracts/src``, where the first-party Solidity sources live."""
    return (root or repo_root()) / "contracts" / "src"


def artifacts_dir(root: Path | None = None) -> Path:
    """Return ``<root>/build/artifacts``, where compiled artifacts are written."""
    return (root or repo_root()) / "build" / "artifacts"


def abi_dir(root: Path | None = None) -> Path:
    """Return ``<root>/contracts/abi``, the committed ABI snapshot directory."""
    return (root or repo_root()) / "contracts" / "abi"


def package_root() -> Path:
    """Return the checkout this package was loaded from (ignores ``TIERFLOW_REPO_ROOT``)."""
    return Path(__file__).resolve().parent.parent


def _toolchain_path(relative: str, root: Path | None) -> Path:
    # Prefer the tool inside the given/overridden root; fall back to the checkout the package
    # came from (a throwaway source tree in a test has no node_modules of its own).
    first = (root or repo_root()) / relative
    if first.exists():
        return first
    return package_root() / relative


def solc_shim(root: Path | None = None) -> Path:
    """Return the path of the solc standard-JSON shim used as py-solc-x's binary."""
    return _toolchain_path("contracts/tools/solc-shim.js", root)


def node_bin(name: str, root: Path | None = None) -> Path:
    """Return ``node_modules/.bin/<name>`` (anvil, cast, forge...)."""
    return _toolchain_path(f"node_modules/.bin/{name}", root)


def data_dir() -> Path:
    """Return the data directory (``$TIERFLOW_DATA_DIR`` or ``./data``), not creating it."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data").resolve()
