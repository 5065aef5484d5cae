"""Deploying the contract suite: idempotent, recorded step by step, with a progress bar.

:func:`deploy_suite` deploys the five contracts (the forwarder first) with their addresses
fixed at deployment, then the audit log's anchors (``AuditAnchor``), or keeps the recorded
suite when it is intact; a re-run after a crash deploys a whole new suite rather than wiring
one up half-way. :func:`deploy` does it for a
JSON-RPC URL (``tierflow deploy``):
the deployer key comes from ``TIERFLOW_DEPLOYER_PRIVATE_KEY``; on the local development
chain (chain id 31337) anvil's first dev account is used when none is given.

The deployer is the platform's operator (the API signs with its key); it is not the
MemberRegistry's default admin. :func:`deploy` first deploys (or keeps) an ``AdminTimelock``
(OpenZeppelin ``TimelockController``) from an :class:`AdminPlan` and makes it the default admin,
so granting the operator role (or handing the default admin over) is scheduled by the
plan's proposers and executed by its executors after its delay; the operator account is
neither. On the local chain the plan is anvil's dev account 1 with no delay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from web3.types import Nonce
from web3.utils.address import get_create_address

from ledger.anvil import dev_private_keys
from ledger.artifacts import ensure_artifacts, load_artifact
from ledger.bindings import Suite
from ledger.config import NodeSettings
from ledger.deployment import (
    AUDIT_ANCHOR,
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
from ledger.roles import Role
from ledger.sender import TransactionSender

LOCAL_CHAIN_ID = 31337
#: The AdminTimelock's delay outside the local chain when TIERFLOW_ADMIN_TIMELOCK_DELAY_S is unset.
DEFAULT_TIMELOCK_DELAY_S = 2 * 86_400
ADMIN_TIMELOCK = "AdminTimelock"
PROPOSER_ROLE = keccak(text="PROPOSER_ROLE")
EXECUTOR_ROLE = keccak(text="EXECUTOR_ROLE")


@dataclass(frozen=True)
class AdminPlan:
    """Who administers the roles through the ``AdminTimelock``: the proposers schedule a
    grant, the executors execute it once ``min_delay_s`` has passed."""

    min_delay_s: int
    proposers: tuple[str, ...]
    executors: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: NodeSettings, chain_id: int, operator: str) -> AdminPlan:
        """The plan the settings give; on the local chain anvil's dev account 1 and no delay
        when unset. Refused when the operator would propose or execute (the API service
        would hold the admin power after all) or when nobody would propose."""
        local = chain_id == LOCAL_CHAIN_ID

        def accounts(text: str | None) -> tuple[str, ...]:
            out = []
            for part in (text or "").split(","):
                if part.strip():
                    try:
                        out.append(to_checksum_address(part.strip()))
                    except ValueError as exc:
                        raise ConfigurationError(f"not an account: {part.strip()!r}") from exc
            return tuple(out)

        proposers = accounts(settings.admin_proposers)
        if not proposers:
            if not local:
                raise ConfigurationError(
                    f"chain {chain_id} is not the local dev chain: set TIERFLOW_ADMIN_PROPOSERS "
                    "(the accounts that schedule role grants on the AdminTimelock)"
                )
            proposers = (
                to_checksum_address(Account.from_key(dev_private_keys(count=2)[1]).address),
            )
        executors = accounts(settings.admin_executors) or proposers
        delay = settings.admin_timelock_delay_s
        if delay is None:
            delay = 0 if local else DEFAULT_TIMELOCK_DELAY_S
        operator = to_checksum_address(operator)
        if operator in proposers or operator in executors:
            raise ConfigurationError(
                f"the operator account {operator} must not propose or execute role grants: "
                "give TIERFLOW_ADMIN_PROPOSERS / TIERFLOW_ADMIN_EXECUTORS other accounts"
            )
        return cls(delay, proposers, executors)


async def _timelock_fits(w3: Web3Client, address: str, plan: AdminPlan) -> bool:
    """True when ``address`` holds an AdminTimelock with the plan's delay and roles."""
    if not await _has_code(w3, address):
        return False
    timelock = w3.eth.contract(
        address=to_checksum_address(address), abi=load_artifact(ADMIN_TIMELOCK).abi
    )
    try:
        if int(await timelock.functions.getMinDelay().call()) != plan.min_delay_s:
            return False
        for role, accounts in ((PROPOSER_ROLE, plan.proposers), (EXECUTOR_ROLE, plan.executors)):
            for account in accounts:
                if not await timelock.functions.hasRole(role, account).call():
                    return False
    except Exception:  # another contract sits at the address
        return False
    return True


async def deploy_admin_timelock(
    w3: Web3Client, sender: TransactionSender, plan: AdminPlan, previous: ContractRecord | None
) -> ContractRecord:
    """Keep the recorded AdminTimelock when it fits ``plan``, else deploy one."""
    if previous is not None and await _timelock_fits(w3, previous.address, plan):
        return previous
    artifact = load_artifact(ADMIN_TIMELOCK)
    address, receipt = await sender.deploy(
        artifact.abi,
        artifact.bytecode,
        plan.min_delay_s,
        list(plan.proposers),
        list(plan.executors),
    )
    return ContractRecord(address, int(receipt["blockNumber"]))


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


