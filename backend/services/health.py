"""How the platform is, as ``/health`` and ``/metrics`` tell it: the node, the mirror, the
indexer (AP-4: the answer is the truth, and it comes promptly).

- ``down`` (HTTP 503): the node does not answer within the probe's timeout, or the database
  does not; writes cannot be served.
- ``degraded`` (HTTP 200, reads are served): the indexer's heartbeat (``indexer_status``) is
  older than ``indexer_stale_s`` or missing, the mirror is more than ``max_lag_blocks`` behind
  the node, or the node's head is *below* the mirrored block (a node restarted behind: its
  answers do not yet include what the mirror shows).
- ``ok``: none of those.

``reasons`` lists each finding as a stable word: ``node_unreachable``,
``database_unreachable``, ``indexer_not_running``, ``indexer_stale``, ``mirror_lagging``,
``node_behind_mirror``, ``mirror_empty``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from indexer import metrics as indexer_metrics
from indexer import models as mirror
from ledger.node import Web3Client

INDEXER_HEARTBEAT_AGE = Gauge(
    "tierflow_api_indexer_heartbeat_age_seconds",
    "Seconds since the indexer's last heartbeat, as the API reads it (-1: never)",
)
NODE_HEAD = Gauge("tierflow_api_node_head_block", "The node's head as the API sees it (-1: down)")


@dataclass
class Health:
    status: str
    chain_id: int
    head_block: int | None
    mirrored_block: int | None
    lag_blocks: int | None
    indexer_heartbeat_age_s: float | None
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def _head(w3: Web3Client, timeout_s: float) -> int | None:
    # asyncio.timeout, not wait_for (here and below): Python 3.11's wait_for drops a
    # cancellation that comes as what it waits for ends.
    try:
        async with asyncio.timeout(timeout_s):
            head = int(await w3.eth.block_number)
    except Exception:
        return None
    return head


async def _mirror(engine: AsyncEngine, timeout_s: float) -> tuple[bool, int | None, Any]:
    async def read() -> tuple[int | None, Any]:
        async with engine.connect() as conn:
            checkpoint = (
                await conn.execute(select(mirror.Checkpoint.block_number))
            ).scalar_one_or_none()
            status = (await conn.execute(select(mirror.IndexerStatus))).first()
        return checkpoint, status

    try:
        async with asyncio.timeout(timeout_s):
            checkpoint, status = await read()
    except Exception:
        return False, None, None
    return True, checkpoint, status


async def probe(
    w3: Web3Client,
    engine: AsyncEngine,
    chain_id: int,
    *,
    timeout_s: float = 2.0,
    indexer_stale_s: float = 10.0,
    max_lag_blocks: int = 10,
) -> Health:
    """Ask the node and the database (both at once, each within ``timeout_s``)."""
    head, (db_ok, mirrored, status) = await asyncio.gather(
        _head(w3, timeout_s), _mirror(engine, timeout_s)
    )
    reasons: list[str] = []
    if head is None:
        reasons.append("node_unreachable")
    if not db_ok:
        reasons.append("database_unreachable")
    age: float | None = None
    if db_ok:
        if status is None:
            reasons.append("indexer_not_running")
        else:
            age = max(0.0, round(time.time() - status.heartbeat_ms / 1000, 3))
            if age > indexer_stale_s:
                reasons.append("indexer_stale")
        if mirrored is None:
            reasons.append("mirror_empty")
    lag: int | None = None
    if head is not None and mirrored is not None:
        lag = head - mirrored
        if lag < 0:
            reasons.append("node_behind_mirror")
        elif lag > max_lag_blocks:
            reasons.append("mirror_lagging")
    down = head is None or not db_ok
    health = Health(
        "down" if down else "degraded" if reasons else "ok",
        chain_id,
        head,
        mirrored,
        None if lag is None else max(0, lag),
        age,
        reasons,
    )
    _gauges(health, status)
    return health


def _gauges(health: Health, status: Any) -> None:
    """The indexer's gauges in this process's registry, from what the indexer wrote (they
    would otherwise stay 0 here: the indexer is another process)."""
    NODE_HEAD.set(-1 if health.head_block is None else health.head_block)
    INDEXER_HEARTBEAT_AGE.set(
        -1 if health.indexer_heartbeat_age_s is None else health.indexer_heartbeat_age_s
    )
    if health.mirrored_block is not None:
        indexer_metrics.CHECKPOINT_BLOCK.set(health.mirrored_block)
    if health.lag_blocks is not None:
        indexer_metrics.HEAD_LAG_BLOCKS.set(health.lag_blocks)
