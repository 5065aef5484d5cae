"""Deploy the contract suite to a JSON-RPC node, with a progress bar (``tierflow deploy``).

The deployer key comes from ``TIERFLOW_DEPLOYER_PRIVATE_KEY``; on the local development
chain (chain id 31337) anvil's first dev account is used when none is given. Re-running is
safe: :func:`ledger.suite.deploy_suite` keeps what is already deployed and wired.
"""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from ledger.anvil import dev_private_keys
from ledger.chain import close_web3, make_web3
from ledger.deployment import Deployment, DeploymentParameters, record_path
from ledger.errors import ConfigurationError
from ledger.nonces import FileNonceStore
from ledger.sender import TransactionSender
from ledger.suite import DEPLOY_STEPS, deploy_suite

LOCAL_CHAIN_ID = 31337


async def deploy(
    rpc_url: str,
    *,
    private_key: str | None,
    data_dir: Path,
    parameters: DeploymentParameters | None = None,
    console: Console | None = None,
) -> Deployment:
    """Deploy (or complete) the suite on ``rpc_url`` and record it; returns the deployment."""
    console = console or Console(stderr=True)
    w3 = make_web3(rpc_url)
    try:
        chain_id = int(await w3.eth.chain_id)
        if private_key is None:
            if chain_id != LOCAL_CHAIN_ID:
                raise ConfigurationError(
                    f"chain {chain_id} is not the local dev chain: "
                    "set TIERFLOW_DEPLOYER_PRIVATE_KEY"
                )
            private_key = dev_private_keys(count=1)[0]
        account = Account.from_key(private_key)
        sender = TransactionSender(w3, account, FileNonceStore(data_dir / "nonces"))
        with Progress(
            TextColumn("[bold]deploy"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} {task.description}"),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("", total=DEPLOY_STEPS)
            deployment = await deploy_suite(
                w3,
                sender,
                parameters,
                on_step=lambda name: progress.update(task, advance=1, description=name),
            )
        console.print(f"deployment recorded in {record_path(chain_id)}")
        return deployment
    finally:
        await close_web3(w3)
