"""The indexer's settings for one run (built from :class:`tierflow.settings.TierflowSettings`
by the command line, directly by tests and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.deployment import Deployment


@dataclass(frozen=True)
class IndexerConfig:
    """What to index, where to, and how cautiously."""

    rpc_url: str
    database_url: str
    deployment: Deployment
    #: Blocks to stay behind the head (0 on anvil and QBFT, which have immediate finality;
    #: reorgs are detected and rolled back whatever this is).
    confirmations: int = 0
    #: Recent blocks whose headers and row images are kept: the deepest reorg that can be
    #: rolled back. A deeper one stops the indexer (ReorgTooDeep).
    window: int = 128
    #: Block ranges of eth_getLogs: first size, bounds, and the log count aimed at per range.
    initial_range: int = 16
    max_range: int = 50_000
    target_logs: int = 5_000
    #: Ranges fetched and decoded ahead of the one being written.
    prefetch_ranges: int = 3
    #: Seconds between polls of the head once caught up (an ``eth_blockNumber`` each: cheap
    #: on the platform's own node, and every write through the API waits for the mirror).
    poll_interval_s: float = 0.1
    rpc_timeout_s: float = 10.0
    #: Longest pause between retries of a failing node.
    max_backoff_s: float = 30.0
    #: A second indexer on the same database waits for the lock (True) or exits (False).
    wait_for_lock: bool = False
