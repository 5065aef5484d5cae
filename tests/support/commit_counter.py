"""``python -m tests.support.commit_counter LOG``: ``tierflow serve`` that appends one JSON line
to ``LOG`` for every database transaction it commits: the tables it wrote (``INSERT``,
``UPDATE``, ``DELETE``), in statement order. A test reads the lines a single write added to
count the transactions a write costs (tests/api/test_write_transactions.py).

Counted here, through SQLAlchemy's ``before_cursor_execute`` and ``commit`` events on every
engine of the process, so the production code carries no test hook.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

_WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)


def install(log: Path) -> None:
    """Append a line to ``log`` for every commit of this process."""

    @event.listens_for(Engine, "before_cursor_execute")
    def executing(conn: Connection, _c: Any, statement: str, *_args: Any) -> None:
        found = _WRITE.match(statement)
        if found:
            conn.info.setdefault("tierflow_writes", []).append(found.group(2).lower())

    @event.listens_for(Engine, "commit")
    def committing(conn: Connection) -> None:
        writes = conn.info.pop("tierflow_writes", [])
        with log.open("a", encoding="utf-8") as out:
            out.write(json.dumps(writes) + "\n")

    @event.listens_for(Engine, "rollback")
    def rolling_back(conn: Connection) -> None:
        conn.info.pop("tierflow_writes", None)


def read(log: Path) -> list[list[str]]:
    """The transactions committed so far, each as the tables it wrote."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


if __name__ == "__main__":
    install(Path(sys.argv[1]))
    from tierflow.cli import app

    app(["serve"])
