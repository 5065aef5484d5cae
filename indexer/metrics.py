"""Prometheus metrics of the indexer (served by ``tierflow index --metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HEAD_LAG_BLOCKS = Gauge(
    "tierflow_indexer_head_lag_blocks", "Blocks between the node's head and the checkpoint"
)
HEAD_LAG_SECONDS = Gauge(
    "tierflow_indexer_head_lag_seconds",
    "Seconds the oldest block not yet mirrored has been known to the indexer",
)
CHECKPOINT_BLOCK = Gauge("tierflow_indexer_checkpoint_block", "Last block wholly mirrored")
EVENTS = Counter("tierflow_indexer_events", "Events mirrored")
EVENTS_PER_SECOND = Gauge(
    "tierflow_indexer_events_per_second", "Events mirrored per second over the last batch"
)
REORGS = Counter("tierflow_indexer_reorgs", "Reorganisations rolled back")
REORG_DEPTH = Gauge("tierflow_indexer_last_reorg_depth", "Blocks rolled back by the last reorg")
RPC_ERRORS = Counter(
    "tierflow_indexer_rpc_errors", "Failed JSON-RPC attempts by method", ["method"]
)
BATCH_SECONDS = Histogram(
    "tierflow_indexer_batch_seconds",
    "Seconds to apply and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def count_rpc_error(method: str, _error: BaseException) -> None:
    RPC_ERRORS.labels(method=method).inc()
