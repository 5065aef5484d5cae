"""The ``tierflow`` command line (typer, rich output).

Commands so far:

- ``tierflow run``: everything on the embedded defaults — the local chain (state kept on
  disk) with the suite deployed on it — until Ctrl-C or SIGTERM.
- ``tierflow chain [--port N] [--data-dir DIR] [--fresh]``: run the local anvil node in the
  foreground with the settings of ``chain/anvil.json``, its state in
  ``<data_dir>/chain/anvil-state.json`` (``--fresh`` discards it first), until Ctrl-C or
  SIGTERM, then stop it cleanly so the state is written.
- ``tierflow deploy [--rpc-url URL]``: deploy (or complete) the suite on any JSON-RPC node.
- ``tierflow besu-config --out DIR``: generate a Besu QBFT network configuration.
- ``tierflow index [--once] [--wait]``: mirror the chain into SQL (follow the head, or catch
  up and exit); Prometheus metrics on ``$TIERFLOW_METRICS_PORT``.
- ``tierflow serve``: the HTTP API (FastAPI under uvicorn).
- ``tierflow webhooks``: the webhook dispatcher (the mirror's outbox → members' endpoints);
  Prometheus metrics on ``$TIERFLOW_WEBHOOKS_METRICS_PORT``.
- ``tierflow reconcile``: compare the mirror with the contracts' views at its checkpoint;
  exit status 1 when anything differs.
- ``tierflow audit-verify``: walk the API's audit log in the database and compare it with its
  anchors on chain (no API needed); exit status 1 when it was changed, 2 when it cannot check.
- ``tierflow demo [--base-url URL] [--operator-key KEY] [--rpc-url URL]``: a full scenario
  through the HTTP API of a running platform (:mod:`tierflow.demo`).
- ``tierflow signer --policy FILE --api-key KEY (--keyfile F | --hsm --hsm-token T --hsm-key K)``:
  a ``self`` member's own signer of its open intents (:mod:`tierflow.signer`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.table import Table

from backend.config import ApiSettings
from indexer import service as indexing
from indexer.config import IndexerSettings
from indexer.errors import IndexerError
from indexer.pipeline import RunStats
from ledger.anvil import STATE_FILE, AnvilConfig, AnvilProcess
from ledger.config import NodeSettings
from ledger.deploy import deploy as deploy_suite_to
from ledger.deployment import Deployment
from ledger.errors import LedgerError
from ledger.logs import configure_logging
from tierflow import settings as settings_list
from tierflow.bench import bench_command
from tierflow.besu import besu_command
from tierflow.demo import demo_command
from tierflow.signer import signer_command
from tierflow.supervisor import run_instance

app = typer.Typer(
    name="tierflow",
    help="Tierflow: supply-chain finance on a permissioned EVM ledger.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
log = structlog.get_logger("tierflow.cli")


def _version(value: bool) -> None:
    if value:
        print(f"tierflow {version()}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Tierflow: supply-chain finance on a permissioned EVM ledger."""
    node = NodeSettings()
    configure_logging(
        node.log_level, None if node.log_format is None else node.log_format == "json"
    )


def version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("tierflow")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


@app.command("settings")
def settings_command(
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the README's table instead.")
    ] = False,
) -> None:
    """Print every TIERFLOW_* setting: its value here (secrets hidden), default and meaning."""
    if as_markdown:
        print(settings_list.markdown(), end="")
        return
    values = settings_list.current_values()
    table = Table(title="TIERFLOW_* settings")
    table.add_column("variable", no_wrap=True)
    table.add_column("value here")
    table.add_column("default")
    table.add_column("what it sets")
    for s in settings_list.settings():
        here = values.get(s.variable) or os.environ.get(s.variable) or s.default
        table.add_row(s.variable, here, s.default, s.description)
    console = Console()
    if not console.is_terminal:  # piped or captured: no terminal width to fit, keep it whole
        console = Console(width=220)
    console.print(table)


app.command("bench")(bench_command)
app.command("besu-config")(besu_command)
app.command("demo")(demo_command)
app.command("signer")(signer_command)