async def _intact(w3: Web3Client, deployment: Deployment, admin: str, operator: str) -> bool:
    """True when every recorded contract has code and the suite is wired to itself: the
    forwarder's targets, each contract's trusted forwarder and its fixed platform addresses
    are the recorded ones; ``admin`` is the registry's default admin and ``operator`` an
    operator."""
    if not deployment.complete:
        return False
    for name in (*SUITE, AUDIT_ANCHOR):
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
        found["admin"] = [await suite.members.functions.defaultAdmin().call()]
        if not await suite.members.functions.hasRole(Role.OPERATOR.role_id, operator).call():
            return False
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
        "admin": [admin],
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
    admin: str | None = None,
    anchorer: str | None = None,
) -> Deployment:
    """Deploy the suite, or keep the recorded one when it is intact and has these parameters.

    The contracts' addresses are fixed at deployment (I-13): the deployer predicts all of
    them from its next nonce and passes the same ``Platform`` struct to every constructor,
    which checks its own entry, so a wrong prediction (the deployer key used elsewhere
    meanwhile) fails the deployment instead of wiring a suite to the wrong contracts. There
    is no wiring step and no grantable internal role. A suite is deployed whole: a run that
    broke half-way is redeployed from the start. ``on_step`` is told each step's name.

    The sender is the first operator; ``admin`` the registry's default admin (the sender too
    when not given, as test fixtures and benches do; :func:`deploy` gives its AdminTimelock).
    """
    parameters = parameters or DeploymentParameters()
    ensure_artifacts()
    chain_id = int(await w3.eth.chain_id)
    previous = load_deployment(chain_id, directory) if record else None
    operator = sender.address
    admin = to_checksum_address(admin) if admin is not None else operator

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)

    if (
        previous is not None
        and previous.parameters == parameters
        and await _intact(w3, previous, admin, operator)
    ):
        for name in (*SUITE, AUDIT_ANCHOR):
            step(f"{name} (kept)")
        return previous

    deployment = Deployment(chain_id=chain_id, parameters=parameters)
    stored = await sender.nonce_store.peek(chain_id, operator)
    first = max(stored or 0, await sender.pending_nonce())
    predicted = predict_addresses(operator, first)
    platform = platform_tuple(predicted)
    for name in SUITE:
        args = _constructor_args(name, platform, parameters, admin, operator)
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
    # The audit log's anchors: ``anchorer`` (the anchoring account; the operator when not
    # given) anchors; the registry's default admin (deploy's AdminTimelock) administers it.
    artifact = load_artifact(AUDIT_ANCHOR)
    anchoring = to_checksum_address(anchorer) if anchorer is not None else operator
    address, receipt = await sender.deploy(artifact.abi, artifact.bytecode, admin, anchoring)
    deployment.contracts[AUDIT_ANCHOR] = ContractRecord(address, int(receipt["blockNumber"]))
    step(AUDIT_ANCHOR)
    if record:
        save_deployment(deployment, directory)
    return deployment


def _constructor_args(
    name: str,
    platform: tuple[str, str, str, str, str],
    parameters: DeploymentParameters,
    admin: str,
    operator: str,
) -> tuple[Any, ...]:
    if name == "TierflowForwarder":
        return (platform,)
    if name == "MemberRegistry":
        return (parameters.admin_delay_s, admin, operator, platform)
    if name == "InvoiceRegistry":
        return (platform,)
    if name == "ClaimLedger":
        return (platform, parameters.ledger_config())
    if name == "FinancingDesk":
        return (platform, parameters.registration_required)
    raise ConfigurationError(f"unknown contract {name}")


#: Steps :func:`deploy` reports (the AdminTimelock, the suite and the AuditAnchor), for sizing
#: a progress bar.
DEPLOY_STEPS = len(SUITE) + 2


def _anchorer(chain_id: int) -> str | None:
    """The audit anchoring account of the settings (None: the operator anchors)."""
    key = NodeSettings().anchor_key(chain_id)
    return None if key is None else str(Account.from_key(key.get_secret_value()).address)


async def deploy(
    rpc_url: str,
    *,
    private_key: str | None,
    data_dir: Path,
    parameters: DeploymentParameters | None = None,
    console: Console | None = None,
    directory: Path | None = None,
    admin: AdminPlan | None = None,
) -> Deployment:
    """Deploy (or complete) the AdminTimelock and the suite on ``rpc_url`` and record them (in
    ``directory``, default ``$TIERFLOW_DEPLOYMENTS_DIR`` or chain/deployments); returns the
    deployment. ``admin`` defaults to the plan of the ``TIERFLOW_ADMIN_*`` settings."""
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
        plan = admin or AdminPlan.from_settings(NodeSettings(), chain_id, account.address)
        sender = TransactionSender(w3, account, FileNonceStore(data_dir / "nonces"))
        ensure_artifacts()
        previous = load_deployment(chain_id, directory)
        with Progress(
            TextColumn("[bold]deploy"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} {task.description}"),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("", total=DEPLOY_STEPS)
            timelock = await deploy_admin_timelock(
                w3, sender, plan, previous.admin_timelock if previous is not None else None
            )
            progress.update(task, advance=1, description=ADMIN_TIMELOCK)
            deployment = await deploy_suite(
                w3,
                sender,
                parameters,
                directory=directory,
                on_step=lambda name: progress.update(task, advance=1, description=name),
                admin=timelock.address,
                anchorer=_anchorer(chain_id),
            )
            deployment.admin_timelock = timelock
            save_deployment(deployment, directory)
        console.print(f"deployment recorded in {record_path(chain_id, directory)}")
        return deployment
    finally:
        await close_web3(w3)
