"""``tierflow bench --quick``: the benchmark command runs end to end on its own chain (the
smoke run CI keeps, well under a minute) and records figures that hang together. No timing is
asserted: speed is what the benchmark reports, not what a test can hold on shared cores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.paths import repo_root


def assert_bracketed(figure: dict[str, Any], ceilings: list[float]) -> None:
    """``figure`` is held against two of ``ceilings`` (those measured before and after it)."""
    before, after = figure["ceilings"]
    assert before in ceilings
    assert after in ceilings
    assert figure["ceiling"] == (before + after) / 2
    assert figure["ratio"] == figure["rate"] / figure["ceiling"]


# A minute of CI (the quick bench starts its own chains and platform): run it with --runslow,
# and before a change to bench/ lands.
@pytest.mark.slow
def test_quick_bench_records_every_write_figure_against_its_ceiling(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tierflow.cli", "bench", "--quick", "--results-dir", str(tmp_path)],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=600,  # generous: the cores are shared; the run itself takes well under a minute
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads((tmp_path / "quick.json").read_text())
    writes = doc["writes"]
    ceilings = [w for w in writes if w["path"] == "ceiling" and w["operation"] == "split"]
    senders = [w for w in writes if w["path"] == "sender" and w["operation"] == "split"]
    assert {c["holders"] for c in ceilings} == {1, 16}
    # each configuration with the sender of 823f713 and today's, side by side
    assert sorted((s["clients"], s["holders"], s["variant"]) for s in senders) == sorted(
        (c, h, v) for c, h in ((1, 1), (16, 1), (16, 16)) for v in ("before (823f713)", "after")
    )
    for w in writes:
        assert w["count"] > 0
        assert w["seconds"] > 0
        assert w["p50"] <= w["p99"]
        assert w["load_before"] >= 0
    for s in senders:  # each against the mean of the two ceilings measured next to it
        mine = [c["rate"] for c in ceilings if (c["holders"] == 1) == (s["holders"] == 1)]
        assert_bracketed(s, mine)
    # every other operation: the layer against its ceilings, one signer or many as it has
    assert not doc["failures"], doc["failures"]
    for operation in ("transfer", "application", "approval", "settlement batch"):
        mine = [w for w in writes if w["operation"] == operation]
        sent = [w for w in mine if w["path"] == "sender"]
        assert sent, operation
        for s in sent:
            assert_bracketed(
                s,
                [
                    c["rate"]
                    for c in mine
                    if c["path"] == "ceiling" and (c["holders"] == 1) == (s["holders"] == 1)
                ],
            )
    gas = {name: used for name, used, _ in doc["gas"]}
    assert any(name.startswith("split") for name in gas)
    # a sane figure for every row: the largest is a settlement batch of 50 pieces paid by 50
    # payments (about 1.85M gas: each payment reference is a new storage slot)
    assert all(21_000 < used < 5_000_000 for used in gas.values()), gas
    # the quick run leaves the recorded document alone
    assert "quick size" not in (repo_root() / "docs" / "performance.md").read_text()
    assert "Writes" in done.stderr
