"""``python -m tests.support.commit_counter LOG``: ``tierflow serve`` that appends one JSON line
to ``LOG`` for every database transaction it ends (:mod:`bench.perf.txn_counter`, the
benchmark's counter: the tables it wrote, ``INSERT``, ``UPDATE``, ``DELETE``, in statement
order, its statements and the task that ran it). A test reads the commits a single write added
to count the transactions a write costs (tests/api/test_write_transactions.py).

Counted through SQLAlchemy's events on every engine of the process, so the production code
carries no test hook.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.perf.txn_counter import install


def read(log: Path) -> list[dict[str, Any]]:
    """The transactions committed so far: ``writes`` (the tables, in statement order),
    ``statements`` and ``task`` (the task's name)."""
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
    return [line for line in lines if line["end"] == "commit"]


if __name__ == "__main__":
    install(Path(sys.argv[1]))
    from tierflow.cli import app

    app(["serve"])
