"""The layering contract (``[tool.importlinter]`` in pyproject.toml, docs/architecture.md):
tierflow > bench > backend > indexer > (ledger | db), benchmarks import no tests; and tests
share helpers only through ``tests/support``.

The contract is checked on the tree as it is, and shown to have teeth: on a copy of the
packages with one backwards import planted, the same check fails and names it.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("tierflow", "bench", "backend", "indexer", "ledger", "db", "tests")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_layering_contract_holds() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    kept = re.search(r"Contracts: (\d+) kept, 0 broken\.", result.stdout)
    assert kept is not None, result.stdout
    assert int(kept.group(1)) >= 3, result.stdout


def _python_only(directory: str, names: list[str]) -> set[str]:
    base = Path(directory)
    return {
        n for n in names if n == "__pycache__" or ((base / n).is_file() and not n.endswith(".py"))
    }


def test_a_backwards_import_breaks_the_contract(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_python_only)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    # The ledger reaching up into the API: what the layers forbid.
    (tmp_path / "ledger" / "planted.py").write_text(
        '"""Planted by tests/unit/test_layers.py."""\n\nimport backend.gateway  # noqa: F401\n'
    )
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "ledger.planted -> backend.gateway" in result.stdout
    assert "BROKEN" in result.stdout


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_tests_share_helpers_only_through_support() -> None:
    """No test module (nor a conftest, nor a support module) imports a test module or a
    conftest: shared helpers are in tests/support, imported as ``tests.support.…``."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for module in _imported(path):
            if module.startswith("tests.") and not module.startswith("tests.support"):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
