"""A deployed Tierflow suite on a real anvil with a cast of members, for benchmarks (the gas
table) and the contract, indexer and model tests.

``Platform`` wraps the :class:`ledger.bindings.Suite` with one :class:`Actor` per member role
and the small steps tests repeat (register and confirm an invoice, issue a payable, split,
move time). Amount and id arithmetic stays in the tests; this only saves typing.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.bindings import ZERO_ADDRESS, ZERO_HASH, Suite
from ledger.deploy import deploy_suite
from ledger.deployment import DAY, Deployment, DeploymentParameters
from ledger.node import Web3Client, rpc
from ledger.roles import Role, roles_to_mask
from ledger.sender import TransactionSender

#: Cast: name → roles. Order fixes which anvil dev account each gets (0 is the deployer,
#: default admin and operator).
CAST: dict[str, tuple[Role, ...]] = {
    "operator": (),
    "core": (Role.CORE_ENTERPRISE,),
    "core2": (Role.CORE_ENTERPRISE,),
    "sup1": (Role.SUPPLIER,),
    "sup2": (Role.SUPPLIER,),
    "sup3": (Role.SUPPLIER,),
    "sup4": (Role.SUPPLIER,),
    "sup5": (Role.SUPPLIER,),
    "bank": (Role.FINANCIER,),
    "bank2": (Role.FINANCIER,),
    "agent": (Role.CLEARING_AGENT,),
    "auditor": (Role.AUDITOR,),
    "outsider": (),  # never registered
}

PROGRAM_LIMIT = 10**15
EXPOSURE_LIMIT = 10**14


@dataclass
class Actor:
    name: str
    account: LocalAccount
    sender: TransactionSender

    @property
    def address(self) -> str:
        return self.sender.address

    async def transact(self, fn: Any) -> Any:
        return await self.sender.transact(fn)


@dataclass
class Platform:
    w3: Web3Client
    suite: Suite
    deployment: Deployment
    actors: dict[str, Actor]
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __getattr__(self, name: str) -> Actor:
        actors = self.__dict__.get("actors", {})
        if name in actors:
            return actors[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    @property
    def members(self) -> Any:
        return self.suite.members

    @property
    def invoices(self) -> Any:
        return self.suite.invoices

    @property
    def claim_ledger(self) -> Any:
        return self.suite.claim_ledger

    @property
    def desk(self) -> Any:
        return self.suite.desk

    # -- time ------------------------------------------------------------------------------

    async def now(self) -> int:
        return int((await self.w3.eth.get_block("latest"))["timestamp"])

    async def set_next_timestamp(self, ts: int) -> None:
        """The next mined block (the next transaction's) gets timestamp ``ts``."""
        await rpc(self.w3, "evm_setNextBlockTimestamp", ts)

    async def warp_to(self, ts: int) -> None:
        """Mine an empty block at ``ts``: views then see that time."""
        await rpc(self.w3, "evm_setNextBlockTimestamp", ts)
        await rpc(self.w3, "evm_mine")

    # -- snapshots -------------------------------------------------------------------------

    async def snapshot(self) -> str:
        return str(await rpc(self.w3, "evm_snapshot"))

    async def revert(self, snapshot_id: str) -> None:
        await rpc(self.w3, "evm_revert", snapshot_id)
        await self.resync_nonces()

    async def resync_nonces(self) -> None:
        chain_id = int(await self.w3.eth.chain_id)
        for actor in self.actors.values():
            pending = await self.w3.eth.get_transaction_count(actor.account.address, "pending")
            await actor.sender.nonce_store.reset(chain_id, actor.address, pending)

    # -- business steps --------------------------------------------------------------------

    def unique(self, label: str = "x") -> bytes:
        return hashlib.sha256(f"{label}-{next(self._serial)}".encode()).digest()

    async def invoice(
        self, seller: Actor, buyer: Actor, amount: int, *, confirm: bool = True
    ) -> bytes:
        """Register (and by default confirm) an invoice from ``seller`` to ``buyer``."""
        invoice_id, doc = self.unique("invoice"), self.unique("doc")
        issue_date = await self.now() - 60
        await seller.transact(
            self.invoices.functions.registerInvoice(
                invoice_id, buyer.address, amount, issue_date, doc
            )
        )
        if confirm:
            await buyer.transact(self.invoices.functions.confirmInvoice(invoice_id))
        return invoice_id

    async def issue(
        self,
        core: Actor,
        supplier: Actor,
        face: int,
        *,
        due_in: int = 90 * DAY,
        agent: Actor | None = None,
        invoice_amount: int | None = None,
    ) -> tuple[int, int, int]:
        """Issue a payable backed by one fresh invoice; returns (payable id, root id, due)."""
        invoice_id = await self.invoice(supplier, core, invoice_amount or face)
        due = await self.now() + due_in
        await core.transact(
            self.claim_ledger.functions.issuePayable(
                supplier.address, face, due, [invoice_id], agent.address if agent else ZERO_ADDRESS
            )
        )
        payable_id = int(await self.claim_ledger.functions.payableCount().call())
        root = int(await self.claim_ledger.functions.claimCount().call())
        return payable_id, root, due

    async def split(
        self, holder: Actor, claim_id: int, to: Actor, value: int, invoice: bytes = ZERO_HASH
    ) -> int:
        await holder.transact(
            self.claim_ledger.functions.split(claim_id, to.address, value, invoice)
        )
        return int(await self.claim_ledger.functions.claimCount().call())


async def build_platform(
    w3: Web3Client, keys: list[str], parameters: DeploymentParameters | None = None
) -> Platform:
    """Deploy a fresh suite (not recorded on disk) and register the cast."""
    accounts = [Account.from_key(k) for k in keys[: len(CAST)]]
    actors = {
        name: Actor(name, acct, TransactionSender(w3, acct))
        for name, acct in zip(CAST, accounts, strict=True)
    }
    operator = actors["operator"]
    deployment = await deploy_suite(w3, operator.sender, parameters, record=False)
    suite = Suite(w3, deployment)
    platform = Platform(w3, suite, deployment, actors)
    kyc = await platform.now() + 3650 * DAY
    for name, roles in CAST.items():
        if roles:
            await operator.transact(
                suite.members.functions.registerMember(
                    actors[name].address, roles_to_mask(roles), kyc
                )
            )
    for core in ("core", "core2"):
        await operator.transact(
            suite.claim_ledger.functions.setProgramLimit(actors[core].address, PROGRAM_LIMIT)
        )
        for bank in ("bank", "bank2"):
            await actors[bank].transact(
                suite.desk.functions.setExposureLimit(actors[core].address, EXPOSURE_LIMIT)
            )
    return platform
