"""Deploying the contract suite: idempotent, recorded step by step, with a progress bar.

:func:`deploy_suite` deploys what is missing, wires the contracts together and records the
deployment after every step, so a re-run (or a run after a crash) finishes the job instead
of starting a second suite. :func:`deploy` does it for a JSON-RPC URL (``tierflow deploy``):
the deployer key comes from ``TIERFLOW_DEPLOYER_PRIVATE_KEY``; on the local development
chain (chain id 31337) anvil's first dev account is used when none is given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from ledger.anvil import dev_private_keys
from ledger.artifacts import ensure_artifacts, load_artifact
from ledger.bindings import Suite
from ledger.deployment import (
    SUITE,
    ContractRecord,
    Deployment,
    DeploymentParameters,
    load_deployment,
    record_path,
    save_deployment,
)
from ledger.errors import ConfigurationError
from ledger.node import Web3Client, close_web3, make_web3
from ledger.nonces import FileNonceStore
from ledger.roles import LEDGER_ROLE
from ledger.sender import TransactionSender

LOCAL_CHAIN_ID = 31337


async def _has_code(w3: Web3Client, address: str) -> bool:
    return len(await w3.eth.get_code(to_checksum_address(address))) > 0


async def _linked(
    w3: Web3Client, name: str, address: str, deployed: dict[str, ContractRecord]
) -> bool:
    """True when the contract at ``address`` was built against the recorded upstream ones."""
    if not await _has_code(w3, address):
        return False
    contract = w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name).abi)
    expected: dict[str, str] = {
        "InvoiceRegistry": "MemberRegistry",
        "ClaimLedger": "InvoiceRegistry",
        "FinancingDesk": "ClaimLedger",
    }
    upstream = expected.get(name)
    if upstream is None:
        return True
    getter = {"MemberRegistry": "MEMBERS", "InvoiceRegistry": "INVOICES", "ClaimLedger": "LEDGER"}[
        upstream
    ]
    try:
        linked = await getattr(contract.functions, getter)().call()
    except Exception:  # a different contract sits at that address
        return False
    return upstream in deployed and to_checksum_address(linked) == deployed[upstream].address


async def deploy_suite(
    w3: Web3Client,
    sender: TransactionSender,
    parameters: DeploymentParameters | None = None,
    *,
    directory: Any = None,
    record: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> Deployment:
    """Deploy and wire the suite, reusing what the record shows is already on chain.

    A contract is reused when its record exists, code is at the address and it was built
    against the recorded upstream contracts; once one is (re)deployed, everything after it is
    too. Each step is recorded as it completes. ``on_step`` is told each step's name (for a
    progress bar).
    """
    parameters = parameters or DeploymentParameters()
    ensure_artifacts()
    chain_id = int(await w3.eth.chain_id)
    previous = load_deployment(chain_id, directory) if record else None
    reuse = previous is not None and previous.parameters == parameters
    deployment = Deployment(chain_id=chain_id, parameters=parameters)
    admin = sender.address

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)

    for name in SUITE:
        rec = previous.contracts.get(name) if (previous is not None and reuse) else None
        if rec is not None and await _linked(w3, name, rec.address, deployment.contracts):
            deployment.contracts[name] = rec
            step(f"{name} (kept)")
            continue
        reuse = False
        args = _constructor_args(name, deployment, parameters, admin)
        artifact = load_artifact(name)
        address, receipt = await sender.deploy(artifact.abi, artifact.bytecode, *args)
        deployment.contracts[name] = ContractRecord(address, int(receipt["blockNumber"]))
        if record:
            save_deployment(deployment, directory)
        step(name)

    suite = Suite(w3, deployment)
    default_admin = await suite.members.functions.defaultAdmin().call()
    for contract_name in ("ClaimLedger", "FinancingDesk"):
        address = deployment.address(contract_name)
        if not await suite.members.functions.hasRole(LEDGER_ROLE, address).call():
            if to_checksum_address(default_admin) != admin:
                raise ConfigurationError(
                    f"wiring needs the default admin {default_admin}, deploying as {admin}"
                )
            await sender.transact(suite.members.functions.grantRole(LEDGER_ROLE, address))
        step(f"LEDGER_ROLE → {contract_name}")
    bound = await suite.claim_ledger.functions.financingDesk().call()
    if int(bound, 16) == 0:
        await sender.transact(
            suite.claim_ledger.functions.bindFinancingDesk(deployment.address("FinancingDesk"))
        )
    elif to_checksum_address(bound) != deployment.address("FinancingDesk"):
        raise ConfigurationError(f"ClaimLedger is bound to another financing desk ({bound})")
    step("bind FinancingDesk")
    if record:
        save_deployment(deployment, directory)
    return deployment


def _constructor_args(
    name: str, deployment: Deployment, parameters: DeploymentParameters, admin: str
) -> tuple[Any, ...]:
    if name == "MemberRegistry":
        return (parameters.admin_delay_s, admin)
    if name == "InvoiceRegistry":
        return (deployment.address("MemberRegistry"),)
    if name == "ClaimLedger":
        return (
            deployment.address("MemberRegistry"),
            deployment.address("InvoiceRegistry"),
            parameters.ledger_config(),
        )
    if name == "FinancingDesk":
        return (
            deployment.address("MemberRegistry"),
            deployment.address("ClaimLedger"),
            parameters.registration_required,
        )
    raise ConfigurationError(f"unknown contract {name}")


#: Steps :func:`deploy_suite` reports, for sizing a progress bar.
DEPLOY_STEPS = len(SUITE) + 3


async def deploy(
    rpc_url: str,
    *,
    private_key: str | None,
    data_dir: Path,
    parameters: DeploymentParameters | None = None,
    console: Console | None = None,
    directory: Path | None = None,
) -> Deployment:
    """Deploy (or complete) the suite on ``rpc_url`` and record it (in ``directory``, default
    ``$TIERFLOW_DEPLOYMENTS_DIR`` or chain/deployments); returns the deployment."""
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
                directory=directory,
                on_step=lambda name: progress.update(task, advance=1, description=name),
            )
        console.print(f"deployment recorded in {record_path(chain_id, directory)}")
        return deployment
    finally:
        await close_web3(w3)
