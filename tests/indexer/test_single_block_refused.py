"""A node that refuses even one block's logs over all contracts is asked contract by contract.

Providers cap an ``eth_getLogs`` answer by its size; a single busy block can exceed it. The
fetcher halves its range down to one block and then, rather than stopping, asks for that
block's logs one contract at a time. The mirror must equal a clean run's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from indexer.config import IndexerConfig
from tests.support.chain import Chain
from tests.support.faulty_node import FaultyNode
from tests.support.mirror import index_once, mirror_digest, multi_tier


async def test_a_refused_single_block_is_fetched_per_contract(
    chain: Chain, index_config: IndexerConfig, tmp_path: Path
) -> None:
    await multi_tier(chain.platform)
    clean = f"sqlite+aiosqlite:///{tmp_path / 'clean.db'}"
    await index_once(index_config, database_url=clean)
    async with FaultyNode(chain.url) as node:
        # Every query over all contracts is refused; one over a single contract is served.
        node.refuse_logs_over_addresses = 2
        stats = await index_once(
            replace(index_config, rpc_url=node.url, initial_range=4, max_range=4)
        )
        assert node.refused_log_queries > 0
    assert stats.events > 0
    assert await mirror_digest(index_config.database_url) == await mirror_digest(clean)
