"""``tierflow besu-config``: generate (or check) a Besu QBFT network configuration
(:mod:`ledger.network.besu`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ledger.network.besu.checks import verify_network
from ledger.network.besu.generate import generate_network
from ledger.network.besu.qbft import (
    DEFAULT_CHAIN_ID,
    DEFAULT_METRICS_PORT,
    DEFAULT_P2P_PORT,
    DEFAULT_RPC_HTTP_PORT,
    EvmFork,
)


def besu_command(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Network directory to write (or to --check).", show_default=False
        ),
    ],
    validators: Annotated[
        int, typer.Option(help="Number of QBFT validators (4 tolerate one faulty node).")
    ] = 4,
    chain_id: Annotated[int, typer.Option(help="EIP-155 chain id.")] = DEFAULT_CHAIN_ID,
    block_period: Annotated[int, typer.Option(help="Seconds between blocks.")] = 2,
    request_timeout: Annotated[
        int | None,
        typer.Option(help="QBFT round timeout in seconds (default: twice the block period)."),
    ] = None,
    account: Annotated[
        list[str] | None,
        typer.Option(
            "--account", "-a", help="Account allowed to transact, given a balance (repeatable)."
        ),
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option(help="IP address of each validator, in order, or one for all (repeatable)."),
    ] = None,
    p2p_port: Annotated[int, typer.Option(help="P2P port of node-1 (node-N: +N-1).")] = (
        DEFAULT_P2P_PORT
    ),
    rpc_port: Annotated[int, typer.Option(help="JSON-RPC port of node-1 (node-N: +N-1).")] = (
        DEFAULT_RPC_HTTP_PORT
    ),
    metrics_port: Annotated[int, typer.Option(help="Metrics port of node-1 (node-N: +N-1).")] = (
        DEFAULT_METRICS_PORT
    ),
    rpc_allowed_host: Annotated[
        list[str] | None,
        typer.Option(help="Extra Host header the RPC accepts, e.g. a load balancer name."),
    ] = None,
    evm_fork: Annotated[
        EvmFork, typer.Option(case_sensitive=False, help="Latest EVM milestone at genesis.")
    ] = EvmFork.CANCUN,
    deployer: Annotated[
        bool,
        typer.Option("--deployer/--no-deployer", help="Generate a deployer key in deployer/key."),
    ] = True,
    reuse_keys: Annotated[
        bool, typer.Option("--reuse-keys", help="Keep the private keys already in --out.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only verify the network already in --out.")
    ] = False,
) -> None:
    """Generate (or --check) the Besu QBFT network configuration for production."""
    console = Console()
    try:
        if check:
            verify_network(out_dir)
            console.print(f"[green]{out_dir}: Besu network configuration is consistent.[/green]")
            return
        layout = generate_network(
            out_dir,
            validators=validators,
            chain_id=chain_id,
            block_period_seconds=block_period,
            extra_accounts=account,
            request_timeout_seconds=request_timeout,
            evm_fork=evm_fork,
            hosts=host,
            base_p2p_port=p2p_port,
            base_rpc_http_port=rpc_port,
            base_metrics_port=metrics_port,
            rpc_allowed_hosts=rpc_allowed_host or (),
            with_deployer=deployer,
            reuse_keys=reuse_keys,
        )
        verify_network(layout.root)
    except (ValueError, FileExistsError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from exc

    table = Table(title=f"Besu QBFT network, chain id {layout.chain_id}, in {layout.root}")
    for column in ("node", "validator address", "enode", "JSON-RPC"):
        table.add_column(column, overflow="fold")
    for node in layout.validators:
        table.add_row(node.name, node.address, node.enode, node.rpc_url)
    console.print(table)
    console.print(
        f"{len(layout.validators)} validators tolerate {layout.fault_tolerance} faulty node(s)."
    )
    if len(layout.validators) < 4:
        console.print("[yellow]Production needs at least 4 validators (SPEC §5).[/yellow]")
    console.print(f"Accounts allowed to transact: {', '.join(layout.accounts)}")
    console.print(
        "Private keys are in node-*/data/key"
        + (" and deployer/key" if layout.deployer_key_file else "")
        + " (git-ignored): move each to its host, never commit them."
    )
    console.print(f"export TIERFLOW_RPC_URL={layout.rpc_urls[0]}")
    if layout.deployer_key_file is not None:
        console.print(f'export TIERFLOW_DEPLOYER_PRIVATE_KEY="$(cat {layout.deployer_key_file})"')
