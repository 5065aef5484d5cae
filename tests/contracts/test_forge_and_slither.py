"""Brings the Solidity-side gates into the pytest run (and so into CI).

- ``scripts/forge-invariants``: forge's unit tests and the invariant fuzzing of SPEC §3
  (contracts/test) at the CI budget of foundry.toml's default profile.
- ``scripts/slither``: static analysis of contracts/src, failing on any medium or high
  finding.

Each runs as a subprocess with its own build directory (forge: ``build/forge-out`` and
``build/forge-cache``, guarded by a lock; slither: a private input file under
``build/slither``), so they run side by side with each other and with the Python tests'
``build/artifacts`` under pytest-xdist. Budgets and the planted-bug check: docs/testing.md.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Generous caps: the runs take about a minute each on two cores; the caps only stop a hang.
FORGE_TIMEOUT_S = 900
SLITHER_TIMEOUT_S = 600


STATS = ROOT / "build" / "invariant-stats.txt"
#: Counted under apply and approve (see TierflowInvariants.afterInvariant).
NOT_COUNTED = {"applyAndApprove"}


def _run(script: str, timeout: float, **extra_env: str) -> tuple[int, str]:
    env = dict(os.environ, NO_COLOR="1", **extra_env)
    env.pop("FOUNDRY_PROFILE", None)  # the script chooses the profile
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / script)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, ANSI.sub("", proc.stdout)


def _tail(output: str, lines: int = 80) -> str:
    return "\n".join(output.splitlines()[-lines:])


def campaign_totals(text: str) -> dict[str, tuple[int, int | None]]:
    """Sum the per-run ``kind=successes/calls`` (or ``kind=successes``) counts of the
    invariant campaign's statistics lines."""
    totals: dict[str, list[int | None]] = {}
    for line in text.splitlines():
        if not line.startswith("run "):
            continue
        for kind, value in re.findall(r"(\w+)=([\d/]+)", line):
            done, _, tried = value.partition("/")
            entry = totals.setdefault(kind, [0, 0 if tried else None])
            entry[0] = (entry[0] or 0) + int(done)
            if tried:
                entry[1] = (entry[1] or 0) + int(tried)
    return {kind: (int(done or 0), tried) for kind, (done, tried) in totals.items()}


def test_forge_unit_and_invariant_suite_passes() -> None:
    STATS.unlink(missing_ok=True)
    status, output = _run("forge-invariants", FORGE_TIMEOUT_S, TIERFLOW_INVARIANT_STATS="1")
    assert status == 0, f"scripts/forge-invariants exited {status}:\n{_tail(output)}"
    # The invariant campaign really ran (not filtered out, not zero runs).
    ran = re.search(r"\[PASS\] invariant_tierflow\(\) \(runs: (\d+), calls: (\d+)", output)
    assert ran, f"invariant_tierflow did not run:\n{_tail(output)}"
    assert int(ran.group(1)) > 0, ran.group(0)
    assert int(ran.group(2)) > 0, ran.group(0)
    assert re.search(r"\b0 failed\b", output), _tail(output)
    # Every kind of handler call succeeded somewhere in the campaign: a budget, or a handler
    # change, that leaves an action always reverting fails here instead of passing quietly.
    totals = campaign_totals(STATS.read_text())
    table = "\n".join(
        f"{kind:>18} {done:>7} / {'-' if tried is None else tried}"
        for kind, (done, tried) in totals.items()
    )
    print(f"invariant campaign, successes / calls per kind of handler call:\n{table}")
    never = sorted(k for k, (done, _) in totals.items() if done == 0 and k not in NOT_COUNTED)
    assert not never, f"handler calls that never succeeded: {never}\n{table}"
    assert {"transferValue", "transfer721", "approvals", "suspend", "shortenKyc"} <= set(totals)
    assert {"voidInvoice", "setExposureLimit"} <= set(totals)


def test_slither_reports_no_medium_or_high_finding() -> None:
    status, output = _run("slither", SLITHER_TIMEOUT_S)
    assert status == 0, f"scripts/slither exited {status}:\n{_tail(output, 200)}"
    assert re.search(r"analyzed \(\d+ contracts", output), _tail(output)
