"""``python -m bench.perf.baseline_api``: ``tierflow serve`` with a keyed write's bookkeeping
as it was before change 8 of docs/performance.md (six database transactions per hosted write:
the journal's record and the audit citation committed one after the other before the
broadcast, the answer and the audit record one after the other after it), so
:mod:`bench.perf.write_path` measures before and after side by side on one stack.
"""

from __future__ import annotations

from typing import Any

from backend.api import deps
from backend.ports import TxJournal, WriteContext


def install() -> None:
    """Put the separate commits back in this process."""

    async def record(self: WriteContext, journal: TxJournal, tx_hash: str) -> None:
        await journal.persist(journal)
        await self.cite(tx_hash)

    def no_finishing(_request: Any) -> None:
        return None

    WriteContext.record = record  # type: ignore[method-assign]
    deps._finishing = no_finishing  # type: ignore[assignment]


if __name__ == "__main__":
    install()
    from tierflow.cli import app

    app(["serve"])
