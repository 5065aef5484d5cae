"""``python -m tests.support.commit_counter LOG``: ``tierflow serve`` that appends one JSON line
to ``LOG`` for every database transaction it commits: the tables it wrote (``INSERT``,
``UPDATE``, ``DELETE``), in statement order. A test reads the lines a single write added to
count the transactions a write costs (tests/api/test_write_transactions.py).

Counted here, through SQLAlchemy's ``before_cursor_execute`` and ``commit`` events on every
engine of the process, so the production code carries no test hook.
"""

from __future__ import annotations

import asyncio
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
            out.write(json.dumps({"writes": writes, "at": _caller(), "task": _task()}) + "\n")

    @event.listens_for(Engine, "rollback")
    def rolling_back(conn: Connection) -> None:
        conn.info.pop("tierflow_writes", None)


def _task() -> str:
    """The committing task's name (the platform names its background tasks ``tierflow-…``)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return "?"
    return task.get_name() if task is not None else "?"


def _caller() -> str:
    """Where the platform's code committed: the innermost frame of ours in the awaiting
    task's chain of coroutines (the commit event runs in SQLAlchemy's greenlet)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    frames: list[str] = []
    awaited: Any = task.get_coro() if task is not None else None
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        if frame is not None:
            name = frame.f_code.co_filename
            if any(part in name for part in ("/backend/", "/ledger/", "/db/", "/indexer/")):
                frames.append(f"{'/'.join(name.rsplit('/', 2)[-2:])}:{frame.f_lineno}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return " < ".join(reversed(frames[-3:])) or "?"


def read(log: Path) -> list[dict[str, Any]]:
    """The transactions committed so far: ``writes`` (the tables, in statement order), ``at``
    (where the platform's code committed it, when found) and ``task`` (the task's name)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


if __name__ == "__main__":
    install(Path(sys.argv[1]))
    from tierflow.cli import app

    app(["serve"])