def _deploy(settings: NodeSettings, rpc_url: str) -> Deployment:
    key = settings.deployer_private_key
    try:
        return asyncio.run(
            deploy_suite_to(
                rpc_url,
                private_key=key.get_secret_value() if key is not None else None,
                data_dir=settings.data_dir,
                console=console,
            )
        )
    except LedgerError as exc:
        console.print(f"[red]deploy failed:[/red] {exc}")
        raise typer.Exit(1) from exc


def _print_deployment(deployment: Deployment) -> None:
    table = Table(title=f"deployment on chain {deployment.chain_id}")
    table.add_column("contract")
    table.add_column("address")
    table.add_column("start block", justify="right")
    for name, rec in deployment.contracts.items():
        table.add_row(name, rec.address, str(rec.start_block))
    console.print(table)


@app.command()
def deploy(
    rpc_url: Annotated[
        str | None, typer.Option(help="JSON-RPC URL (default: $TIERFLOW_RPC_URL).")
    ] = None,
) -> None:
    """Deploy (or complete) the contract suite and record chain/deployments/<chainId>.json."""
    settings = NodeSettings()
    _print_deployment(_deploy(settings, rpc_url or settings.rpc_url))


@app.command()
def run(
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start anew: wipe this data directory's chain, nonces, deployment and database.",
        ),
    ] = False,
    chain_only: Annotated[
        bool, typer.Option("--chain-only", help="Only the chain and the deployment.")
    ] = False,
) -> None:
    """Run the platform of one data directory ($TIERFLOW_DATA_DIR): the local chain with the
    suite deployed, the indexer mirroring it into SQLite, and the HTTP API (Ctrl-C stops them
    all)."""
    code = run_instance(fresh, chain_only, console)
    if code:
        raise typer.Exit(code)


