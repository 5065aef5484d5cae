"""The indexer's settings: the process's (:class:`IndexerSettings`, from ``TIERFLOW_*``) and
one run's (:class:`IndexerConfig`, built from them by :mod:`indexer.service`, directly by
tests and benchmarks).

==================================  =====================================================
``TIERFLOW_CONFIRMATIONS``          blocks the indexer stays behind the head (default 0)
``TIERFLOW_REORG_WINDOW``           deepest reorganisation rolled back (default 128)
``TIERFLOW_INDEXER_POLL_S``         seconds between polls of the head once caught up
                                    (default 0.1: a write through the API answers once the
                                    mirror shows it, so this is latency every write pays)
``TIERFLOW_INDEXER_BUSY_POLL_S``    seconds between polls while blocks come less than half
                                    a second apart (default 0.02; 0: never faster than the
                                    poll above): a node mining a block per transaction
``TIERFLOW_METRICS_PORT``           Prometheus port of ``tierflow index`` (default 9108, 0: off)
``TIERFLOW_INDEXER_DEFER_INDEXES``  blocks behind the head past which a backfill drops the
                                    mirror's secondary indexes and builds them once caught
                                    up (default 10,000; 0: never; :mod:`indexer.indexes`)
==================================  =====================================================

plus the node's (:class:`ledger.config.NodeSettings`) and the database's
(:class:`db.config.DatabaseSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from db.config import DatabaseSettings
from ledger.config import NodeSettings
from ledger.deployment import Deployment


class IndexerSettings(NodeSettings, DatabaseSettings):
    """The indexer process's settings; ``TIERFLOW_<FIELD>``."""

    confirmations: int = Field(
        default=0, ge=0, description="blocks the indexer stays behind the head"
    )
    reorg_window: int = Field(
        default=128, ge=2, description="deepest reorganisation rolled back, in blocks"
    )
    indexer_poll_s: float = Field(
        default=0.1, gt=0, le=60, description="seconds between polls of the head once caught up"
    )
    indexer_busy_poll_s: float = Field(
        default=0.02,
        ge=0,
        le=60,
        description="seconds between polls while blocks come less than half a second apart "
        "(a node mining a block per transaction); 0: always TIERFLOW_INDEXER_POLL_S",
    )
    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="Prometheus port of `tierflow index` (0: off)"
    )
    indexer_defer_indexes: int = Field(
        default=10_000,
        ge=0,
        description="blocks behind the head past which the indexer drops the mirror's secondary "
        "indexes for its backfill and builds them once caught up (0: never)",
    )


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
    #: Events a batch (one transaction) holds at most: a fetched range with more is applied
    #: and written in pieces, split between blocks, so the database is writing one piece
    #: while the next is applied (a range of 5,000 logs in one batch left the database
    #: idle until all of it was applied, and the indexer idle while it was written last).
    batch_events: int = 1_000
    #: Seconds between polls of the head once caught up (an ``eth_blockNumber`` each: cheap
    #: on the platform's own node, and every write through the API waits for the mirror).
    poll_interval_s: float = 0.1
    #: Seconds between polls while blocks come in a burst (0: never faster than
    #: ``poll_interval_s``): a node that mines a block per transaction has the next block
    #: soon, and a write through the API waits on average half a poll for the mirror.
    busy_poll_s: float = 0.02
    #: Blocks less than this far apart make a burst; the busy poll ends this long after the
    #: last block seen.
    busy_window_s: float = 0.5
    rpc_timeout_s: float = 10.0
    #: Longest pause between retries of a failing node.
    max_backoff_s: float = 30.0
    #: A second indexer on the same database waits for the lock (True) or exits (False).
    wait_for_lock: bool = False
    #: A pass that starts more than this many blocks behind the head drops the mirror's
    #: secondary indexes and builds them once caught up (0: never; :mod:`indexer.indexes`).
    defer_indexes_blocks: int = 10_000
    #: Bulk inserts by ``COPY`` on PostgreSQL (False: multi-row statements, as on SQLite;
    #: the benchmark's "before").
    copy: bool = True
