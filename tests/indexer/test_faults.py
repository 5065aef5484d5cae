"""Node faults through the whole indexer: it retries, waits, and never advances past what it
has not verified.

The indexer talks to a real anvil through :class:`tests.support.faulty_node.FaultyNode`. With
random transient faults (timeouts, 5xx, 429, truncated and malformed JSON, dropped
connections, and ``eth_getLogs`` refusing its range) it must finish with the same mirror as
against the node itself. Behind a node that lags below the checkpoint it must wait: no
rollback, no progress, retries counted; shown part of the new blocks, it must index exactly
those; once the lag is gone it must reach the head.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from indexer.config import IndexerConfig
from indexer.pipeline import Indexer
from tests.support.chain import Chain
from tests.support.faulty_node import Fault, FaultyNode
from tests.support.mirror import (
    ONE_PASS,
    Histories,
    approve_pending,
    index_once,
    mirror_digest,
    multi_tier,
    reconcile_mirror,
    sqlite_url,
    stored_checkpoint,
)

SEED = 9
TRANSIENT = [
    Fault.TIMEOUT,
    Fault.HTTP_500,
    Fault.HTTP_502,
    Fault.HTTP_429,
    Fault.TRUNCATED_JSON,
    Fault.MALFORMED_JSON,
    Fault.DROP,
]
#: Short enough to keep the tests fast; the proxy hangs a TIMEOUT longer than the client waits.
FAST: dict[str, Any] = {"rpc_timeout_s": 0.3, "max_backoff_s": 0.1, "poll_interval_s": 0.05}


@pytest.fixture(scope="module")
async def histories() -> AsyncIterator[Histories]:
    made = Histories()
    try:
        yield made
    finally:
        await made.close()


async def test_random_transient_faults_give_the_same_mirror(
    histories: Histories, database_url: str, tmp_path: Path
) -> None:
    history = await histories.get(SEED)
    async with FaultyNode(history.url) as proxy:
        proxy.timeout_delay_s = 1.0
        proxy.fail_next(2, Fault.RANGE_TOO_LARGE, method="eth_getLogs")
        proxy.fail_randomly(0.25, TRANSIENT, seed=SEED)
        # Ranges of 4 to 8 blocks: a few dozen batches, a hundred-odd requests to spoil.
        config = history.config(
            database_url, rpc_url=proxy.url, initial_range=8, max_range=8, **FAST
        )
        stats = await index_once(config)
        injected = proxy.faults_injected
    assert injected >= 15, f"only {injected} faults: the test proves little"
    assert stats.checkpoint == history.head
    assert stats.events == history.result.logs
    assert stats.reorgs == 0
    assert await mirror_digest(database_url) == await histories.clean_digest(SEED, tmp_path)
    report = await reconcile_mirror(history.config(database_url))
    assert report.ok, report.differences


async def _until(condition: Callable[[], bool], within_s: float = 20.0) -> None:
    """Poll ``condition()`` (the indexer's state, which has no event to wait on) until true."""
    async with asyncio.timeout(within_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_a_node_behind_the_checkpoint_is_waited_for(
    chain: Chain, index_config: IndexerConfig, tmp_path: Path
) -> None:
    p = chain.platform
    ids = await multi_tier(p)
    await index_once(index_config)  # against the node itself
    held = await stored_checkpoint(index_config.database_url)
    assert held is not None
    before = await mirror_digest(index_config.database_url)
    # The chain moves on, but the proxy shows a node three blocks below the checkpoint.
    await approve_pending(p, ids["pending"])
    _payable, root, _due = await p.issue(p.core, p.sup5, 5_000)
    await p.split(p.sup5, root, p.sup1, 1_000)
    head = int(await p.w3.eth.block_number)
    grown = head - held.block_number
    assert grown >= 2

    async with FaultyNode(chain.url) as proxy:
        proxy.set_head_lag(grown + 3)
        config = replace(index_config, rpc_url=proxy.url, **FAST)
        stop = asyncio.Event()
        async with Indexer.open(config) as indexer:
            follower = asyncio.create_task(indexer.run(stop=stop))
            try:
                await _until(lambda: indexer.stats.retries >= 5)
                assert indexer.checkpoint == held
                assert indexer.stats.reorgs == 0
                assert indexer.stats.events == 0
                assert await stored_checkpoint(config.database_url) == held
                assert await mirror_digest(config.database_url) == before

                # The node shows one block past the checkpoint: that one, and no further.
                proxy.set_head_lag(grown - 1)
                await _until(lambda: indexer.checkpoint.block_number > held.block_number)
                await asyncio.sleep(0.3)
                assert indexer.checkpoint.block_number == held.block_number + 1

                proxy.set_head_lag(0)
                await _until(lambda: indexer.checkpoint.block_number == head)
            finally:
                stop.set()
                stats = await follower
    assert stats.reorgs == 0
    latest = await p.w3.eth.get_block(head)
    assert indexer.checkpoint.block_hash == latest["hash"].to_0x_hex()
    rebuilt = sqlite_url(tmp_path, "rebuilt")
    await index_once(index_config, database_url=rebuilt, **ONE_PASS)
    assert await mirror_digest(index_config.database_url) == await mirror_digest(rebuilt)
    assert (await reconcile_mirror(index_config)).ok
