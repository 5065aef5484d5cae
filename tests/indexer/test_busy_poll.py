"""The indexer polls the head faster while blocks come in a burst (a node mining a block per
transaction), at its configured pace otherwise (a node mining by the clock, or an idle one)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from indexer import pipeline
from indexer.config import IndexerConfig
from indexer.pipeline import Indexer, idle_delay
from ledger.anvil import rpc_call
from tests.support.chain import Chain

CONFIG = IndexerConfig(
    rpc_url="http://unused",
    database_url="sqlite+aiosqlite://",
    deployment=None,  # type: ignore[arg-type]
)


def test_busy_poll_only_while_blocks_come_close_together() -> None:
    busy, slow = CONFIG.busy_poll_s, CONFIG.poll_interval_s
    assert busy < slow
    # blocks 50 ms apart, the last 10 ms ago: a burst
    assert idle_delay(CONFIG, head_gap=0.05, since_moved=0.01) == busy
    # a block a second (QBFT): never the busy poll, however recent the last block
    assert idle_delay(CONFIG, head_gap=1.0, since_moved=0.01) == slow
    # the burst is over: the last block came longer ago than the window
    assert idle_delay(CONFIG, head_gap=0.05, since_moved=CONFIG.busy_window_s + 0.01) == slow
    # nothing seen yet
    assert idle_delay(CONFIG, head_gap=float("inf"), since_moved=float("inf")) == slow
    # turned off, or a configured poll already faster than the busy one
    assert idle_delay(replace(CONFIG, busy_poll_s=0), 0.05, 0.01) == slow
    assert idle_delay(replace(CONFIG, poll_interval_s=0.01), 0.05, 0.01) == 0.01


async def test_a_running_indexer_polls_fast_through_a_burst_then_slows(
    chain: Chain, index_config: IndexerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = replace(index_config, poll_interval_s=0.2, busy_poll_s=0.01, busy_window_s=0.3)
    delays: list[tuple[float, float]] = []  # (when, the pause chosen once caught up)
    sleep = pipeline._sleep_or_stop

    async def recorded(seconds: float, stop: asyncio.Event | None) -> None:
        delays.append((time.monotonic(), seconds))
        await sleep(seconds, stop)

    monkeypatch.setattr(pipeline, "_sleep_or_stop", recorded)
    stop = asyncio.Event()
    async with Indexer.open(config) as indexer:
        running = asyncio.create_task(indexer.run(stop=stop))
        await asyncio.sleep(1.0)  # caught up, idle: the slow poll
        burst_from = time.monotonic()
        for _ in range(10):  # a block every 50 ms
            await asyncio.to_thread(rpc_call, chain.url, "evm_mine")
            await asyncio.sleep(0.05)
        burst_to = time.monotonic()
        head = int(await asyncio.to_thread(rpc_call, chain.url, "eth_blockNumber"), 16)
        await asyncio.sleep(1.0)  # the burst over
        stop.set()
        async with asyncio.timeout(10):
            await running
        assert indexer.checkpoint.block_number == head
    idle_before = [d for t, d in delays if t < burst_from]
    during = [d for t, d in delays if burst_from + 0.1 < t < burst_to]
    after = [d for t, d in delays if t > burst_to + config.busy_window_s + 0.1]
    assert idle_before
    assert set(idle_before) == {0.2}
    assert during
    assert during.count(0.01) >= len(during) // 2, during
    assert after
    assert set(after) == {0.2}, after
