"""The client as partners install it: it imports none of the platform's packages, its public
surface is what ``__all__`` names, and the ABIs it decodes intents with are the contracts'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import client
from client.errors import TierflowError
from client.intents import ContractAbis

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = ("backend", "ledger", "indexer", "tierflow", "db", "bench", "tests")


def test_the_client_imports_none_of_the_platforms_packages() -> None:
    script = (
        "import importlib, pkgutil, sys, client\n"
        "for m in pkgutil.walk_packages(client.__path__, 'client.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {PLATFORM!r})\n"
        "print(' '.join(bad))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "", f"the client imports {found.stdout.strip()}"


def test_the_public_surface_is_curated_and_errors_share_one_root() -> None:
    assert sorted(client.__all__) == client.__all__
    for name in client.__all__:
        assert hasattr(client, name), name
    errors = [getattr(client, n) for n in client.__all__]
    for kind in errors:
        if isinstance(kind, type) and issubclass(kind, Exception):
            assert issubclass(kind, TierflowError), kind


def test_the_shipped_abis_are_the_contracts_snapshot() -> None:
    """scripts/update-client-abi copies contracts/abi; the lead refreshes it with every
    contract change (run it, and commit client/abi)."""
    shipped = {p.name: json.loads(p.read_text()) for p in (ROOT / "client" / "abi").glob("*.json")}
    source = {
        p.name: json.loads(p.read_text()) for p in (ROOT / "contracts" / "abi").glob("*.json")
    }
    assert shipped == source, "client/abi is stale: run scripts/update-client-abi"
    check = subprocess.run(
        ["bash", str(ROOT / "scripts" / "update-client-abi"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    decodable = ContractAbis.shipped().contracts
    assert {"ClaimLedger", "FinancingDesk", "InvoiceRegistry", "MemberRegistry"} <= set(decodable)
