"""Deploying the contract suite: idempotent, recorded step by step, with a progress bar.

:func:`deploy_suite` deploys the five contracts (the forwarder first) with their addresses
fixed at deployment, or keeps the recorded suite when it is intact; a re-run after a crash
deploys a whole new suite rather than wiring one up half-way. :func:`deploy` does it for a
JSON-RPC URL (``tierflow deploy``):
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
from web3.types import Nonce
from web3.utils.address import get_create_address

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
from ledger.errors import ConfigurationError, ContractRevert
from ledger.node import Web3Client, close_web3, make_web3
from ledger.nonces import FileNonceStore
from ledger.sender import TransactionSender

LOCAL_CHAIN_ID = 31337


async def _has_code(w3: Web3Client, address: str) -> bool:
    return len(await w3.eth.get_code(to_checksum_address(address))) > 0


def predict_addresses(deployer: str, first_nonce: int) -> dict[str, str]:
    """The addresses the suite gets when ``deployer`` creates it from ``first_nonce`` on,
    one contract per nonce in :data:`SUITE` order (CREATE: keccak(rlp([deployer, nonce])))."""
    return {
        name: to_checksum_address(
            get_create_address(to_checksum_address(deployer), Nonce(first_nonce + i))
        )
        for i, name in enumerate(SUITE)
    }


def platform_tuple(addresses: dict[str, str]) -> tuple[str, str, str, str, str]:
    """The ``Platform`` struct every constructor takes (forwarder, members, invoices, ledger,
    desk)."""
    return (
        addresses["TierflowForwarder"],
        addresses["MemberRegistry"],
        addresses["InvoiceRegistry"],
        addresses["ClaimLedger"],
        addresses["FinancingDesk"],
    )


async def _intact(w3: Web3Client, deployment: Deployment) -> bool:
    """True when every recorded contract has code and the suite is wired to itself: the
    forwarder's targets, each contract's trusted forwarder and its fixed platform addresses
    are the recorded ones."""
    if not deployment.complete:
        return False
    for name in SUITE:
        if not await _has_code(w3, deployment.address(name)):
            return False
    suite = Suite(w3, deployment)
    a = {name: deployment.address(name) for name in SUITE}
    try:
        found = {
            "forwarder targets": [
                await suite.forwarder.functions.MEMBERS().call(),
                await suite.forwarder.functions.INVOICES().call(),
                await suite.forwarder.functions.LEDGER().call(),
                await suite.forwarder.functions.DESK().call(),
            ],
            "trusted forwarders": [
                await c.functions.trustedForwarder().call()
                for c in (suite.members, suite.invoices, suite.claim_ledger, suite.desk)
            ],
            "links": [
                await suite.members.functions.LEDGER().call(),
                await suite.invoices.functions.MEMBERS().call(),
                await suite.invoices.functions.LEDGER().call(),
                await suite.claim_ledger.functions.MEMBERS().call(),
                await suite.claim_ledger.functions.INVOICES().call(),
                await suite.claim_ledger.functions.financingDesk().call(),
                await suite.desk.functions.MEMBERS().call(),
                await suite.desk.functions.LEDGER().call(),
            ],
        }
    except Exception:  # another contract (an older release) sits at an address
        return False
    expected = {
        "forwarder targets": [
            a["MemberRegistry"],
            a["InvoiceRegistry"],
            a["ClaimLedger"],
            a["FinancingDesk"],
        ],
        "trusted forwarders": [a["TierflowForwarder"]] * 4,
        "links": [
            a["ClaimLedger"],
            a["MemberRegistry"],
            a["ClaimLedger"],
            a["MemberRegistry"],
            a["InvoiceRegistry"],
            a["FinancingDesk"],
            a["MemberRegistry"],
            a["ClaimLedger"],
        ],
    }
    return all([to_checksum_address(x) for x in found[k]] == expected[k] for k in expected)


async def deploy_suite(
    w3: Web3Client,
    sender: TransactionSender,
    parameters: DeploymentParameters | None = None,
    *,
    directory: Any = None,
    record: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> Deployment:
    """Deploy the suite, or keep the recorded one when it is intact and has these parameters.

    The contracts' addresses are fixed at deployment (I-13): the deployer predicts all of
    them from its next nonce and passes the same ``Platform`` struct to every constructor,
    which checks its own entry, so a wrong prediction (the deployer key used elsewhere
    meanwhile) fails the deployment instead of wiring a suite to the wrong contracts. There
    is no wiring step and no grantable internal role. A suite is deployed whole: a run that
    broke half-way is redeployed from the start. ``on_step`` is told each step's name.
    """
    parameters = parameters or DeploymentParameters()
    ensure_artifacts()
    chain_id = int(await w3.eth.chain_id)
    previous = load_deployment(chain_id, directory) if record else None
    admin = sender.address

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)

    if previous is not None and previous.parameters == parameters and await _intact(w3, previous):
        for name in SUITE:
            step(f"{name} (kept)")
        return previous

    deployment = Deployment(chain_id=chain_id, parameters=parameters)
    stored = await sender.nonce_store.peek(chain_id, admin)
    first = max(stored or 0, await sender.pending_nonce())
    predicted = predict_addresses(admin, first)
    platform = platform_tuple(predicted)
    for name in SUITE:
        args = _constructor_args(name, platform, parameters, admin)
        artifact = load_artifact(name)
        try:
            address, receipt = await sender.deploy(artifact.abi, artifact.bytecode, *args)
        except ContractRevert as exc:
            raise ConfigurationError(
                f"deploying {name}: {exc} (its predicted address {predicted[name]} was not the "
                "one created: was the deployer key used by something else meanwhile? run again)"
            ) from exc
        if address != predicted[name]:
            raise ConfigurationError(
                f"{name} was created at {address}, not at the predicted {predicted[name]}"
            )
        deployment.contracts[name] = ContractRecord(address, int(receipt["blockNumber"]))
        step(name)
    if record:
        save_deployment(deployment, directory)
    return deployment


def _constructor_args(
    name: str,
    platform: tuple[str, str, str, str, str],
    parameters: DeploymentParameters,
    admin: str,
) -> tuple[Any, ...]:
    if name == "TierflowForwarder":
        return (platform,)
    if name == "MemberRegistry":
        return (parameters.admin_delay_s, admin, platform)
    if name == "InvoiceRegistry":
        return (platform,)
    if name == "ClaimLedger":
        return (platform, parameters.ledger_config())
    if name == "FinancingDesk":
        return (platform, parameters.registration_required)
    raise ConfigurationError(f"unknown contract {name}")


#: Steps :func:`deploy_suite` reports, for sizing a progress bar.
DEPLOY_STEPS = len(SUITE)


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
