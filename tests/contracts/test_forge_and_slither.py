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


def _run(script: str, timeout: float) -> tuple[int, str]:
    env = dict(os.environ, NO_COLOR="1")
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


def test_forge_unit_and_invariant_suite_passes() -> None:
    status, output = _run("forge-invariants", FORGE_TIMEOUT_S)
    assert status == 0, f"scripts/forge-invariants exited {status}:\n{_tail(output)}"
    # The invariant campaign really ran (not filtered out, not zero runs).
    ran = re.search(r"\[PASS\] invariant_tierflow\(\) \(runs: (\d+), calls: (\d+)", output)
    assert ran, f"invariant_tierflow did not run:\n{_tail(output)}"
    assert int(ran.group(1)) > 0, ran.group(0)
    assert int(ran.group(2)) > 0, ran.group(0)
    assert re.search(r"\b0 failed\b", output), _tail(output)


def test_slither_reports_no_medium_or_high_finding() -> None:
    status, output = _run("slither", SLITHER_TIMEOUT_S)
    assert status == 0, f"scripts/slither exited {status}:\n{_tail(output, 200)}"
    assert re.search(r"analyzed \(\d+ contracts", output), _tail(output)
