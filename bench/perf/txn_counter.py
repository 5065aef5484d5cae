"""``python bench/perf/txn_counter.py LOG``: ``tierflow serve`` (one worker) that appends one
JSON line to ``LOG`` for every database transaction its engines end: ``begin`` to ``commit``
or ``rollback``, with its statements (``before_cursor_execute``), the tables it wrote and the
task that ran it. :mod:`bench.perf.write_txns` counts a write's transactions from the lines
it added.

Run by its path, not as a module: it imports nothing of ``bench`` (only SQLAlchemy; then the
``tierflow`` console script runs the command line of whichever checkout is on
``PYTHONPATH``), so it counts an older checkout's server as well as this one's.
"""

from __future__ import annotations

import asyncio
import json
import re
import runpy
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

_WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)


def _task() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return "?"
    return task.get_name() if task is not None else "?"


def install(log: Path) -> None:
    """Log every transaction of this process's engines to ``log``."""
    out = log.open("a", encoding="utf-8", buffering=1)

    def state(conn: Connection) -> dict[str, Any]:
        counted: dict[str, Any] = conn.info.setdefault("txn_count", {"statements": 0, "writes": []})
        return counted

    @event.listens_for(Engine, "begin")
    def begin(conn: Connection) -> None:
        conn.info["txn_count"] = {"statements": 0, "writes": []}

    @event.listens_for(Engine, "before_cursor_execute")
    def executing(conn: Connection, _c: Any, statement: str, *_args: Any) -> None:
        s = state(conn)
        s["statements"] += 1
        found = _WRITE.match(statement)
        if found:
            s["writes"].append(found.group(2).lower())

    def ended(conn: Connection, how: str) -> None:
        s = conn.info.pop("txn_count", None)
        if s is None:  # ended without a begin seen: still one transaction ended
            s = {"statements": 0, "writes": []}
        line = {"end": how, "task": _task(), **s}
        out.write(json.dumps(line) + "\n")

    event.listen(Engine, "commit", lambda conn: ended(conn, "commit"))
    event.listen(Engine, "rollback", lambda conn: ended(conn, "rollback"))


if __name__ == "__main__":
    install(Path(sys.argv[1]))
    # ``tierflow serve`` in this process, through its console script (the benchmarks do not
    # import the command line: the layering contract).
    sys.argv = ["tierflow", "serve"]
    runpy.run_path(str(Path(sys.executable).parent / "tierflow"), run_name="__main__")
