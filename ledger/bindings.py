"""Bindings of the deployed contract suite: handles, typed views, the contracts' enums.

:class:`Suite` binds the four business contracts and the TierflowForwarder of a
:class:`~ledger.deployment.Deployment` to an ``AsyncWeb3`` and reads their views into frozen
dataclasses whose field names are the domain words used by the indexer's tables and the API
(``holder``, ``locked_amount`` …). The ClaimLedger contract is ``suite.claim_ledger``
(``ledger`` is this package). Deployment is :mod:`ledger.deploy`; calls to send are built by
:mod:`ledger.calls`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address
from web3.types import BlockIdentifier

from ledger.artifacts import load_artifact
from ledger.calls import ContractCall
from ledger.deployment import Deployment
from ledger.encoding import contract_encoder
from ledger.node import Web3Client
from ledger.roles import Role, mask_to_roles

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_HASH = b"\x00" * 32
#: Largest amount the contracts accept (uint128), in minor units.
MAX_AMOUNT = 2**128 - 1


class MemberStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2


class InvoiceStatus(IntEnum):
    NONE = 0
    REGISTERED = 1
    CONFIRMED = 2
    USED = 3
    VOIDED = 4


class PayableStatus(IntEnum):
    NONE = 0
    ISSUED = 1
    OVERDUE = 2
    SETTLED = 3
    CANCELLED = 4


class ClaimStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    LOCKED = 2
    FINANCED = 3
    SETTLED = 4
    FROZEN = 5
    CANCELLED = 6


class FinancingStatus(IntEnum):
    NONE = 0
    APPLIED = 1
    APPROVED = 2
    REJECTED = 3
    WITHDRAWN = 4
    EXPIRED = 5


@dataclass(frozen=True)
class MemberView:
    address: str
    status: MemberStatus
    kyc_expires_at: int
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class InvoiceView:
    id: bytes
    seller: str
    buyer: str
    amount: int
    issue_date: int
    document_hash: bytes
    status: InvoiceStatus


@dataclass(frozen=True)
class PayableView:
    id: int
    obligor: str
    supplier: str
    face_value: int
    settled_value: int
    due_date: int
    issued_at: int
    clearing_agent: str | None
    root_claim_id: int
    status: PayableStatus


@dataclass(frozen=True)
class ClaimView:
    id: int
    payable_id: int
    parent_id: int | None
    depth: int
    holder: str
    amount: int
    locked_amount: int
    status: ClaimStatus
    frozen: bool
    financed: bool
    due_date: int

    @classmethod
    def from_row(cls, claim_id: int, row: Sequence[Any]) -> ClaimView:
        """Decode ``ClaimLedger.claim``'s tuple (also for rows read in a JSON-RPC batch)."""
        _cid, payable_id, parent, depth, holder, value, locked, status, frozen, financed, due = row
        return cls(
            claim_id,
            payable_id,
            parent or None,
            depth,
            to_checksum_address(holder),
            value,
            locked,
            ClaimStatus(status),
            frozen,
            financed,
            due,
        )


@dataclass(frozen=True)
class FinancingView:
    id: int
    claim_id: int
    applicant: str
    financier: str
    status: FinancingStatus
    amount: int
    advance: int
    discount: int
    fees: int
    annual_rate_bps: int
    recourse: bool
    expires_at: int
    financed_claim_id: int | None
    registration_no: bytes
    disbursement_ref: bytes
    #: The least advance the applicant committed to accept (``recourse`` is committed too).
    min_advance: int = 0


@dataclass(frozen=True)
class ObligorAccountView:
    program_limit: int
    outstanding: int
    previous_overdue_at: int
    last_overdue_at: int


@dataclass(frozen=True)
class SettlementReferenceView:
    """What a bank payment reference paid: one holder, for one payable (``None``/0: never
    cited). A settlement citing it for another holder or payable reverts
    ``SettlementReferenceUsed``."""

    holder: str | None
    payable_id: int


def _addr_or_none(value: str) -> str | None:
    return None if int(value, 16) == 0 else to_checksum_address(value)


