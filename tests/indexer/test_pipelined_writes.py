"""A batch is written while the next one is applied in memory; a failed write loses nothing.

The indexer seals batch N (its values copied out), starts its transaction and applies batch
N + 1 to the same cached rows meanwhile. If N's transaction fails, the cache (which already
holds N + 1's changes) must be thrown away. The failure injected is one the indexer retries in the
same process (a transient one), so the retry runs on the same cache: it must read the
database again, and the mirror must end equal to a rebuild and to the contracts' views.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from indexer.config import IndexerConfig
from indexer.errors import InconsistentChain
from indexer.unit_of_work import SealedBatch
from tests.support.chain import Chain
from tests.support.mirror import index_once, mirror_digest, multi_tier, reconcile_mirror


async def test_a_failed_batch_write_leaves_no_trace(
    chain: Chain, index_config: IndexerConfig, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = chain.platform
    await multi_tier(p)
    await multi_tier(p)
    # One block a range: many batches, each written while the next is applied.
    stepwise = replace(index_config, initial_range=1, max_range=1, max_backoff_s=0.05)
    original = SealedBatch.write
    splits = 0

    async def failing(self: SealedBatch, conn: AsyncConnection) -> None:
        nonlocal splits
        await original(self, conn)  # the statements went out: the rollback must undo them
        if any(kind == "insert" and table == "claims" for kind, table, _ in self.writes):
            splits += 1
            if splits == 3:  # a batch creating pieces, the next one already applied
                raise InconsistentChain("injected after the statements of a batch")

    monkeypatch.setattr(SealedBatch, "write", failing)
    stats = await index_once(stepwise)
    assert splits > 3
    assert stats.retries == 1
    rebuilt = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    await index_once(index_config, database_url=rebuilt)
    assert await mirror_digest(index_config.database_url) == await mirror_digest(rebuilt)
    report = await reconcile_mirror(index_config)
    assert report.ok, report.differences


async def test_a_range_applied_in_pieces_mirrors_what_one_batch_does(
    chain: Chain, index_config: IndexerConfig, tmp_path: Any
) -> None:
    p = chain.platform
    await multi_tier(p)
    whole = {"initial_range": 10**6, "max_range": 10**6, "target_logs": 10**6}
    # The whole history is one fetched range, applied and written five events a batch.
    stats = await index_once(index_config, **whole, batch_events=5)
    assert stats.batches > 3
    assert stats.events > 5 * 3
    rebuilt = f"sqlite+aiosqlite:///{tmp_path / 'rebuilt.db'}"
    one = await index_once(index_config, database_url=rebuilt, **whole, batch_events=10**6)
    assert one.batches == 1
    assert (one.events, one.blocks) == (stats.events, stats.blocks)
    assert await mirror_digest(index_config.database_url) == await mirror_digest(rebuilt)
    report = await reconcile_mirror(index_config)
    assert report.ok, report.differences
