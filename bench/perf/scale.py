"""Reads at scale, against a mirror filled directly (no chain): the services the routes call,
timed with their JSON encoding, on SQLite (a file, as ``tierflow run`` has it).

- the lineage tree of one payable of 10,000 pieces (a ternary tree, eight levels deep),
  ``payables.tree`` as ``GET /v1/payables/{id}/tree`` answers it (all levels), and the same
  as ``?format=compact`` answers it (columns, one page of every level);
- exposure over 100,000 pieces: 10,000 payables of one obligor, ten pieces each, financed by
  four financiers; the obligor's own row and an auditor's whole list;
- the events feed over 1,000,000 events (``--full`` only; 100,000 otherwise): a page of 50 of
  one piece's events, and the first page of the unfiltered feed.

Each figure is the median of :data:`REPEATS` runs after one uncounted run.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.encoders import jsonable_encoder
from rich.progress import Progress
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend import models as api_models
from backend.auth import Caller
from backend.services import events_feed, exposure, payables
from backend.services.events_feed import EventFilter
from db.engine import create_engine
from indexer import models as m
from indexer.rows import claim_row, payable_row
from ledger.roles import Role

REPEATS = 5
CORE = "0x" + "c0" * 20
SUPPLIER = "0x" + "51" * 20
AUDITOR = "0x" + "a0" * 20
FINANCIERS = ["0x" + f"f{i}" * 20 for i in range(4)]
DUE = 2_000_000_000


@dataclass
class ScaleFigure:
    name: str
    rows: int  # the data it reads over
    median_s: float
    answer_bytes: int
    note: str = ""


def holder(i: int) -> str:
    return "0x" + f"{i % 5000:040x}"


async def _fill(engine: AsyncEngine, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 20_000):
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows[start : start + 20_000])


async def _timed(
    sessions: async_sessionmaker[AsyncSession],
    read: Callable[[AsyncSession], Awaitable[Any]],
    encode: Callable[[Any], Any] = jsonable_encoder,
) -> tuple[float, int]:
    took: list[float] = []
    size = 0
    for _ in range(REPEATS + 1):
        async with sessions() as session:
            t0 = time.perf_counter()
            body = json.dumps(encode(await read(session))).encode()
            took.append(time.perf_counter() - t0)
            size = len(body)
    return statistics.median(took[1:]), size


async def scale_figures(full: bool, progress: Progress) -> list[ScaleFigure]:
    out: list[ScaleFigure] = []
    task = progress.add_task("scale: filling a mirror", total=4)
    with tempfile.TemporaryDirectory(prefix="tierflow-bench-scale-") as directory:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(directory) / 'scale.db'}")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(m.Base.metadata.create_all)
                await conn.run_sync(api_models.Base.metadata.create_all)
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            core = Caller(CORE, frozenset({Role.CORE_ENTERPRISE}), "active", "bench")
            auditor = Caller(AUDITOR, frozenset({Role.AUDITOR}), "active", "bench")

            # the tree: payable 1, pieces 1..10,000, piece i's parent (i + 1) // 3
            tree_pieces = 10_000
            await _fill(
                engine,
                m.Payable.__table__,
                [payable_row(1, CORE, SUPPLIER, 10**15, DUE, 0, None, 1, False, 1)],
            )
            depth = {1: 0}
            rows = [claim_row(1, 1, None, 0, SUPPLIER, 10**12, DUE, None, 1)]
            for i in range(2, tree_pieces + 1):
                parent = (i + 1) // 3
                depth[i] = depth[parent] + 1
                rows.append(claim_row(i, 1, parent, depth[i], holder(i), 1000, DUE, None, i))
            await _fill(engine, m.Claim.__table__, rows)
            progress.advance(task)
            median, size = await _timed(sessions, lambda s: payables.tree(s, core, 1))
            out.append(ScaleFigure("lineage tree, whole", tree_pieces, median, size, "all levels"))
            # format=compact: columns of plain values, sent as they are (no encoder pass)
            median, size = await _timed(
                sessions, lambda s: payables.tree_compact(s, core, 1), lambda body: body
            )
            out.append(
                ScaleFigure(
                    "lineage tree, compact", tree_pieces, median, size, "format=compact, one page"
                )
            )

            # exposure: 10,000 more payables of the core, ten pieces each
            n_payables, per = 10_000, 10
            await _fill(
                engine,
                m.Payable.__table__,
                [
                    payable_row(p, CORE, SUPPLIER, 10**9, DUE, 0, None, 0, False, p)
                    for p in range(2, n_payables + 2)
                ],
            )
            first = tree_pieces + 1
            await _fill(
                engine,
                m.Claim.__table__,
                [
                    claim_row(first + k, 2 + k // per, None, 0, holder(k), 10**8, DUE, None, k)
                    for k in range(n_payables * per)
                ],
            )
            await _fill(
                engine,
                m.Exposure.__table__,
                [
                    {"financier": f, "obligor": CORE, "outstanding": 10**10, "exposure_limit": 0}
                    for f in FINANCIERS
                ],
            )
            progress.advance(task)
            pieces = n_payables * per + tree_pieces
            median, size = await _timed(
                sessions, lambda s: exposure.list_exposure(s, core, None, None, None, 50)
            )
            out.append(ScaleFigure("exposure, the obligor's row", pieces, median, size))
            median, size = await _timed(
                sessions, lambda s: exposure.list_exposure(s, auditor, None, None, None, 50)
            )
            out.append(ScaleFigure("exposure, an auditor's list", pieces, median, size))

            # the events feed
            events = 1_000_000 if full else 100_000
            await _fill(
                engine,
                m.Event.__table__,
                [
                    {
                        "block_number": b // 4 + 1,
                        "log_index": b % 4,
                        "block_hash": "0x" + f"{b // 4:064x}",
                        "block_time": 1_700_000_000 + b // 4,
                        "tx_hash": "0x" + f"{b // 4:064x}",
                        "tx_index": 0,
                        "contract": "ClaimLedger",
                        "event": "ClaimSplit",
                        "args": json.dumps({"claimId": b % tree_pieces + 1, "value": 1}),
                        "claim_id": b % tree_pieces + 1,
                        "payable_id": 1,
                        "financing_id": None,
                        "invoice_id": None,
                        "account": None,
                    }
                    for b in range(events)
                ],
            )
            progress.advance(task)
            median, size = await _timed(
                sessions,
                lambda s: events_feed.list_events(s, auditor, EventFilter(claim_id=777), None, 50),
            )
            out.append(ScaleFigure("events feed, one piece's page of 50", events, median, size))
            median, size = await _timed(
                sessions, lambda s: events_feed.list_events(s, auditor, EventFilter(), None, 200)
            )
            out.append(ScaleFigure("events feed, first page of 200", events, median, size))
            progress.advance(task)
        finally:
            await engine.dispose()
    return out
