"""``python -m bench.perf.fanout`` runs, side by side with a checkout, and consumes every
entry (it refuses a round that did not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_fanout_benchmark_runs_beside_a_baseline() -> None:
    command = [sys.executable, "-m", "bench.perf.fanout", "--members", "3", "--pieces", "4"]
    command += ["--rounds", "2", "--baseline", str(ROOT)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "fan-out of 12 entries to 3 member endpoints" in done.stdout
    assert done.stdout.count("median") == 2
