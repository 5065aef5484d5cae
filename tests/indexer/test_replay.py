"""Replay equivalence (IX-1, IX-5) and repeated or overlapping delivery (IX-2).

Each history is :func:`bench.indexer_load.scenario` on a fresh anvil: a seeded multi-tier
story that emits every event the contracts can emit. A mirror built in many small steps while
the chain "grows" (a proxy reveals the blocks a few at a time) must equal a one-pass rebuild
from genesis and the contracts' views, with the same digest on SQLite and PostgreSQL. A mirror
must not change when the same blocks reach it again: a second run, a node that repeats logs
and answers logs outside the range asked for, the same fetched batch committed twice, a range
overlapping the checkpoint.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from db.engine import create_engine
from indexer.errors import InconsistentChain
from indexer.pipeline import Indexer
from indexer.store import read_checkpoint
from ledger.jsonrpc import RpcClient
from tests.support.faulty_node import FaultyNode
from tests.support.mirror import (
    ONE_PASS,
    TINY,
    Histories,
    index_growing,
    index_once,
    mirror_digest,
    pg_database,
    reconcile_mirror,
    sqlite_url,
)

SEEDS = (3, 11)
#: The seed of the history the delivery tests share.
SHARED = SEEDS[0]


@pytest.fixture(scope="module")
async def histories() -> AsyncIterator[Histories]:
    made = Histories()
    try:
        yield made
    finally:
        await made.close()


#: seed → the database built in small steps (the other one too is built in one pass).
STEPWISE = {SEEDS[0]: "sqlite", SEEDS[1]: "postgresql"}


@pytest.mark.postgres
@pytest.mark.parametrize("seed", SEEDS)
async def test_incremental_mirror_equals_rebuild_views_and_the_other_database(
    histories: Histories, seed: int, tmp_path: Path
) -> None:
    history = await histories.get(seed)
    blocks = history.head - history.deployment.start_block + 1
    digests: dict[str, str] = {}
    async with (
        pg_database() as pg_steps,
        pg_database() as pg_once,
        FaultyNode(history.url) as proxy,
    ):
        steps = sqlite_url(tmp_path, "steps") if STEPWISE[seed] == "sqlite" else pg_steps
        # window 16: batches near the head are journaled, older ones pruned.
        config = history.config(steps, window=16, **TINY)
        stats = await index_growing(config, proxy, history.head, random.Random(seed))
        assert stats.events == history.result.logs
        assert stats.batches >= blocks // 4, "not the many small batches meant"
        assert stats.reorgs == 0
        report = await reconcile_mirror(history.config(steps))
        assert report.ok, report.differences
        assert report.block_number == history.head
        assert report.checked["claim"] > 10
        digests[f"{STEPWISE[seed]}, in steps"] = await mirror_digest(steps)
        for name, url in (("sqlite", sqlite_url(tmp_path, "once")), ("postgresql", pg_once)):
            stats = await index_once(history.config(url, **ONE_PASS))
            assert stats.batches == 1
            digests[f"{name}, one pass"] = await mirror_digest(url)
    assert len(set(digests.values())) == 1, digests


async def test_reindexing_an_indexed_mirror_changes_nothing(
    histories: Histories, database_url: str, tmp_path: Path
) -> None:
    history = await histories.get(SHARED)
    config = history.config(database_url)
    first = await index_once(config)
    assert first.events == history.result.logs
    before = await mirror_digest(database_url)
    assert before == await histories.clean_digest(SHARED, tmp_path)
    again = await index_once(config, **TINY)
    assert (again.events, again.batches, again.blocks) == (0, 0, 0)
    assert await mirror_digest(database_url) == before


async def test_repeated_logs_and_logs_outside_the_range_change_nothing(
    histories: Histories, database_url: str, tmp_path: Path
) -> None:
    history = await histories.get(SHARED)
    async with FaultyNode(history.url) as proxy:
        proxy.widen_logs = 4
        proxy.duplicate_logs = True
        # The noise is real: a one-block query comes back with other blocks' logs, twice.
        middle = (history.deployment.start_block + history.head) // 2
        query = {"fromBlock": hex(middle), "toBlock": hex(middle)}
        async with RpcClient(proxy.url) as rpc:
            noisy = await rpc.call("eth_getLogs", [query])
        idents = [(log["blockHash"], log["logIndex"]) for log in noisy]
        assert len(set(idents)) < len(idents)
        assert {int(log["blockNumber"], 16) for log in noisy} - {middle}

        # Ranges of 2 to 8 blocks: every answer reaches past both ends of its range.
        config = history.config(database_url, rpc_url=proxy.url, initial_range=2, max_range=8)
        stats = await index_once(config)
    assert stats.events == history.result.logs
    assert await mirror_digest(database_url) == await histories.clean_digest(SHARED, tmp_path)


async def test_a_batch_committed_twice_or_overlapping_the_checkpoint_applies_once(
    histories: Histories, database_url: str, tmp_path: Path
) -> None:
    history = await histories.get(SHARED)
    # window 512: every fetched block's header comes with the range, the checkpoint's too.
    config = history.config(database_url, initial_range=20, window=512)
    engine = create_engine(database_url)
    try:
        async with Indexer.open(config) as indexer:
            head = await indexer.fetcher.head()
            first = await indexer.fetcher.fetch(indexer.checkpoint.block_number + 1, head, head)
            await indexer._commit(first)
            checkpoint = indexer.checkpoint
            assert checkpoint.block_number == first.end
            applied = await mirror_digest(database_url)
            events = indexer.stats.events
            assert events > 0

            await indexer._commit(first)  # the same batch again
            assert indexer.checkpoint == checkpoint
            assert indexer.stats.events == events
            assert indexer.stats.batches == 1
            assert await mirror_digest(database_url) == applied

            overlap = await indexer.fetcher.fetch(checkpoint.block_number - 10, head, head)
            assert overlap.start < checkpoint.block_number < overlap.end
            above = [ev for ev in overlap.events if ev.block_number > checkpoint.block_number]
            assert len(above) < len(overlap.events)
            # The same range as if it came from a fork that replaced the checkpoint's block:
            # it must not be trimmed and applied on top of the mirror.
            forged = replace(
                overlap,
                window_headers=[
                    replace(h, hash="0x" + "ee" * 32) if h.number == checkpoint.block_number else h
                    for h in overlap.window_headers
                ],
                events=[ev for ev in overlap.events if ev.block_number != checkpoint.block_number],
            )
            with pytest.raises(InconsistentChain, match="does not show its block hash"):
                await indexer._commit(forged)
            gap = await indexer.fetcher.fetch(checkpoint.block_number + 2, head, head)
            with pytest.raises(InconsistentChain, match="does not follow the checkpoint"):
                await indexer._commit(gap)
            assert indexer.checkpoint == checkpoint
            assert await mirror_digest(database_url) == applied
            async with engine.connect() as conn:
                assert await read_checkpoint(conn) == checkpoint

            await indexer._commit(overlap)  # only what lies above the checkpoint
            assert indexer.checkpoint.block_number == overlap.end
            assert indexer.stats.events == events + len(above)
            stats = await indexer.run(once=True)
    finally:
        await engine.dispose()
    assert stats.events == history.result.logs
    assert stats.checkpoint == history.head
    assert await mirror_digest(database_url) == await histories.clean_digest(SHARED, tmp_path)
    report = await reconcile_mirror(config)
    assert report.ok, report.differences
