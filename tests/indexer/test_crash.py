"""Crash mid-batch (IX-3): an indexer process killed with SIGKILL at random points.

The indexer runs as a child process (:mod:`tests.support.index_child`) over ranges of 1 to 3
blocks of a seeded scenario history, so there are many batches to land in. The test kills it
at seeded points (once the checkpoint has passed a random block, after a random few
milliseconds more), restarts it, and lets the last one finish. Meanwhile it reads the
database in a tight loop and checks that no half batch is ever visible: in one statement (one
snapshot on either database) it reads the checkpoint and the events, and the events must lie
at or below the checkpoint block and be exactly as many as the chain's logs up to it, and the
checkpoint hash must be the chain's. At the end the mirror equals an uninterrupted run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.types import table_of
from indexer import indexes, models
from indexer.models import migrate
from ledger.jsonrpc import RpcClient
from tests.support.mirror import (
    ONE_PASS,
    History,
    index_once,
    logs_up_to,
    mirror_digest,
    outbox_and_events,
    reconcile_mirror,
    scenario_history,
    sqlite_url,
)

REPO = Path(__file__).resolve().parents[2]
SEED = 5
#: Kills per run; each restart costs a Python start-up (about two seconds).
KILLS = 3

_CHECKPOINT = table_of(models.Checkpoint)
_EVENTS = table_of(models.Event)
#: Checkpoint and events in one statement: one snapshot, on SQLite and on PostgreSQL.
STATE = select(
    select(_CHECKPOINT.c.block_number).where(_CHECKPOINT.c.id == 1).scalar_subquery(),
    select(_CHECKPOINT.c.block_hash).where(_CHECKPOINT.c.id == 1).scalar_subquery(),
    select(func.count()).select_from(_EVENTS).scalar_subquery(),
    select(func.max(_EVENTS.c.block_number)).scalar_subquery(),
)


@pytest.fixture(scope="module")
async def history() -> AsyncIterator[History]:
    async with scenario_history(SEED) as made:
        yield made


@dataclass
class Watcher:
    """What the reader saw: every checkpoint, and every state that was not a whole batch."""

    counts: list[int]
    hashes: list[str]
    reads: int = 0
    latest: int = -1
    seen: set[int] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    _target: int = -1
    _reached: asyncio.Event = field(default_factory=asyncio.Event)

    async def passed(self, target: int) -> None:
        """Until the reader has seen the checkpoint at ``target`` or above."""
        self._target = target
        self._reached = asyncio.Event()
        if self.latest >= target:
            return
        await self._reached.wait()

    async def watch(self, engine: AsyncEngine, stop: asyncio.Event) -> None:
        async with engine.connect() as conn:
            while not stop.is_set():
                block, block_hash, events, top = (await conn.execute(STATE)).one()
                await conn.rollback()  # the next read is a new snapshot
                self.reads += 1
                self.check(block, block_hash, events, top)
                await asyncio.sleep(0.002)

    def check(
        self, block: int | None, block_hash: str | None, events: int, top: int | None
    ) -> None:
        if block is None:
            if events:
                self.violations.append(f"{events} events before any checkpoint")
            return
        self.latest = block
        self.seen.add(block)
        if block >= self._target:
            self._reached.set()
        if top is not None and top > block:
            self.violations.append(f"an event of block {top} above the checkpoint {block}")
        if events != self.counts[block]:
            self.violations.append(
                f"{events} events at checkpoint {block}; the chain has {self.counts[block]}"
            )
        if block_hash != self.hashes[block]:
            self.violations.append(f"checkpoint {block} has hash {block_hash}")


async def _block_hashes(url: str, head: int) -> list[str]:
    async with RpcClient(url) as rpc:
        blocks = await rpc.batch(
            [("eth_getBlockByNumber", [hex(n), False]) for n in range(head + 1)]
        )
    return [b["hash"] for b in blocks]


async def _spawn(
    history: History, database_url: str, deployment: Path, log: IO[bytes], *options: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.index_child",
        history.url,
        database_url,
        str(deployment),
        *options,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )


async def test_sigkill_at_random_points_leaves_only_whole_batches(
    history: History, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(f"crash/{SEED}/{database_url.split(':')[0]}")
    counts = await logs_up_to(history.url, history.deployment, history.head)
    hashes = await _block_hashes(history.url, history.head)
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps(history.deployment.to_json()))
    first = history.deployment.start_block
    targets = sorted(rng.randint(first, history.head - 5) for _ in range(KILLS))

    engine = create_engine(database_url)
    await migrate(engine)  # so the reader can read from the start
    watcher = Watcher(counts, hashes)
    stop = asyncio.Event()
    reader = asyncio.create_task(watcher.watch(engine, stop))
    killed: list[tuple[int, int | None]] = []
    try:
        with (tmp_path / "children.log").open("ab") as log:
            for target in targets:
                child = await _spawn(history, database_url, deployment, log)
                try:
                    async with asyncio.timeout(60):
                        waiting = asyncio.create_task(watcher.passed(target))
                        exited = asyncio.create_task(child.wait())
                        await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
                        waiting.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await waiting
                        if child.returncode is None:
                            await asyncio.sleep(rng.uniform(0, 0.04))
                            child.send_signal(signal.SIGKILL)
                        await exited
                finally:
                    if child.returncode is None:
                        child.kill()
                        await child.wait()
                killed.append((target, child.returncode))
                assert not reader.done(), "the reader stopped"
            child = await _spawn(history, database_url, deployment, log)
            async with asyncio.timeout(60):
                assert await child.wait() == 0, (tmp_path / "children.log").read_text()
        await asyncio.sleep(0.02)  # one more read of the final state
    finally:
        stop.set()
        await reader
        await engine.dispose()

    assert watcher.violations == []
    assert [rc for _, rc in killed] == [-signal.SIGKILL] * KILLS, killed
    assert watcher.latest == history.head
    assert len(watcher.seen) > KILLS + 1
    assert watcher.reads > 100
    uninterrupted = sqlite_url(tmp_path, "uninterrupted")
    await index_once(history.config(uninterrupted, **ONE_PASS))
    assert await mirror_digest(database_url) == await mirror_digest(uninterrupted)
    report = await reconcile_mirror(history.config(database_url))
    assert report.ok, report.differences
    # The webhook outbox was written in the batches' transactions: exactly one entry per
    # mirrored business event, none lost to a kill, none twice.
    entries, events = await outbox_and_events(database_url)
    assert len(entries) == len(events) > 0
    assert {(b, i, h) for _, _, _, b, i, h, _, _ in entries} == events


async def test_indexes_left_out_by_a_killed_backfill_are_built_at_restart(
    history: History, database_url: str, tmp_path: Path
) -> None:
    """A backfill far behind drops the secondary indexes (indexer.indexes); killed before it
    caught up, it leaves them missing. The next indexer, started with the default threshold
    (so not deferring anything itself), finds them missing and builds them once caught up:
    the mirror ends with every index and equal to an uninterrupted run's."""
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps(history.deployment.to_json()))
    first = history.deployment.start_block
    target = first + (history.head - first) // 2
    engine = create_engine(database_url)
    await migrate(engine)
    watcher = Watcher(
        await logs_up_to(history.url, history.deployment, history.head),
        await _block_hashes(history.url, history.head),
    )
    stop = asyncio.Event()
    reader = asyncio.create_task(watcher.watch(engine, stop))
    try:
        with (tmp_path / "children.log").open("ab") as log:
            child = await _spawn(history, database_url, deployment, log, "--defer-indexes", "1")
            try:
                async with asyncio.timeout(60):
                    await watcher.passed(target)
                    child.send_signal(signal.SIGKILL)
                    assert await child.wait() == -signal.SIGKILL
            finally:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
            async with engine.connect() as conn:
                left_out = await indexes.missing(conn)
            assert sorted(left_out) == sorted(str(i.name) for i in indexes.SECONDARY)
            child = await _spawn(history, database_url, deployment, log)
            async with asyncio.timeout(60):
                assert await child.wait() == 0, (tmp_path / "children.log").read_text()
        async with engine.connect() as conn:
            assert await indexes.missing(conn) == []
    finally:
        stop.set()
        await reader
        await engine.dispose()
    assert watcher.violations == []
    assert watcher.latest == history.head
    built = (tmp_path / "children.log").read_text()
    assert "indexer.indexes_deferred" in built
    assert "indexer.indexes_built" in built
    uninterrupted = sqlite_url(tmp_path, "uninterrupted")
    await index_once(history.config(uninterrupted, **ONE_PASS))
    assert await mirror_digest(database_url) == await mirror_digest(uninterrupted)
