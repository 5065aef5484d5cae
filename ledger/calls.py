"""Typed contract calls: what a business operation asks a contract to do, as plain data.

A :class:`ContractCall` names the contract, the function and its arguments; one builder per
business function (``calls.split(claim_id, to, value, invoice_id)``) keeps the argument order
and encodings of the contracts in one place. Services build calls and hand them to the
ledger port; only the port turns a call into a web3 transaction (:meth:`ContractCall.bind`),
so services never touch web3 objects and their tests compare calls as values.

Arguments are the ABI's own: ``bytes`` for ``bytes32``, checksummed address strings, ints.
On chain a piece's size is its ``value`` (ERC-3525); off chain it is an ``amount``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.bindings import Suite

MEMBER_REGISTRY = "MemberRegistry"
INVOICE_REGISTRY = "InvoiceRegistry"
CLAIM_LEDGER = "ClaimLedger"
FINANCING_DESK = "FinancingDesk"

ZERO_BYTES32 = b"\x00" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class ContractCall:
    """``contract.function(*args)``, not yet signed or sent."""

    contract: str
    function: str
    args: tuple[Any, ...]

    def bind(self, suite: Suite) -> Any:
        """The web3 contract function of this call on ``suite``'s deployment."""
        return getattr(suite.contracts[self.contract].functions, self.function)(*self.args)

    def __str__(self) -> str:
        return f"{self.contract}.{self.function}"


def _bytes32(value: bytes | str | None) -> bytes:
    """A ``bytes32`` from bytes or 0x-hex (``None``: zero)."""
    if value is None:
        return ZERO_BYTES32
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if len(value) != 32:
        raise ValueError(f"a bytes32 is 32 bytes, not {len(value)}")
    return value


# -- MemberRegistry -------------------------------------------------------------------------


def register_member(account: str, roles_mask: int, kyc_expires_at: int) -> ContractCall:
    return ContractCall(MEMBER_REGISTRY, "registerMember", (account, roles_mask, kyc_expires_at))


def suspend_member(account: str, reason_hash: bytes) -> ContractCall:
    return ContractCall(MEMBER_REGISTRY, "suspendMember", (account, _bytes32(reason_hash)))


def reinstate_member(account: str) -> ContractCall:
    return ContractCall(MEMBER_REGISTRY, "reinstateMember", (account,))


def renew_kyc(account: str, kyc_expires_at: int) -> ContractCall:
    return ContractCall(MEMBER_REGISTRY, "renewKyc", (account, kyc_expires_at))


# -- InvoiceRegistry ------------------------------------------------------------------------


def register_invoice(
    invoice_id: bytes | str, buyer: str, amount: int, issue_date: int, document_hash: bytes | str
) -> ContractCall:
    return ContractCall(
        INVOICE_REGISTRY,
        "registerInvoice",
        (_bytes32(invoice_id), buyer, amount, issue_date, _bytes32(document_hash)),
    )


def confirm_invoice(invoice_id: bytes | str) -> ContractCall:
    return ContractCall(INVOICE_REGISTRY, "confirmInvoice", (_bytes32(invoice_id),))


def void_invoice(invoice_id: bytes | str) -> ContractCall:
    return ContractCall(INVOICE_REGISTRY, "voidInvoice", (_bytes32(invoice_id),))


# -- ClaimLedger ----------------------------------------------------------------------------


def set_program_limit(obligor: str, program_limit: int) -> ContractCall:
    return ContractCall(CLAIM_LEDGER, "setProgramLimit", (obligor, program_limit))


def issue_payable(
    supplier: str,
    face_value: int,
    due_date: int,
    invoice_ids: Sequence[bytes | str],
    clearing_agent: str | None,
) -> ContractCall:
    return ContractCall(
        CLAIM_LEDGER,
        "issuePayable",
        (
            supplier,
            face_value,
            due_date,
            [_bytes32(i) for i in invoice_ids],
            clearing_agent or ZERO_ADDRESS,
        ),
    )


def cancel_payable(payable_id: int) -> ContractCall:
    return ContractCall(CLAIM_LEDGER, "cancelPayable", (payable_id,))


def mark_overdue(payable_id: int) -> ContractCall:
    return ContractCall(CLAIM_LEDGER, "markOverdue", (payable_id,))


def settle_claim(claim_id: int, payment_ref_hash: bytes) -> ContractCall:
    return ContractCall(CLAIM_LEDGER, "settleClaim", (claim_id, _bytes32(payment_ref_hash)))


def settle_claims(claim_ids: Sequence[int], payment_ref_hashes: Sequence[bytes]) -> ContractCall:
    return ContractCall(
        CLAIM_LEDGER,
        "settleClaims",
        (list(claim_ids), [_bytes32(r) for r in payment_ref_hashes]),
    )


def split(claim_id: int, to: str, value: int, invoice_id: bytes | str | None) -> ContractCall:
    """A new piece of ``value`` split off ``claim_id`` for ``to``."""
    return ContractCall(CLAIM_LEDGER, "split", (claim_id, to, value, _bytes32(invoice_id)))


def transfer_claim(claim_id: int, to: str, invoice_id: bytes | str | None) -> ContractCall:
    """The whole piece ``claim_id`` to ``to``."""
    return ContractCall(CLAIM_LEDGER, "transferClaim", (claim_id, to, _bytes32(invoice_id)))


def freeze_claim(claim_id: int, reason_hash: bytes) -> ContractCall:
    return ContractCall(CLAIM_LEDGER, "freezeClaim", (claim_id, _bytes32(reason_hash)))


def unfreeze_claim(claim_id: int) -> ContractCall:
    return ContractCall(CLAIM_LEDGER, "unfreezeClaim", (claim_id,))


# -- FinancingDesk --------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """``IFinancingDesk.Terms``: what a financier approves with."""

    advance: int
    discount: int
    fees: int
    annual_rate_bps: int
    term_days: int
    recourse: bool
    registration_no: bytes
    disbursement_ref: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.advance,
            self.discount,
            self.fees,
            self.annual_rate_bps,
            self.term_days,
            self.recourse,
            _bytes32(self.registration_no),
            _bytes32(self.disbursement_ref),
        )


def apply_for_financing(
    claim_id: int,
    financier: str,
    amount: int,
    expires_at: int,
    min_advance: int = 0,
    recourse: bool = False,
) -> ContractCall:
    """The holder applies, committing to accept no advance below ``min_advance`` and only
    the given ``recourse`` (the desk refuses an approval that differs)."""
    return ContractCall(
        FINANCING_DESK,
        "applyForFinancing",
        (claim_id, financier, amount, expires_at, min_advance, recourse),
    )


def approve_financing(financing_id: int, terms: Terms) -> ContractCall:
    return ContractCall(FINANCING_DESK, "approveFinancing", (financing_id, terms.as_tuple()))


def reject_financing(financing_id: int, reason_hash: bytes) -> ContractCall:
    return ContractCall(FINANCING_DESK, "rejectFinancing", (financing_id, _bytes32(reason_hash)))


def withdraw_financing(financing_id: int) -> ContractCall:
    return ContractCall(FINANCING_DESK, "withdrawFinancing", (financing_id,))


def expire_financing(financing_id: int) -> ContractCall:
    return ContractCall(FINANCING_DESK, "expireFinancing", (financing_id,))


def set_exposure_limit(obligor: str, exposure_limit: int) -> ContractCall:
    return ContractCall(FINANCING_DESK, "setExposureLimit", (obligor, exposure_limit))
