"""Indexer benchmark: backfill rate into SQLite and PostgreSQL against the fetch-only ceiling,
and lag behind the head under a steady write rate.

Usage: ``python -m bench.indexer_backfill [--events 100000] [--skip-postgres] [--record]``.

On an ephemeral anvil, :func:`bench.indexer_load.generate` writes at least ``--events`` logs.
Then, in the same run:

1. fetch-only ceiling: the same logs fetched with ``eth_getLogs`` over the four contracts, in
   ranges sized the way the indexer's fetcher sizes them (aiming at ``target_logs`` per
   range), through :class:`ledger.jsonrpc.RpcClient`; logs per second, median of ``--runs``;
2. mirrored rate: ``Indexer.run(once=True)`` from genesis into a fresh SQLite file and a fresh
   PostgreSQL database; events per second, median of ``--runs``, as a ratio to (1);
3. lag: the indexer follows the chain while :func:`bench.indexer_load.write_at_rate` writes
   ``--rate`` transactions per second for ``--lag-seconds`` with a block every second; head
   minus checkpoint is sampled every 100 ms (in blocks, and in seconds since the oldest
   block not yet mirrored first appeared); median and p99.

Aims (issue 3): mirrored ≥ half the fetch-only rate, and ≥ 3,000 events/s into SQLite on two
cores. ``--record`` writes the figures into the "Benchmark" section of ``docs/indexer.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.indexer_load import LoadResult, WriterResult, generate, write_at_rate
from indexer.config import IndexerConfig
from indexer.pipeline import Indexer
from ledger.anvil import AnvilProcess
from ledger.jsonrpc import RpcClient
from ledger.logs import configure_logging
from ledger.paths import repo_root

PG_ADMIN = "postgresql://root@127.0.0.1:5432/test"
SQLITE_AIM = 3_000.0  # events/s into SQLite on two cores
RATIO_AIM = 0.5  # mirrored / fetch-only
DOC = repo_root() / "docs" / "indexer.md"
SECTION = "## Benchmark"


# -- (1) fetch-only ceiling --------------------------------------------------------------------


async def fetch_only(url: str, load: LoadResult, config: IndexerConfig) -> tuple[int, float]:
    """``eth_getLogs`` over the load's blocks, ranges adapted like the indexer's fetcher.

    Returns ``(logs, seconds)``.
    """
    addresses = sorted(a.lower() for a in load.addresses)
    size = max(1, config.initial_range)
    target = config.target_logs
    count = 0
    async with RpcClient(url, timeout_s=60.0) as rpc:
        started = time.perf_counter()
        start = load.first_block
        while start <= load.last_block:
            end = min(load.last_block, start + size - 1)
            logs = await rpc.call(
                "eth_getLogs",
                [{"fromBlock": hex(start), "toBlock": hex(end), "address": addresses}],
            )
            count += len(logs)
            span = end - start + 1
            if len(logs) > target and span > 1:
                size = max(1, span * target // len(logs))
            elif len(logs) < target // 4 and span >= size:
                size = min(config.max_range, size * 2)
            start = end + 1
        return count, time.perf_counter() - started


# -- (2) mirroring ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database (created through ``test``), dropped afterwards."""
    name = f"tierflow_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
    finally:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    """A SQLite file in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="tierflow-bench-") as directory:
        yield f"sqlite+aiosqlite:///{Path(directory) / 'mirror.db'}"


def indexer_config(url: str, database_url: str, load: LoadResult, **options: Any) -> IndexerConfig:
    return IndexerConfig(
        rpc_url=url,
        database_url=database_url,
        deployment=load.deployment,
        confirmations=0,
        **options,
    )


#: The PostgreSQL variants measured side by side with ``--postgres-variants``, the indexer's
#: bulk-load measures one at a time: its default is ``COPY`` on and the secondary indexes
#: deferred only past 10,000 blocks behind, which this load's backfill (~350 logs a block on
#: anvil, 59 blocks for 20,945 logs) is not; the second row defers them anyway.
POSTGRES_VARIANTS: dict[str, dict[str, Any]] = {
    "statements, not COPY": {"copy": False},
    "indexes deferred (threshold 1 block)": {"defer_indexes_blocks": 1},
    "neither (statements, indexes kept: before)": {"copy": False, "defer_indexes_blocks": 0},
}


async def mirror_once(
    url: str, database_url: str, load: LoadResult, **options: Any
) -> tuple[int, float]:
    """Backfill from genesis to the head with the indexer; ``(events, seconds)``.

    Seconds are the indexer's own run time (opening, migrations and the lock excluded).
    """
    async with Indexer.open(indexer_config(url, database_url, load, **options)) as ix:
        stats = await ix.run(once=True)
    return stats.events, stats.seconds


# -- (3) lag ------------------------------------------------------------------------------------


@dataclass
class LagResult:
    blocks: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    writer: WriterResult | None = None

    @staticmethod
    def _p(values: list[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def median_blocks(self) -> float:
        return statistics.median(self.blocks) if self.blocks else 0.0

    @property
    def p99_blocks(self) -> float:
        return self._p([float(b) for b in self.blocks], 0.99)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0

    @property
    def p99_seconds(self) -> float:
        return self._p(self.seconds, 0.99)


async def measure_lag(
    url: str, database_url: str, load: LoadResult, rate: float, duration_s: float
) -> LagResult:
    """Follow the chain while writing at ``rate``; sample head − checkpoint every 100 ms."""
    result = LagResult()
    async with Indexer.open(indexer_config(url, database_url, load)) as ix:
        await ix.run(once=True)  # start level with the head
        stop = asyncio.Event()
        follower = asyncio.create_task(ix.run(once=False, stop=stop))
        writer = asyncio.create_task(write_at_rate(url, load, rate, duration_s))
        first_seen: dict[int, float] = {}
        async with RpcClient(url, timeout_s=10.0) as rpc:
            while not writer.done():
                head = int(await rpc.call("eth_blockNumber", []), 16)
                now = time.monotonic()
                first_seen.setdefault(head, now)
                checkpoint = ix.checkpoint.block_number
                result.blocks.append(max(0, head - checkpoint))
                waiting = [t for b, t in first_seen.items() if checkpoint < b <= head]
                result.seconds.append(now - min(waiting) if waiting else 0.0)
                await asyncio.sleep(0.1)
        result.writer = await writer
        stop.set()
        await follower
    return result


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Figures:
    events: int
    blocks: int
    generation_s: float
    fetch: list[float] = field(default_factory=list)  # logs/s per run
    sqlite: list[float] = field(default_factory=list)  # events/s per run
    postgres: list[float] = field(default_factory=list)
    #: PostgreSQL with one of :data:`POSTGRES_VARIANTS` (a measure taken back), per run.
    postgres_variants: dict[str, list[float]] = field(default_factory=dict)
    lag: LagResult | None = None

    @property
    def ceiling(self) -> float:
        return statistics.median(self.fetch)


async def _runs(
    label: str, runs: int, progress: Progress, once: Callable[[], Awaitable[float]]
) -> list[float]:
    task = progress.add_task(label, total=runs)
    out: list[float] = []
    for _ in range(runs):
        out.append(await once())
        progress.advance(task)
    return out


async def bench(url: str, args: argparse.Namespace, progress: Progress) -> Figures:
    load = await generate(url, args.events, progress=progress)
    figures = Figures(load.logs, load.last_block - load.first_block + 1, load.seconds)
    config = indexer_config(url, "sqlite+aiosqlite:///:memory:", load)

    async def fetch_rate() -> float:
        count, seconds = await fetch_only(url, load, config)
        if count != load.logs:
            raise SystemExit(f"eth_getLogs returned {count} logs, the load made {load.logs}")
        return count / seconds

    async def mirror_rate(
        database: Callable[[], contextlib.AbstractAsyncContextManager[str]],
        **options: Any,
    ) -> float:
        async with database() as database_url:
            events, seconds = await mirror_once(url, database_url, load, **options)
        if events != load.logs:
            raise SystemExit(f"the indexer mirrored {events} events, the load made {load.logs}")
        return events / seconds

    figures.fetch = await _runs("fetch only (eth_getLogs)", args.runs, progress, fetch_rate)
    figures.sqlite = await _runs(
        "mirror into SQLite", args.runs, progress, lambda: mirror_rate(sqlite_database)
    )
    if not args.skip_postgres:
        variants = POSTGRES_VARIANTS if getattr(args, "postgres_variants", False) else {}
        task = progress.add_task("mirror into PostgreSQL", total=args.runs * (1 + len(variants)))
        # Interleaved, run by run: a change in the machine's load hits every variant alike.
        for _ in range(args.runs):
            figures.postgres.append(await mirror_rate(postgres_database))
            progress.advance(task)
            for name, options in variants.items():
                rate = await mirror_rate(postgres_database, **options)
                figures.postgres_variants.setdefault(name, []).append(rate)
                progress.advance(task)
    if args.lag_seconds > 0:
        task = progress.add_task(f"lag at {args.rate:g} tx/s", total=None)
        async with sqlite_database() as database_url:
            figures.lag = await measure_lag(url, database_url, load, args.rate, args.lag_seconds)
        progress.update(task, total=1, completed=1)
    return figures


def rows(figures: Figures) -> list[tuple[str, str, str, str, str]]:
    """(what, rate, ratio to fetch-only, aim, met?) for the table and the doc."""
    ceiling = figures.ceiling
    out = [("fetch only (`eth_getLogs`), the ceiling", f"{ceiling:,.0f} logs/s", "1.00", "—", "—")]

    def row(name: str, rates: list[float], floor: float | None) -> None:
        rate = statistics.median(rates)
        ratio = rate / ceiling
        aim = f"≥ {RATIO_AIM:.2f}×" + (f" and ≥ {floor:,.0f}/s" if floor else "")
        met = ratio >= RATIO_AIM and (floor is None or rate >= floor)
        out.append((name, f"{rate:,.0f} events/s", f"{ratio:.2f}", aim, "yes" if met else "NO"))

    row("mirrored into SQLite", figures.sqlite, SQLITE_AIM)
    if figures.postgres:
        row("mirrored into PostgreSQL", figures.postgres, None)
    for name, rates in figures.postgres_variants.items():
        row(f"mirrored into PostgreSQL, but {name}", rates, None)
    return out


def lag_rows(lag: LagResult) -> list[tuple[str, str, str]]:
    return [
        ("lag, blocks", f"{lag.median_blocks:g}", f"{lag.p99_blocks:g}"),
        ("lag, seconds", f"{lag.median_seconds:.2f}", f"{lag.p99_seconds:.2f}"),
    ]


def render(figures: Figures, args: argparse.Namespace) -> str:
    """The "Benchmark" section of docs/indexer.md."""
    lines = [
        SECTION,
        "",
        f"`python -m bench.indexer_backfill --events {args.events}"
        + (" --skip-postgres" if args.skip_postgres else "")
        + f" --record` ({date.today().isoformat()}, {platform.machine()}, two cores; "
        "anvil, the indexer and PostgreSQL on the same machine). The load "
        "(`bench/indexer_load.py`) is mostly claim splits (four logs each) down many tiers, "
        "some whole transfers and financing applications, approvals and rejections, over 48 "
        f"payables and 21 members: {figures.events:,} logs in {figures.blocks:,} blocks, "
        f"generated in {figures.generation_s:.0f} s. Rates are medians of {args.runs} runs, "
        "each mirror run into a fresh database from genesis; the fetch-only ceiling is "
        "`eth_getLogs` over the four contracts in ranges sized as the indexer sizes them, "
        "measured in the same run.",
        "",
        "| | rate | ratio to fetch-only | aim | met |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows(figures)]
    runs = [("fetch only", figures.fetch), ("SQLite", figures.sqlite)]
    if figures.postgres:
        runs.append(("PostgreSQL", figures.postgres))
    runs += [(f"PostgreSQL, but {n}", rs) for n, rs in figures.postgres_variants.items()]
    lines += [
        "",
        "Each run: "
        + "; ".join(f"{n} " + ", ".join(f"{r:,.0f}" for r in rs) for n, rs in runs)
        + ".",
    ]
    lag = figures.lag
    if lag is not None and lag.writer is not None:
        w = lag.writer
        lines += [
            "",
            f"Lag behind the head while {args.rate:g} transactions per second (splits and whole "
            f"transfers) are written for {args.lag_seconds:g} s, one block a second, the indexer "
            f"following SQLite (achieved: {w.rate:,.0f} tx/s, {w.succeeded:,} of {w.sent:,} "
            f"succeeded, {w.last_block - w.first_block + 1} blocks); head minus checkpoint "
            "sampled every 100 ms, seconds counted from when the oldest block not yet "
            "mirrored was first seen at the head:",
            "",
            "| | median | p99 |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in lag_rows(lag)]
    return "\n".join(lines) + "\n"


def record(section: str, path: Path = DOC) -> None:
    """Replace (or add) the "Benchmark" section of ``path``; the rest is left alone."""
    if not path.exists():
        path.write_text("# Indexer\n\n" + section)
        return
    text = path.read_text()
    start = text.find(SECTION + "\n")
    if start < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    end = text.find("\n## ", start + len(SECTION))
    rest = text[end + 1 :] if end >= 0 else ""
    path.write_text(text[:start] + section + ("\n" + rest if rest else ""))


def show(console: Console, figures: Figures, args: argparse.Namespace) -> None:
    table = Table(title=f"indexer backfill: {figures.events:,} events, {figures.blocks:,} blocks")
    for col in ("", "rate (median)", "ratio to fetch-only", "aim", "met"):
        table.add_column(col, justify="left" if col in ("", "aim") else "right")
    for r in rows(figures):
        table.add_row(*(c.replace("`", "") for c in r))
    console.print(table)
    lag = figures.lag
    if lag is not None and lag.writer is not None:
        w = lag.writer
        lag_table = Table(
            title=f"lag while writing {args.rate:g} tx/s (achieved {w.rate:,.0f} tx/s, "
            f"{w.succeeded:,}/{w.sent:,} succeeded)"
        )
        for col in ("", "median", "p99"):
            lag_table.add_column(col, justify="right")
        for lag_row in lag_rows(lag):
            lag_table.add_row(*lag_row)
        console.print(lag_table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="logs to generate")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--postgres-variants",
        action="store_true",
        help="also PostgreSQL with each bulk-load measure taken back, interleaved run by run",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="tx/s for the lag test")
    parser.add_argument("--lag-seconds", type=float, default=20.0, help="0 skips the lag test")
    parser.add_argument("--record", action="store_true", help=f"write the figures to {DOC}")
    args = parser.parse_args()
    configure_logging("warning")  # the indexer's per-batch debug lines would bury the bars
    console = Console()
    with AnvilProcess.ephemeral() as node, Progress(console=console) as progress:
        figures = asyncio.run(bench(node.url, args, progress))
    show(console, figures, args)
    if args.record:
        record(render(figures, args))
        console.print(f"recorded in {DOC}")


if __name__ == "__main__":
    main()
