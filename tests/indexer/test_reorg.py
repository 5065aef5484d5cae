"""Reorganisations (IX-4): rolled back to the common ancestor, re-indexed, nothing orphaned.

anvil's ``anvil_reorg(depth, [[tx, offset], …])`` replaces the last ``depth`` blocks with new
ones holding other transactions, while the indexer follows the head (confirmation depth 0).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench.cast import Actor, Platform
from db.engine import create_engine
from db.types import table_of
from indexer import models
from indexer.config import IndexerConfig
from indexer.errors import ReorgTooDeep
from indexer.pipeline import Indexer
from ledger.node import rpc
from tests.support.chain import Chain
from tests.support.mirror import (
    index_once,
    mirror_digest,
    outbox_and_events,
    reconcile_mirror,
)


def _split_request(p: Platform, holder: Actor, claim_id: int, to: Actor, value: int) -> Any:
    fn = p.claim_ledger.functions.split(claim_id, to.address, value, b"\0" * 32)
    return {
        "from": holder.address,
        "to": p.claim_ledger.address,
        "data": fn._encode_transaction_data(),
        "gas": hex(400_000),
    }


async def _reorg(p: Platform, depth: int, txs: list[tuple[Any, int]]) -> None:
    await rpc(p.w3, "anvil_reorg", depth, [[tx, offset] for tx, offset in txs])
    await p.resync_nonces()


async def _orphans(config: IndexerConfig, p: Platform) -> list[int]:
    """Blocks whose events in the mirror carry a hash the node's chain no longer has."""
    engine = create_engine(config.database_url)
    events = table_of(models.Event)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(events.c.block_number, events.c.block_hash))).all()
    await engine.dispose()
    orphans = []
    for number, block_hash in set(rows):
        block = await p.w3.eth.get_block(number)
        if block["hash"].to_0x_hex() != block_hash:
            orphans.append(number)
    return orphans


async def _caught_up(indexer: Indexer, p: Platform, within_s: float = 20.0) -> None:
    async with asyncio.timeout(within_s):
        while True:
            head = await p.w3.eth.get_block("latest")
            cp = indexer.checkpoint
            if cp.block_number == head["number"] and cp.block_hash == head["hash"].to_0x_hex():
                return
            await asyncio.sleep(0.05)


async def test_reorgs_of_depth_1_to_5_while_following(
    chain: Chain, index_config: IndexerConfig, tmp_path: Path
) -> None:
    p = chain.platform
    _payable, root, _due = await p.issue(p.core, p.sup1, 10_000_000)
    config = replace(index_config, poll_interval_s=0.05, window=16)
    stop = asyncio.Event()
    async with Indexer.open(config) as indexer:
        follower = asyncio.create_task(indexer.run(stop=stop))
        try:
            for depth in range(1, 6):
                # Blocks the reorg will orphan: splits to sup2, seen by the indexer first.
                for i in range(depth):
                    await p.split(p.sup1, root, p.sup2, 1_000 + depth * 10 + i)
                await _caught_up(indexer, p)
                # The new fork: other splits (to sup3), in the replaced blocks.
                replacement = [
                    (_split_request(p, p.sup1, root, p.sup3, 7_000 + depth * 10 + i), i)
                    for i in range(depth)
                ]
                await _reorg(p, depth, replacement)
                await p.split(p.sup1, root, p.sup4, 500 + depth)  # and the chain moves on
                await _caught_up(indexer, p)
                assert await _orphans(config, p) == []
        finally:
            stop.set()
            stats = await follower
    assert stats.reorgs >= 5
    report = await reconcile_mirror(config)
    assert report.ok, report.differences
    rebuilt = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    await index_once(config, database_url=rebuilt)
    assert await mirror_digest(config.database_url) == await mirror_digest(rebuilt)
    # No piece of the orphaned forks survived: sup2 holds nothing, sup3 holds the new splits.
    engine = create_engine(config.database_url)
    claims = table_of(models.Claim)
    async with engine.connect() as conn:
        holders = [r.holder for r in await conn.execute(select(claims.c.holder))]
    await engine.dispose()
    assert p.sup2.address not in holders
    assert holders.count(p.sup3.address) == sum(range(1, 6))
    await _outbox_follows_the_chain(config.database_url, orphaned_splits=sum(range(1, 6)))


async def _outbox_follows_the_chain(database_url: str, orphaned_splits: int) -> None:
    """Live outbox entries are exactly the mirrored events; every entry of an orphaned block
    is marked reverted and followed (later seq) by one retraction, same block and log."""
    entries, events = await outbox_and_events(database_url)
    live = {
        (b, i, h)
        for _, kind, _, b, i, h, reverted, _ in entries
        if kind == "event" and not reverted
    }
    assert live == events
    by_seq = {e[0]: e for e in entries}
    gone = [e for e in entries if e[1] == "event" and e[6]]
    retractions = [e for e in entries if e[1] == "reverted"]
    assert sorted(r[7] for r in retractions) == sorted(g[0] for g in gone)
    for r in retractions:
        original = by_seq[r[7]]
        assert r[0] > original[0]
        assert r[2] == original[2] + "Reverted"
        assert (r[3], r[4], r[5]) == (original[3], original[4], original[5])
        assert (original[3], original[4], original[5]) not in events
    assert sum(1 for g in gone if g[2] == "ClaimSplit") == orphaned_splits


