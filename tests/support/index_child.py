"""An indexer in a process of its own, for tests that kill it (``SIGKILL``) and restart it.

::

    python -m tests.support.index_child RPC_URL DATABASE_URL DEPLOYMENT_JSON \\
        [--initial-range N] [--max-range N] [--target-logs N] [--defer-indexes N] [--no-wait]

Runs :class:`indexer.pipeline.Indexer` until caught up with the head and exits 0 (2 on an
:class:`~indexer.errors.IndexerError`, its message on stderr). Unlike ``tierflow index`` it
takes the deployment record from a file and the block ranges from the command line, so a
test can make many small batches and land its kills inside them. It waits for the writer
lock by default: a killed predecessor's PostgreSQL session can outlive it by a moment.
Logs go to stderr as JSON lines at ``info`` (the per-batch ``debug`` lines are left out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from indexer.config import IndexerConfig
from indexer.errors import IndexerError
from indexer.pipeline import Indexer
from ledger.deployment import Deployment
from ledger.errors import LedgerError
from ledger.logs import configure_logging


def parse(argv: list[str]) -> IndexerConfig:
    parser = argparse.ArgumentParser(prog="index_child")
    parser.add_argument("rpc_url")
    parser.add_argument("database_url")
    parser.add_argument("deployment", type=Path)
    parser.add_argument("--initial-range", type=int, default=1)
    parser.add_argument("--max-range", type=int, default=3)
    parser.add_argument("--target-logs", type=int, default=50)
    parser.add_argument(
        "--defer-indexes",
        type=int,
        default=IndexerConfig.defer_indexes_blocks,
        help="blocks behind past which the secondary indexes wait until caught up",
    )
    parser.add_argument("--no-wait", action="store_true")
    args = parser.parse_args(argv)
    return IndexerConfig(
        rpc_url=args.rpc_url,
        database_url=args.database_url,
        deployment=Deployment.from_json(json.loads(args.deployment.read_text())),
        initial_range=args.initial_range,
        max_range=args.max_range,
        target_logs=args.target_logs,
        poll_interval_s=0.05,
        rpc_timeout_s=5.0,
        max_backoff_s=0.2,
        wait_for_lock=not args.no_wait,
        defer_indexes_blocks=args.defer_indexes,
    )


async def run(config: IndexerConfig) -> int:
    async with Indexer.open(config) as indexer:
        stats = await indexer.run(once=True)
    print(f"indexed {stats.events} events up to block {stats.checkpoint}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    configure_logging("info", json=True)
    config = parse(argv)
    try:
        return asyncio.run(run(config))
    except (IndexerError, LedgerError) as exc:
        print(f"indexer stopped: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