class Suite:
    """The five contracts of one deployment, bound to an ``AsyncWeb3``."""

    def __init__(self, w3: Web3Client, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.members = self._bind("MemberRegistry")
        self.invoices = self._bind("InvoiceRegistry")
        self.claim_ledger = self._bind("ClaimLedger")
        self.desk = self._bind("FinancingDesk")
        self.forwarder = self._bind("TierflowForwarder")

    def _bind(self, name: str) -> Any:
        return self.w3.eth.contract(
            address=to_checksum_address(self.deployment.address(name)), abi=load_artifact(name).abi
        )

    def call_fields(self, call: ContractCall) -> dict[str, Any]:
        """The transaction fields (``to``, ``data``) of ``call`` on this deployment: encoded by
        :mod:`ledger.encoding` (no web3.py contract function is built), through web3.py when
        that answers ``None`` (which then encodes or raises as before)."""
        contract = self.contracts[call.contract]
        data = contract_encoder(contract.abi).encode(call.function, call.args)
        if data is None:
            encoded = call.bind(self)._encode_transaction_data()
            data = bytes.fromhex(encoded.removeprefix("0x"))
        return {"to": contract.address, "data": data}

    @property
    def contracts(self) -> dict[str, Any]:
        return {
            "MemberRegistry": self.members,
            "InvoiceRegistry": self.invoices,
            "ClaimLedger": self.claim_ledger,
            "FinancingDesk": self.desk,
            "TierflowForwarder": self.forwarder,
        }

    # -- views -----------------------------------------------------------------------------

    async def member(self, address: str, block: BlockIdentifier = "latest") -> MemberView:
        address = to_checksum_address(address)
        status, kyc = await self.members.functions.member(address).call(block_identifier=block)
        mask = await self.members.functions.rolesOf(address).call(block_identifier=block)
        return MemberView(address, MemberStatus(status), kyc, tuple(mask_to_roles(mask)))

    async def invoice(self, invoice_id: bytes, block: BlockIdentifier = "latest") -> InvoiceView:
        (
            seller,
            issue_date,
            status,
            buyer,
            _payable_id,
            amount,
            doc,
        ) = await self.invoices.functions.invoice(invoice_id).call(block_identifier=block)
        return InvoiceView(
            invoice_id,
            to_checksum_address(seller),
            to_checksum_address(buyer),
            amount,
            issue_date,
            doc,
            InvoiceStatus(status),
        )

    async def payable(self, payable_id: int, block: BlockIdentifier = "latest") -> PayableView:
        (
            obligor,
            due,
            status,
            supplier,
            issued_at,
            agent,
            root,
            face,
            settled,
        ) = await self.claim_ledger.functions.getPayable(payable_id).call(block_identifier=block)
        return PayableView(
            payable_id,
            to_checksum_address(obligor),
            to_checksum_address(supplier),
            face,
            settled,
            due,
            issued_at,
            _addr_or_none(agent),
            root,
            PayableStatus(status),
        )

    async def payable_invoices(
        self, payable_id: int, block: BlockIdentifier = "latest"
    ) -> list[bytes]:
        return list(
            await self.claim_ledger.functions.payableInvoices(payable_id).call(
                block_identifier=block
            )
        )

    async def claim(self, claim_id: int, block: BlockIdentifier = "latest") -> ClaimView:
        row = await self.claim_ledger.functions.claim(claim_id).call(block_identifier=block)
        return ClaimView.from_row(claim_id, row)

    async def financing(
        self, financing_id: int, block: BlockIdentifier = "latest"
    ) -> FinancingView:
        (
            claim_id,
            applicant,
            status,
            recourse,
            expires,
            financier,
            rate,
            financed_claim,
            amount,
            min_advance,
            advance,
            discount,
            fees,
            reg_no,
            disb_ref,
        ) = await self.desk.functions.financing(financing_id).call(block_identifier=block)
        return FinancingView(
            financing_id,
            claim_id,
            to_checksum_address(applicant),
            to_checksum_address(financier),
            FinancingStatus(status),
            amount,
            advance,
            discount,
            fees,
            rate,
            recourse,
            expires,
            financed_claim or None,
            reg_no,
            disb_ref,
            min_advance,
        )

    async def obligor_account(
        self, obligor: str, block: BlockIdentifier = "latest"
    ) -> ObligorAccountView:
        limit, outstanding, prev, last = await self.claim_ledger.functions.obligorAccount(
            to_checksum_address(obligor)
        ).call(block_identifier=block)
        return ObligorAccountView(limit, outstanding, prev, last)

    async def settlement_reference(
        self, payment_ref: bytes, block: BlockIdentifier = "latest"
    ) -> SettlementReferenceView:
        holder, payable_id = await self.claim_ledger.functions.settlementReference(
            payment_ref
        ).call(block_identifier=block)
        return SettlementReferenceView(_addr_or_none(holder), int(payable_id))

    async def exposure(
        self, financier: str, obligor: str, block: BlockIdentifier = "latest"
    ) -> tuple[int, int]:
        """``(outstanding, limit)`` of ``financier``'s financed value for ``obligor``."""
        out, limit = await self.desk.functions.exposure(
            to_checksum_address(financier), to_checksum_address(obligor)
        ).call(block_identifier=block)
        return int(out), int(limit)

    async def discount_for(self, amount: int, annual_rate_bps: int, term_days: int) -> int:
        """The contract's own discount convention (ceil(amount × bps × days / 3 600 000))."""
        return int(await self.desk.functions.discountFor(amount, annual_rate_bps, term_days).call())