async def test_reorg_at_the_same_height_is_caught_when_idle(
    chain: Chain, index_config: IndexerConfig
) -> None:
    """No new block after the reorg: the checkpoint's own hash gives it away."""
    p = chain.platform
    _payable, root, _due = await p.issue(p.core, p.sup1, 1_000_000)
    await p.split(p.sup1, root, p.sup2, 10)
    await index_once(index_config)
    await _reorg(p, 1, [(_split_request(p, p.sup1, root, p.sup3, 20), 0)])
    stats = await index_once(index_config)
    assert stats.reorgs == 1
    assert await _orphans(index_config, p) == []
    assert (await reconcile_mirror(index_config)).ok
    await _outbox_follows_the_chain(index_config.database_url, orphaned_splits=1)


async def test_reorg_deeper_than_the_window_stops_the_indexer(
    chain: Chain, index_config: IndexerConfig
) -> None:
    p = chain.platform
    _payable, root, _due = await p.issue(p.core, p.sup1, 1_000_000)
    config = replace(index_config, window=3)
    for i in range(6):
        await p.split(p.sup1, root, p.sup2, 10 + i)
    await index_once(config)
    before = await mirror_digest(config.database_url)
    await _reorg(p, 6, [(_split_request(p, p.sup1, root, p.sup3, 99), 0)])
    with pytest.raises(ReorgTooDeep, match="deeper than the kept window"):
        await index_once(config)
    assert await mirror_digest(config.database_url) == before  # stopped, nothing written


async def test_a_node_restarted_from_an_older_state_is_a_reorganisation(
    chain: Chain, index_config: IndexerConfig
) -> None:
    """A node that lost its last blocks (anvil killed between two state dumps and started
    again from the older file) and has mined others since is below the checkpoint on another
    branch: its head block is not the mirror's block at that height. That is no lagging node
    to wait for (``test_faults``: the same height, the same hash): the mirror rolls back to
    the common ancestor and follows the node's chain, instead of keeping the lost blocks
    until the node happens to mine past the checkpoint."""
    p = chain.platform
    _payable, root, _due = await p.issue(p.core, p.sup1, 1_000_000)
    snapshot = await rpc(p.w3, "evm_snapshot")
    for i in range(4):
        await p.split(p.sup1, root, p.sup2, 10 + i)
    await index_once(index_config)
    assert await rpc(p.w3, "evm_revert", snapshot) is True
    await p.resync_nonces()
    await p.split(p.sup1, root, p.sup3, 99)  # one block of the new branch, below the checkpoint
    async with asyncio.timeout(30):
        stats = await index_once(index_config)
    assert stats.reorgs == 1
    head = await p.w3.eth.get_block("latest")
    assert stats.checkpoint == head["number"]
    assert await _orphans(index_config, p) == []
    assert (await reconcile_mirror(index_config)).ok
    await _outbox_follows_the_chain(index_config.database_url, orphaned_splits=4)


async def test_a_node_that_comes_back_on_another_branch_is_followed_promptly(
    chain: Chain, index_config: IndexerConfig
) -> None:
    """While the node is behind the checkpoint the indexer looks again at least every
    ``NODE_BEHIND_MAX_WAIT_S`` (not the transient faults' backoff, up to 30 s): once the node
    mines a block of its own branch the mirror rolls back within seconds, and the heartbeat
    stays fresh meanwhile (the API would report a waiting indexer as stale)."""
    p = chain.platform
    _payable, root, _due = await p.issue(p.core, p.sup1, 1_000_000)
    snapshot = await rpc(p.w3, "evm_snapshot")
    for i in range(3):
        await p.split(p.sup1, root, p.sup2, 10 + i)
    stop = asyncio.Event()
    async with Indexer.open(index_config) as indexer:  # the default backoff (max 30 s)
        follower = asyncio.create_task(indexer.run(stop=stop))
        try:
            await _caught_up(indexer, p)
            assert await rpc(p.w3, "evm_revert", snapshot) is True
            await p.resync_nonces()
            await asyncio.sleep(8)  # the backoff would have grown past 6 s by now
            assert indexer.stats.retries >= 8
            await p.split(p.sup1, root, p.sup3, 99)
            await _caught_up(indexer, p, within_s=3.0)
        finally:
            stop.set()
            stats = await follower
    assert stats.reorgs == 1
    assert await _orphans(index_config, p) == []
