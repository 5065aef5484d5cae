"""The indexer as a service: run it, or check the mirror, from :class:`IndexerSettings`
(``tierflow index`` and ``tierflow reconcile`` call these).

Both find the deployment of the node's chain in ``chain/deployments/<chainId>.json`` and the
database from ``TIERFLOW_DATABASE_URL`` (default: SQLite in the data directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from prometheus_client import start_http_server
from rich.console import Console
from rich.table import Table

from db.engine import create_engine
from indexer.config import IndexerConfig, IndexerSettings
from indexer.errors import IndexerError
from indexer.pipeline import Indexer, RunStats
from indexer.reconcile import ReconciliationReport, reconcile
from ledger.deployment import Deployment, load_deployment, record_path
from ledger.jsonrpc import RpcClient


async def find_deployment(rpc_url: str) -> Deployment:
    """The recorded deployment for the chain behind ``rpc_url``."""
    async with RpcClient(rpc_url) as rpc:
        chain_id = int(await rpc.call("eth_chainId", []), 16)
    deployment = load_deployment(chain_id)
    if deployment is None:
        raise IndexerError(
            f"no deployment recorded for chain {chain_id} ({record_path(chain_id)}): "
            "run `tierflow deploy` first"
        )
    return deployment


async def config_from(settings: IndexerSettings, wait_for_lock: bool = False) -> IndexerConfig:
    return IndexerConfig(
        rpc_url=settings.rpc_url,
        database_url=settings.database_url,
        deployment=await find_deployment(settings.rpc_url),
        confirmations=settings.confirmations,
        window=settings.reorg_window,
        poll_interval_s=settings.indexer_poll_s,
        busy_poll_s=settings.indexer_busy_poll_s,
        wait_for_lock=wait_for_lock,
        defer_indexes_blocks=settings.indexer_defer_indexes,
    )


async def index(
    config: IndexerConfig,
    *,
    once: bool,
    progress: bool = True,
    metrics_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> RunStats:
    """Run the indexer until caught up (``once``), SIGINT/SIGTERM, or ``stop``."""
    if metrics_port:
        try:
            start_http_server(metrics_port)
        except OSError as exc:
            raise IndexerError(
                f"metrics port {metrics_port} (TIERFLOW_METRICS_PORT) is in use "
                f"({exc.strerror}): choose another, or 0 for no metrics"
            ) from exc
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    async with Indexer.open(config) as indexer:
        return await indexer.run(once=once, progress=progress, stop=stop)


async def reconcile_mirror(settings: IndexerSettings) -> ReconciliationReport:
    engine = create_engine(settings.database_url)
    try:
        async with RpcClient(settings.rpc_url) as rpc:
            return await reconcile(engine, rpc)
    finally:
        await engine.dispose()


def print_report(report: ReconciliationReport, console: Console, limit: int = 200) -> None:
    summary = ", ".join(f"{n} {k}" for k, n in sorted(report.checked.items()))
    console.print(f"block {report.block_number} ({report.block_hash}): checked {summary}")
    if report.ok:
        console.print("[bold green]mirror equals the chain: no differences[/bold green]")
        return
    table = Table(title=f"{len(report.differences)} differences")
    for column in ("object", "key", "field", "mirror", "chain"):
        table.add_column(column)
    for d in report.differences[:limit]:
        table.add_row(d.kind, d.key, d.field, repr(d.mirror), repr(d.chain))
    console.print(table)
    if len(report.differences) > limit:
        console.print(f"… and {len(report.differences) - limit} more")