@app.command()
def chain(
    port: Annotated[
        int | None,
        typer.Option(
            help="JSON-RPC port (default: $TIERFLOW_CHAIN_PORT, else chain/anvil.json's)."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Data directory (default: $TIERFLOW_DATA_DIR or ./data)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Discard the saved chain state and start anew.")
    ] = False,
) -> None:
    """Run the local anvil chain in the foreground until Ctrl-C or SIGTERM."""
    settings = NodeSettings() if data_dir is None else NodeSettings(data_dir=data_dir)
    config = AnvilConfig.load()
    port = port or settings.chain_port
    if port is not None:
        config = config.replace(port=port)
    _run_chain(settings, config, fresh)


def _run_chain(
    settings: NodeSettings,
    config: AnvilConfig,
    fresh: bool,
    then: Callable[[str], None] | None = None,
    children: list[subprocess.Popen[bytes]] | None = None,
) -> None:
    """Start anvil with its state on disk, run ``then(url)``, wait for a signal, stop."""
    state = settings.chain_dir / STATE_FILE
    if fresh and state.exists():
        state.unlink()
        console.print(f"discarded the saved state {state}")
    node = AnvilProcess(config, state_path=state, log_path=settings.chain_dir / "anvil.log")

    existed = state.exists()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            node.start()
        except LedgerError as exc:
            console.print(f"[red]could not start anvil:[/red] {exc}")
            raise typer.Exit(1) from exc
        table = Table(show_header=False, box=None)
        table.add_row("RPC URL", node.url)
        table.add_row("chain id", str(config.chain_id))
        table.add_row(
            "accounts", f"{config.accounts} funded, from the mnemonic in chain/anvil.json"
        )
        table.add_row(
            "mining", "automine" if config.block_time is None else f"{config.block_time}s"
        )
        table.add_row("state", f"{state} ({'loaded' if existed else 'new'})")
        table.add_row("log", str(node.log_path))
        console.print("[bold green]local chain running[/bold green] (Ctrl-C to stop)")
        console.print(table)
        if then is not None:
            then(node.url)
        while not stop.wait(0.5):
            if not node.running:
                console.print("[red]anvil exited unexpectedly[/red]; see " + str(node.log_path))
                raise typer.Exit(1)
            for child in children or ():
                if child.poll() is not None:
                    console.print(
                        f"[red]a platform process exited (status {child.returncode})[/red]; "
                        f"see {settings.data_dir / 'logs'}"
                    )
                    raise typer.Exit(1)
    finally:
        code = node.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(f"anvil stopped (status {code}); state saved to {state}")


@app.command("index")
def index_command(
    once: Annotated[
        bool, typer.Option("--once", help="Catch up with the head, then exit.")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="If another indexer holds the database, wait for it.")
    ] = False,
    rpc_url: Annotated[str | None, typer.Option(help="JSON-RPC URL.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (0: off).")] = None,
) -> None:
    """Mirror the chain into SQL: follow the head, or catch up and exit with --once."""
    overrides: dict[str, Any] = {
        "rpc_url": rpc_url,
        "database_url": database_url,
        "metrics_port": metrics_port,
    }
    settings = IndexerSettings(**{k: v for k, v in overrides.items() if v is not None})

    async def go() -> RunStats:
        config = await indexing.config_from(settings, wait_for_lock=wait)
        return await indexing.index(
            config, once=once, progress=terminal, metrics_port=settings.metrics_port or None
        )

    # A progress bar on a terminal; in a log file (under `tierflow run`), JSON lines only.
    terminal = sys.stderr.isatty()
    try:
        stats = asyncio.run(go())
    except (IndexerError, LedgerError) as exc:
        if terminal:
            console.print(f"[red]indexer stopped:[/red] {exc}")
        else:
            log.error("indexer.stopped", reason=str(exc))
        raise typer.Exit(2) from exc
    if terminal:
        console.print(
            f"indexed {stats.events:,} events in {stats.blocks:,} blocks "
            f"({stats.events_per_second:,.0f} events/s); checkpoint block {stats.checkpoint}; "
            f"{stats.reorgs} reorganisations rolled back"
        )
    else:
        log.info(
            "indexer.finished",
            events=stats.events,
            blocks=stats.blocks,
            checkpoint=stats.checkpoint,
            reorgs=stats.reorgs,
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address ($TIERFLOW_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port ($TIERFLOW_API_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes ($TIERFLOW_API_WORKERS).")
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); the indexer runs as its own process."""
    import uvicorn

    settings = ApiSettings()
    uvicorn.run(
        "backend.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        # A spawned worker first re-imports this CLI (seconds of imports) before it answers
        # the supervisor's ping: under load uvicorn's 5 s default killed it while booting,
        # and its replacement too, for ever (the API never came up).
        timeout_worker_healthcheck=settings.api_worker_ping_s,
        log_level=settings.log_level,
        # The API writes its own access log (one JSON line per request, with its request id:
        # backend/api/middleware.py); uvicorn's loggers go through ours (log_config=None).
        access_log=False,
        log_config=None,
        proxy_headers=True,
    )


@app.command("webhooks")
def webhooks_command() -> None:
    """Deliver the mirror's events to members' webhooks (several may run at once)."""
    from backend.webhooks.dispatcher import run_dispatcher

    stop = asyncio.Event()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_dispatcher(stop=stop)

    try:
        asyncio.run(go())
    except (TimeoutError, ValueError) as exc:
        console.print(f"[red]webhooks stopped:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def reconcile(
    rpc_url: Annotated[str | None, typer.Option(help="JSON-RPC URL.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Compare every mirrored object with the contracts' views; exit 1 on any difference."""
    overrides: dict[str, Any] = {"rpc_url": rpc_url, "database_url": database_url}
    settings = IndexerSettings(**{k: v for k, v in overrides.items() if v is not None})
    try:
        report = asyncio.run(indexing.reconcile_mirror(settings))
    except (IndexerError, LedgerError) as exc:
        console.print(f"[red]reconciliation failed:[/red] {exc}")
        raise typer.Exit(2) from exc
    indexing.print_report(report, Console())
    if not report.ok:
        raise typer.Exit(1)


@app.command("audit-verify")
def audit_verify(
    rpc_url: Annotated[str | None, typer.Option(help="JSON-RPC URL ($TIERFLOW_RPC_URL).")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="The API's database ($TIERFLOW_DATABASE_URL).")
    ] = None,
) -> None:
    """Verify the audit log from the database and the chain alone: its hash chain, and every
    anchor on chain against it. Exit 0 intact, 1 changed, 2 could not check."""
    from tierflow.audit_verify import run_audit_verify

    overrides: dict[str, Any] = {"rpc_url": rpc_url, "database_url": database_url}
    settings = ApiSettings(**{k: v for k, v in overrides.items() if v is not None})
    raise typer.Exit(run_audit_verify(settings, Console()))


if __name__ == "__main__":
    app()
