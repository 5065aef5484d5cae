"""The rules of Tierflow in plain Python: the executable statement the contracts are checked
against by ``test_state_machine.py``.

No web3 here. Accounts are names (``"sup1"``, ``"bank"`` …, :data:`ZERO` for the zero
address), ids are the integers and 32-byte hashes the contracts use, time is :attr:`Tierflow.now`
(the block timestamp every transaction is mined at).

Each public method is one contract function. It either applies the change and returns what
the contract returns (new ids), or raises :class:`ModelRevert` with the custom error the
contract reverts with. Where a call can fail for several reasons, the checks run in the
contracts' own order, so the error named is the one the contract gives *first*. A method runs
as one transaction: if it raises, every change it made is undone (as the EVM does), so the
bodies can check and change state in the same order as the Solidity does.

The comments name the Solidity function each step mirrors.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

DAY = 86_400
#: The zero address.
ZERO = "0x0"


class Hash(bytes):
    """A 32-byte hash (invoice id, document hash, payment reference …) that prints short."""

    def __repr__(self) -> str:
        return "0x0" if not any(self) else f"0x{self.hex()[:8]}…"


ZERO_HASH = Hash(bytes(32))
UINT16_MAX = 2**16 - 1

# Roles (the values of ``ledger.roles.Role``) and their bits in a role mask (``Roles.sol``).
OPERATOR = "operator"
CORE_ENTERPRISE = "core_enterprise"
SUPPLIER = "supplier"
FINANCIER = "financier"
CLEARING_AGENT = "clearing_agent"
AUDITOR = "auditor"
ROLE_BITS: dict[str, int] = {
    OPERATOR: 1 << 0,
    CORE_ENTERPRISE: 1 << 1,
    SUPPLIER: 1 << 2,
    FINANCIER: 1 << 3,
    CLEARING_AGENT: 1 << 4,
    AUDITOR: 1 << 5,
}
BUSINESS_MASK = sum(bit for role, bit in ROLE_BITS.items() if role != OPERATOR)


def roles_of_mask(mask: int) -> frozenset[str]:
    return frozenset(role for role, bit in ROLE_BITS.items() if mask & bit)


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


class ModelRevert(Exception):
    """The call reverts with the custom error ``name`` (``details`` only help reading)."""

    def __init__(self, name: str, **details: Any) -> None:
        super().__init__(name, details)
        self.name = name
        self.details = details

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.details.items())
        return f"{self.name}({inner})"


# ------------------------------------------------------------------------------ the objects


@dataclass(frozen=True)
class Parameters:
    """Deployment parameters (``DeploymentParameters``) and the contracts' constants."""

    term_cap: int = 365 * DAY
    long_term_threshold: int = 180 * DAY
    grace_period: int = 7 * DAY
    trade_invoice_required: bool = False
    registration_required: bool = True
    max_invoices_per_payable: int = 20
    max_settlement_batch: int = 100
    overdue_window: int = 180 * DAY


@dataclass
class Member:
    """An account's roles (AccessControl: held with or without a member record) and record."""

    roles: frozenset[str] = frozenset()
    status: MemberStatus = MemberStatus.NONE
    kyc_expires_at: int = 0


@dataclass
class Invoice:
    id: bytes
    seller: str
    buyer: str
    amount: int
    issue_date: int
    document_hash: bytes
    status: InvoiceStatus = InvoiceStatus.REGISTERED


@dataclass
class Payable:
    id: int
    obligor: str
    supplier: str
    face_value: int
    due_date: int
    issued_at: int
    clearing_agent: str  # ZERO when none
    root_claim_id: int
    invoice_ids: tuple[bytes, ...]
    status: PayableStatus = PayableStatus.ISSUED
    settled_value: int = 0
    #: The overdue clock (SPEC §2): pieces frozen now, since when, and the ended spans with
    #: any piece frozen, as (start, end) block times.
    frozen_pieces: int = 0
    frozen_since: int = 0
    freeze_spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Claim:
    """A claim piece. ``parent_id`` is 0 for the root; ``touched`` marks a root that was ever
    split, transferred or locked (its payable can no longer be cancelled)."""

    id: int
    payable_id: int
    parent_id: int
    depth: int
    holder: str
    value: int
    locked: int = 0
    frozen: bool = False
    financed: bool = False
    settled: bool = False
    cancelled: bool = False
    touched: bool = False

    @property
    def live(self) -> bool:
        return not (self.settled or self.cancelled)

    @property
    def available(self) -> int:
        return self.value - self.locked

    @property
    def status(self) -> ClaimStatus:
        """``ClaimLedger._status``: the flags take precedence in this order."""
        if self.cancelled:
            return ClaimStatus.CANCELLED
        if self.settled:
            return ClaimStatus.SETTLED
        if self.frozen:
            return ClaimStatus.FROZEN
        if self.financed:
            return ClaimStatus.FINANCED
        if self.locked:
            return ClaimStatus.LOCKED
        return ClaimStatus.ACTIVE


@dataclass(frozen=True)
class Terms:
    """``IFinancingDesk.Terms``: what the financier approves with."""

    advance: int
    discount: int
    fees: int
    annual_rate_bps: int
    term_days: int
    recourse: bool
    registration_no: bytes
    disbursement_ref: bytes


@dataclass
class Financing:
    id: int
    claim_id: int
    applicant: str
    financier: str
    obligor: str  # captured at application (``_obligorOf``)
    amount: int
    expires_at: int
    status: FinancingStatus = FinancingStatus.APPLIED
    terms: Terms | None = None
    financed_claim_id: int = 0
    #: What the applicant committed to at apply time (the approval must honour both).
    min_advance: int = 0
    recourse: bool = False


@dataclass
class Exposure:
    outstanding: int = 0
    limit: int = 0


@dataclass
class ObligorAccount:
    program_limit: int = 0
    outstanding: int = 0
    previous_overdue_at: int = 0
    last_overdue_at: int = 0


@dataclass
class Touched:
    """What the calls since the last :meth:`Tierflow.take_touched` changed (for cheap checks)."""

    members: set[str] = field(default_factory=set)
    invoices: set[bytes] = field(default_factory=set)
    payables: set[int] = field(default_factory=set)
    claims: set[int] = field(default_factory=set)
    financings: set[int] = field(default_factory=set)
    obligors: set[str] = field(default_factory=set)
    exposures: set[tuple[str, str]] = field(default_factory=set)


def discount_for(amount: int, annual_rate_bps: int, term_days: int) -> int:
    """The market convention, rounded up: ceil(amount × bps × days / (360 × 10 000))."""
    return -(-(amount * annual_rate_bps * term_days) // (360 * 10_000))


def days_to_maturity(due_date: int, now: int) -> int:
    """Whole days to the due date, a started day counting as one (``Math.ceilDiv``)."""
    return -(-(due_date - now) // DAY)


F = TypeVar("F", bound=Callable[..., Any])


def transaction(method: F) -> F:
    """All or nothing: a :class:`ModelRevert` undoes every change the call made."""

    @functools.wraps(method)
    def run(self: Tierflow, *args: Any, **kwargs: Any) -> Any:
        saved = copy.deepcopy(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except ModelRevert:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return run  # type: ignore[return-value]


# ------------------------------------------------------------------------------ the rules


class Tierflow:
    """The platform's state and one method per contract function."""

    def __init__(
        self,
        parameters: Parameters,
        now: int,
        members: dict[str, Member],
        program_limits: dict[str, int] | None = None,
        exposure_limits: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.parameters = parameters
        self.now = now
        self.paused = False
        #: Ended pauses as (start, end) block times, and when the current one began.
        self.pause_spans: list[tuple[int, int]] = []
        self.paused_since = 0
        self.members: dict[str, Member] = copy.deepcopy(members)
        self.invoices: dict[bytes, Invoice] = {}
        self.documents_seen: set[bytes] = set()
        self.payables: dict[int, Payable] = {}
        self.claims: dict[int, Claim] = {}
        self.financings: dict[int, Financing] = {}
        #: The financing each registration number / disbursement reference backs (one only).
        self.registrations: dict[bytes, int] = {}
        self.disbursements: dict[bytes, int] = {}
        #: What each bank payment reference paid: its first settlement's holder and payable.
        self.payment_refs: dict[bytes, tuple[str, int]] = {}
        self.obligors: dict[str, ObligorAccount] = {
            obligor: ObligorAccount(program_limit=limit)
            for obligor, limit in (program_limits or {}).items()
        }
        self.exposures: dict[tuple[str, str], Exposure] = {
            pair: Exposure(limit=limit) for pair, limit in (exposure_limits or {}).items()
        }
        self.touched = Touched()
        #: Objects as they were when first seen in a terminal state (I-8 checks they stay so).
        self.finals: dict[tuple[str, Any], Any] = {}

    # ---------------------------------------------------------------- time

    def warp(self, timestamp: int) -> None:
        """Block time moves forward (an empty block is mined at ``timestamp``)."""
        assert timestamp >= self.now, "time only moves forward"
        self.now = timestamp

    # ---------------------------------------------------------------- MemberRegistry

    def member(self, account: str) -> Member:
        return self.members.get(account) or Member()

    def has_role(self, account: str, role: str) -> bool:
        return role in self.member(account).roles

    def is_active(self, account: str) -> bool:
        """``isActive``: a member, not suspended, KYC not expired."""
        m = self.member(account)
        return m.status == MemberStatus.ACTIVE and m.kyc_expires_at > self.now

    def _require_not_paused(self) -> None:
        """``whenNotPaused`` / ``requireNotPaused``."""
        if self.paused:
            raise ModelRevert("EnforcedPause")

    def _require_member_active(self, account: str) -> None:
        """``MemberRegistry._requireActive``."""
        m = self.member(account)
        if m.status == MemberStatus.NONE:
            raise ModelRevert("MemberNotRegistered", account=account)
        if m.status != MemberStatus.ACTIVE:
            raise ModelRevert("MemberNotActive", account=account)
        if m.kyc_expires_at <= self.now:
            raise ModelRevert("MemberKycExpired", account=account)

    def require_active(self, account: str, role: str) -> None:
        """``requireActive``: not paused, ``account`` active, holding ``role``."""
        self._require_not_paused()
        self._require_member_active(account)
        if not self.has_role(account, role):
            raise ModelRevert("MemberRoleMissing", account=account, role=role)

    def require_member(self, account: str) -> None:
        """``requireMember``: not paused, ``account`` an active member (any role)."""
        self._require_not_paused()
        self._require_member_active(account)

    def require_transfer(self, holder: str, recipient: str) -> None:
        """``requireTransfer``: not paused, both active, recipient a supplier or financier."""
        self._require_not_paused()
        self._require_member_active(holder)
        self._require_member_active(recipient)
        if not (self.has_role(recipient, SUPPLIER) or self.has_role(recipient, FINANCIER)):
            raise ModelRevert("MemberRoleMissing", account=recipient, role=SUPPLIER)

    def _only_role(self, caller: str, role: str) -> None:
        """OpenZeppelin ``onlyRole``."""
        if not self.has_role(caller, role):
            raise ModelRevert("AccessControlUnauthorizedAccount", account=caller, role=role)

    def _registered(self, account: str) -> Member:
        m = self.member(account)
        if m.status == MemberStatus.NONE:
            raise ModelRevert("MemberNotRegistered", account=account)
        return m

    @transaction
    def register_member(
        self, caller: str, account: str, roles_mask: int, kyc_expires_at: int
    ) -> None:
        self._only_role(caller, OPERATOR)
        if account == ZERO:
            raise ModelRevert("MemberAddressZero")
        if self.member(account).status != MemberStatus.NONE:
            raise ModelRevert("MemberAlreadyRegistered", account=account)
        if roles_mask == 0 or roles_mask & ~BUSINESS_MASK:
            raise ModelRevert("MemberRolesInvalid", roles=roles_mask)
        if roles_mask & ROLE_BITS[AUDITOR] and roles_mask != ROLE_BITS[AUDITOR]:
            raise ModelRevert("MemberAuditorExclusive", account=account)
        if kyc_expires_at <= self.now:
            raise ModelRevert("MemberKycExpiryInvalid", kyc_expires_at=kyc_expires_at)
        roles = self.member(account).roles | roles_of_mask(roles_mask)
        self.members[account] = Member(roles, MemberStatus.ACTIVE, kyc_expires_at)
        self.touched.members.add(account)

    @transaction
    def renew_kyc(self, caller: str, account: str, kyc_expires_at: int) -> None:
        self._only_role(caller, OPERATOR)
        m = self._registered(account)
        if kyc_expires_at <= self.now:
            raise ModelRevert("MemberKycExpiryInvalid", kyc_expires_at=kyc_expires_at)
        m.kyc_expires_at = kyc_expires_at
        self.touched.members.add(account)

    @transaction
    def suspend_member(self, caller: str, account: str) -> None:
        self._only_role(caller, OPERATOR)
        m = self._registered(account)
        if m.status != MemberStatus.ACTIVE:
            raise ModelRevert("MemberStatusInvalid", account=account, status=m.status)
        m.status = MemberStatus.SUSPENDED
        self.touched.members.add(account)

    @transaction
    def reinstate_member(self, caller: str, account: str) -> None:
        self._only_role(caller, OPERATOR)
        m = self._registered(account)
        if m.status != MemberStatus.SUSPENDED:
            raise ModelRevert("MemberStatusInvalid", account=account, status=m.status)
        m.status = MemberStatus.ACTIVE
        self.touched.members.add(account)

    def _suspend_for_overdue(self, account: str) -> None:
        """``suspendForOverdue``: no-op unless the member is active."""
        m = self.member(account)
        if m.status == MemberStatus.ACTIVE:
            m.status = MemberStatus.SUSPENDED
            self.touched.members.add(account)

    @transaction
    def pause(self, caller: str) -> None:
        self._only_role(caller, OPERATOR)
        self._require_not_paused()
        self.paused = True
        self.paused_since = self.now

    @transaction
    def unpause(self, caller: str) -> None:
        self._only_role(caller, OPERATOR)
        if not self.paused:
            raise ModelRevert("ExpectedPause")
        self.paused = False
        self.pause_spans.append((self.paused_since, self.now))

    # ---------------------------------------------------------------- InvoiceRegistry

    def _invoice_of(self, invoice_id: bytes) -> Invoice:
        """``_existing``."""
        inv = self.invoices.get(invoice_id)
        if inv is None:
            raise ModelRevert("InvoiceNotFound", invoice_id=invoice_id)
        return inv

    def _usable_invoice(self, invoice_id: bytes, seller: str, buyer: str) -> Invoice:
        """``_usable``: confirmed, from ``seller`` to ``buyer``."""
        inv = self._invoice_of(invoice_id)
        if inv.status != InvoiceStatus.CONFIRMED:
            raise ModelRevert("InvoiceStatusInvalid", invoice_id=invoice_id, status=inv.status)
        if inv.seller != seller or inv.buyer != buyer:
            raise ModelRevert("InvoicePartiesMismatch", invoice_id=invoice_id)
        return inv

    @transaction
    def register_invoice(
        self,
        caller: str,
        invoice_id: bytes,
        buyer: str,
        amount: int,
        issue_date: int,
        document_hash: bytes,
    ) -> None:
        self.require_active(caller, SUPPLIER)
        if invoice_id == ZERO_HASH or document_hash == ZERO_HASH:
            raise ModelRevert("InvoiceHashInvalid")
        if amount == 0:
            raise ModelRevert("InvoiceAmountInvalid", amount=amount)
        if issue_date == 0 or issue_date > self.now:
            raise ModelRevert("InvoiceIssueDateInvalid", issue_date=issue_date)
        if buyer == caller or self.member(buyer).status == MemberStatus.NONE:
            raise ModelRevert("InvoiceBuyerInvalid", buyer=buyer)
        if invoice_id in self.invoices:
            raise ModelRevert("InvoiceAlreadyRegistered", invoice_id=invoice_id)
        if document_hash in self.documents_seen:
            raise ModelRevert("InvoiceDocumentAlreadyRegistered", document_hash=document_hash)
        self.documents_seen.add(document_hash)
        self.invoices[invoice_id] = Invoice(
            invoice_id, caller, buyer, amount, issue_date, document_hash
        )
        self.touched.invoices.add(invoice_id)

    @transaction
    def confirm_invoice(self, caller: str, invoice_id: bytes) -> None:
        self._require_not_paused()
        inv = self._invoice_of(invoice_id)
        if caller != inv.buyer:
            raise ModelRevert("InvoiceNotBuyer", invoice_id=invoice_id, caller=caller)
        self.require_member(caller)
        if inv.status != InvoiceStatus.REGISTERED:
            raise ModelRevert("InvoiceStatusInvalid", invoice_id=invoice_id, status=inv.status)
        inv.status = InvoiceStatus.CONFIRMED
        self.touched.invoices.add(invoice_id)

    @transaction
    def void_invoice(self, caller: str, invoice_id: bytes) -> None:
        self._require_not_paused()
        inv = self._invoice_of(invoice_id)
        if caller != inv.seller and not self.has_role(caller, OPERATOR):
            raise ModelRevert("InvoiceNotSeller", invoice_id=invoice_id, caller=caller)
        if inv.status not in (InvoiceStatus.REGISTERED, InvoiceStatus.CONFIRMED):
            raise ModelRevert("InvoiceStatusInvalid", invoice_id=invoice_id, status=inv.status)
        inv.status = InvoiceStatus.VOIDED
        self.touched.invoices.add(invoice_id)

    def _use_for_payable(self, invoice_ids: Iterable[bytes], seller: str, buyer: str) -> int:
        """``useForPayable``: marks each invoice Used, in order; returns their total."""
        total = 0
        for invoice_id in invoice_ids:
            inv = self._usable_invoice(invoice_id, seller, buyer)
            inv.status = InvoiceStatus.USED
            total += inv.amount
            self.touched.invoices.add(invoice_id)
        return total

    def _use_trade_invoice(
        self, invoice_id: bytes, seller: str, buyer: str, value: int, trade: bool
    ) -> None:
        """``ClaimLedger._useTradeInvoice`` (and ``useForTransfer``): a transfer's background."""
        if invoice_id != ZERO_HASH:
            inv = self._usable_invoice(invoice_id, seller, buyer)
            if inv.amount < value:
                raise ModelRevert("InvoiceAmountInsufficient", invoice_id=invoice_id)
            inv.status = InvoiceStatus.USED
            self.touched.invoices.add(invoice_id)
        elif trade and self.parameters.trade_invoice_required:
            raise ModelRevert("ClaimTradeInvoiceRequired")

    # ---------------------------------------------------------------- ClaimLedger: payables

    def obligor(self, account: str) -> ObligorAccount:
        return self.obligors.setdefault(account, ObligorAccount())

    def exposure(self, financier: str, obligor: str) -> Exposure:
        return self.exposures.setdefault((financier, obligor), Exposure())

    def _payable_of(self, payable_id: int) -> Payable:
        p = self.payables.get(payable_id)
        if p is None:
            raise ModelRevert("PayableNotFound", payable_id=payable_id)
        return p

    def _touch_payable(self, p: Payable) -> None:
        self.touched.payables.add(p.id)
        self.touched.obligors.add(p.obligor)

    @transaction
    def set_program_limit(self, caller: str, obligor: str, program_limit: int) -> None:
        if not self.has_role(caller, OPERATOR):
            raise ModelRevert("LedgerCallerUnauthorized", caller=caller)
        if not self.has_role(obligor, CORE_ENTERPRISE):
            raise ModelRevert("MemberRoleMissing", account=obligor, role=CORE_ENTERPRISE)
        self.obligor(obligor).program_limit = program_limit
        self.touched.obligors.add(obligor)

    @transaction
    def issue_payable(
        self,
        caller: str,
        supplier: str,
        face_value: int,
        due_date: int,
        invoice_ids: Sequence[bytes],
        clearing_agent: str = ZERO,
    ) -> tuple[int, int]:
        """Returns ``(payable id, root claim id)``."""
        # _checkIssue
        self.require_active(caller, CORE_ENTERPRISE)
        if supplier == caller:
            raise ModelRevert("PayableSupplierInvalid", supplier=supplier)
        self.require_active(supplier, SUPPLIER)
        if clearing_agent != ZERO:
            if clearing_agent == supplier:
                raise ModelRevert("PayableClearingAgentInvalid", clearing_agent=clearing_agent)
            self.require_active(clearing_agent, CLEARING_AGENT)
        if face_value == 0:
            raise ModelRevert("PayableFaceValueInvalid", face_value=face_value)
        latest = self.now + self.parameters.term_cap
        if due_date <= self.now or due_date > latest:
            raise ModelRevert("PayableDueDateInvalid", due_date=due_date, latest=latest)
        if not 0 < len(invoice_ids) <= self.parameters.max_invoices_per_payable:
            raise ModelRevert("PayableInvoiceCountInvalid", count=len(invoice_ids))
        # _recordPayable: book the face value against the limit, mint the root piece
        account = self.obligor(caller)
        if account.outstanding > account.program_limit:
            raise ModelRevert("PayableObligorOverLimit", outstanding=account.outstanding)
        if account.outstanding + face_value > account.program_limit:
            raise ModelRevert("PayableLimitExceeded", outstanding=account.outstanding + face_value)
        account.outstanding += face_value
        payable_id = len(self.payables) + 1
        root_id = len(self.claims) + 1
        self.payables[payable_id] = Payable(
            payable_id,
            obligor=caller,
            supplier=supplier,
            face_value=face_value,
            due_date=due_date,
            issued_at=self.now,
            clearing_agent=clearing_agent,
            root_claim_id=root_id,
            invoice_ids=tuple(invoice_ids),
        )
        self.claims[root_id] = Claim(root_id, payable_id, 0, 0, supplier, face_value)
        # the invoices back it
        total = self._use_for_payable(invoice_ids, supplier, caller)
        if total < face_value:
            raise ModelRevert("PayableInvoicesInsufficient", total=total, face_value=face_value)
        self._touch_payable(self.payables[payable_id])
        self.touched.claims.add(root_id)
        return payable_id, root_id

    @transaction
    def cancel_payable(self, caller: str, payable_id: int) -> None:
        self._require_not_paused()
        p = self._payable_of(payable_id)
        if p.status != PayableStatus.ISSUED:
            raise ModelRevert("PayableStatusInvalid", payable_id=payable_id, status=p.status)
        root = self.claims[p.root_claim_id]
        if root.holder != caller:
            raise ModelRevert("ClaimNotHolder", claim_id=root.id, caller=caller)
        if self.now >= p.due_date:
            raise ModelRevert("ClaimPastDueDate", claim_id=root.id)
        # untouched: never split, transferred or locked (even if it came back whole)
        untouched = (
            root.value == p.face_value
            and root.locked == 0
            and not (root.frozen or root.financed or root.settled or root.cancelled)
            and not root.touched
        )
        if not untouched or caller != p.supplier:
            raise ModelRevert("PayableNotCancellable", payable_id=payable_id)
        p.status = PayableStatus.CANCELLED
        root.cancelled = True
        self.obligor(p.obligor).outstanding -= p.face_value
        for invoice_id in p.invoice_ids:  # releaseInvoices
            self.invoices[invoice_id].status = InvoiceStatus.CONFIRMED
            self.touched.invoices.add(invoice_id)
        self._touch_payable(p)
        self.touched.claims.add(root.id)

    @transaction
    def mark_overdue(self, caller: str, payable_id: int) -> None:
        del caller  # anyone may
        self._require_not_paused()
        p = self._payable_of(payable_id)
        if p.status != PayableStatus.ISSUED:
            raise ModelRevert("PayableStatusInvalid", payable_id=payable_id, status=p.status)
        if self.now <= self.overdue_from(p):
            raise ModelRevert("PayableNotOverdueYet", payable_id=payable_id)
        at = self.overdue_from(p)
        p.status = PayableStatus.OVERDUE
        # the third overdue payable within the window suspends the obligor, counted by when each
        # fell overdue (overdueFrom at marking); the account keeps the two latest such times
        account = self.obligor(p.obligor)
        prev, last = account.previous_overdue_at, account.last_overdue_at
        earliest, latest = prev, last
        if at >= last:
            latest = at
            account.previous_overdue_at, account.last_overdue_at = last, at
        elif at > prev:
            account.previous_overdue_at = at
        else:
            earliest = at
        third = prev != 0 and latest - earliest <= self.parameters.overdue_window
        if third:
            self._suspend_for_overdue(p.obligor)
        self._touch_payable(p)

    def overdue_from(self, p: Payable) -> int:
        """``overdueFrom``: due date + grace + the seconds from the due date to now in which
        the platform was paused or any piece of the payable frozen (their union)."""
        spans = [*p.freeze_spans, *self.pause_spans]
        if p.frozen_pieces:
            spans.append((p.frozen_since, self.now))
        if self.paused:
            spans.append((self.paused_since, self.now))
        stood, reached = 0, p.due_date
        for start, end in sorted(spans):
            start = max(start, reached)
            if end > start:
                stood += end - start
                reached = end
        return p.due_date + self.parameters.grace_period + stood

    # ---------------------------------------------------------------- ClaimLedger: pieces

    def _claim_of(self, claim_id: int) -> Claim:
        c = self.claims.get(claim_id)
        if c is None:
            raise ModelRevert("ClaimNotFound", claim_id=claim_id)
        return c

    def _require_movable(self, c: Claim) -> None:
        """``_requireMovable``: live, not frozen, before the due date (I-7)."""
        if not c.live:
            raise ModelRevert("ClaimNotLive", claim_id=c.id, status=c.status)
        if c.frozen:
            raise ModelRevert("ClaimIsFrozen", claim_id=c.id)
        due = self.payables[c.payable_id].due_date
        if self.now >= due:
            raise ModelRevert("ClaimPastDueDate", claim_id=c.id, due_date=due)

    def _release_exposure(self, financier: str, obligor: str, value: int) -> None:
        """``FinancingDesk.releaseExposure``: a financed value was settled or passed on."""
        e = self.exposure(financier, obligor)
        assert e.outstanding >= value, "the rules never release more exposure than booked"
        e.outstanding -= value
        self.touched.exposures.add((financier, obligor))

    def _mint_split(
        self,
        parent: Claim,
        holder: str,
        to: str,
        value: int,
        *,
        financed: bool,
        invoice_id: bytes,
    ) -> int:
        """``_mintSplit``: a new piece of ``value`` for ``to``, child of ``parent``."""
        if parent.depth == UINT16_MAX:
            raise ModelRevert("ClaimDepthExceeded", claim_id=parent.id)
        if parent.depth == 0:
            parent.touched = True
        claim_id = len(self.claims) + 1
        parent.value -= value
        self.claims[claim_id] = Claim(
            claim_id, parent.payable_id, parent.id, parent.depth + 1, to, value, financed=financed
        )
        self._use_trade_invoice(
            invoice_id, seller=to, buyer=holder, value=value, trade=not financed
        )
        self.touched.claims.update((parent.id, claim_id))
        self.touched.payables.add(parent.payable_id)
        return claim_id

    @transaction
    def split(
        self,
        caller: str,
        from_id: int,
        to: str,
        value: int,
        invoice_id: bytes = ZERO_HASH,
        *,
        standard: bool = False,
    ) -> int:
        """``split`` (and, ``standard``, ERC-3525 ``transferFrom(id, to, value)``: a transfer
        of the whole value passes the piece itself, as ``transferFrom(holder, to, id)``)."""
        c = self._claim_of(from_id)
        if standard and value != 0 and value == c.value:
            self.transfer(caller, from_id, to, from_=c.holder)
            return from_id
        holder = c.holder
        if holder != caller:
            raise ModelRevert("ClaimNotHolder", claim_id=from_id, caller=caller)
        self._require_movable(c)
        if to in (holder, ZERO):
            raise ModelRevert("ClaimRecipientInvalid", recipient=to)
        self.require_transfer(holder, to)
        if value == 0:
            raise ModelRevert("ClaimAmountInvalid", amount=value)
        if value > c.available:
            raise ModelRevert(
                "ClaimAmountExceedsAvailable", claim_id=from_id, available=c.available
            )
        if value == c.value:  # a whole piece moves by transferClaim
            raise ModelRevert("ClaimAmountInvalid", amount=value)
        if c.financed:
            self._release_exposure(holder, self.payables[c.payable_id].obligor, value)
        return self._mint_split(c, holder, to, value, financed=False, invoice_id=invoice_id)

    @transaction
    def transfer(
        self,
        caller: str,
        claim_id: int,
        to: str,
        invoice_id: bytes = ZERO_HASH,
        *,
        from_: str | None = None,
    ) -> None:
        """``transferClaim`` (``from_`` None) or ERC-721 ``[safe]transferFrom(from_, to, id)``."""
        from_ = caller if from_ is None else from_
        c = self._claim_of(claim_id)
        holder = c.holder
        if holder != caller or from_ != holder:
            raise ModelRevert("ClaimNotHolder", claim_id=claim_id, caller=caller)
        self._require_movable(c)
        if to in (holder, ZERO):
            raise ModelRevert("ClaimRecipientInvalid", recipient=to)
        self.require_transfer(holder, to)
        if c.locked:
            raise ModelRevert("ClaimValueLocked", claim_id=claim_id, locked=c.locked)
        if c.depth == 0:
            c.touched = True
        if c.financed:
            c.financed = False
            self._release_exposure(holder, self.payables[c.payable_id].obligor, c.value)
        c.holder = to
        self._use_trade_invoice(invoice_id, seller=to, buyer=holder, value=c.value, trade=True)
        self.touched.claims.add(claim_id)

    @transaction
    def freeze(self, caller: str, claim_id: int) -> None:
        if not self.has_role(caller, OPERATOR):
            raise ModelRevert("LedgerCallerUnauthorized", caller=caller)
        c = self._claim_of(claim_id)
        if not c.live:
            raise ModelRevert("ClaimNotLive", claim_id=claim_id, status=c.status)
        if c.frozen:
            raise ModelRevert("ClaimIsFrozen", claim_id=claim_id)
        c.frozen = True
        p = self.payables[c.payable_id]
        if p.frozen_pieces == 0:
            p.frozen_since = self.now
        p.frozen_pieces += 1
        self.touched.claims.add(claim_id)
        self._touch_payable(p)

    @transaction
    def unfreeze(self, caller: str, claim_id: int) -> None:
        if not self.has_role(caller, OPERATOR):
            raise ModelRevert("LedgerCallerUnauthorized", caller=caller)
        c = self._claim_of(claim_id)
        if not c.frozen:
            raise ModelRevert("ClaimNotFrozen", claim_id=claim_id)
        c.frozen = False
        p = self.payables[c.payable_id]
        p.frozen_pieces -= 1
        if p.frozen_pieces == 0:
            p.freeze_spans.append((p.frozen_since, self.now))
        self.touched.claims.add(claim_id)
        self._touch_payable(p)

    # ---------------------------------------------------------------- ClaimLedger: settlement

    def _settle(self, caller: str, claim_id: int, payment_ref: bytes) -> None:
        if payment_ref == ZERO_HASH:
            raise ModelRevert("SettlementReferenceInvalid")
        c = self._claim_of(claim_id)
        if not c.live:
            raise ModelRevert("ClaimNotLive", claim_id=claim_id, status=c.status)
        if c.frozen:
            raise ModelRevert("ClaimIsFrozen", claim_id=claim_id)
        p = self.payables[c.payable_id]
        if caller != p.obligor:
            # a clearing agent settles only while an active one (never the payable's supplier:
            # issue_payable refuses that), and never a piece it holds itself
            if caller != p.clearing_agent:
                raise ModelRevert("PayableNotSettler", payable_id=p.id, caller=caller)
            if c.holder == caller:
                raise ModelRevert("ClaimSettlerIsHolder", claim_id=claim_id, clearing_agent=caller)
            self.require_active(caller, CLEARING_AGENT)
        if self.now < p.due_date:
            raise ModelRevert("PayableNotDue", payable_id=p.id, due_date=p.due_date)
        # Locked → Settled is no transition: expire the (necessarily lapsed) application first
        if c.locked:
            raise ModelRevert("ClaimValueLocked", claim_id=claim_id, locked=c.locked)
        # one bank payment pays one holder for one payable (more of its pieces: the same ref)
        paid = self.payment_refs.setdefault(payment_ref, (c.holder, p.id))
        if paid != (c.holder, p.id):
            raise ModelRevert("SettlementReferenceUsed", payable_id=paid[1])
        c.settled = True
        p.settled_value += c.value
        self.obligor(p.obligor).outstanding -= c.value
        if c.financed:
            self._release_exposure(c.holder, p.obligor, c.value)
        if p.settled_value == p.face_value:
            p.status = PayableStatus.SETTLED
        self.touched.claims.add(claim_id)
        self._touch_payable(p)

    @transaction
    def settle(self, caller: str, claim_id: int, payment_ref: bytes) -> None:
        self._require_not_paused()
        self._settle(caller, claim_id, payment_ref)

    @transaction
    def settle_batch(
        self, caller: str, claim_ids: Sequence[int], payment_refs: Sequence[bytes]
    ) -> None:
        """``settleClaims``: up to the batch cap, all or nothing, in list order."""
        self._require_not_paused()
        n = len(claim_ids)
        if n == 0 or n > self.parameters.max_settlement_batch or len(payment_refs) != n:
            raise ModelRevert("SettlementBatchInvalid", length=n)
        for claim_id, ref in zip(claim_ids, payment_refs, strict=True):
            self._settle(caller, claim_id, ref)

    # ---------------------------------------------------------------- FinancingDesk

    def _pending(self, financing_id: int) -> Financing:
        f = self.financings.get(financing_id)
        if f is None:
            raise ModelRevert("FinancingNotFound", financing_id=financing_id)
        if f.status != FinancingStatus.APPLIED:
            raise ModelRevert("FinancingNotPending", financing_id=financing_id, status=f.status)
        return f

    def _unlock(self, f: Financing) -> None:
        """``unlockFromFinancing``: no checks, the lock simply goes."""
        self.claims[f.claim_id].locked -= f.amount
        self.touched.claims.add(f.claim_id)
        self.touched.financings.add(f.id)

    @transaction
    def set_exposure_limit(self, caller: str, obligor: str, limit: int) -> None:
        self.require_active(caller, FINANCIER)
        self.exposure(caller, obligor).limit = limit
        self.touched.exposures.add((caller, obligor))

    @transaction
    def apply(
        self,
        caller: str,
        claim_id: int,
        financier: str,
        amount: int,
        expires_at: int,
        min_advance: int = 0,
        recourse: bool = False,
    ) -> int:
        """``applyForFinancing``; returns the financing id."""
        if financier == caller:
            raise ModelRevert("FinancingFinancierInvalid", financier=financier)
        self.require_transfer(caller, financier)
        self.require_active(financier, FINANCIER)
        if amount == 0:
            raise ModelRevert("FinancingAmountInvalid", amount=amount)
        if min_advance > amount:
            raise ModelRevert("FinancingMinAdvanceInvalid", min_advance=min_advance, amount=amount)
        # ClaimLedger.lockForFinancing
        c = self._claim_of(claim_id)
        if c.holder != caller:
            raise ModelRevert("ClaimNotHolder", claim_id=claim_id, caller=caller)
        self._require_movable(c)
        if amount > c.available:
            raise ModelRevert(
                "ClaimAmountExceedsAvailable", claim_id=claim_id, available=c.available
            )
        if c.depth == 0:
            c.touched = True
        c.locked += amount
        p = self.payables[c.payable_id]
        # back in the desk
        if expires_at <= self.now or expires_at >= p.due_date:
            raise ModelRevert("FinancingExpiryInvalid", expires_at=expires_at, due_date=p.due_date)
        financing_id = len(self.financings) + 1
        self.financings[financing_id] = Financing(
            financing_id,
            claim_id,
            caller,
            financier,
            p.obligor,
            amount,
            expires_at,
            min_advance=min_advance,
            recourse=recourse,
        )
        self.touched.claims.add(claim_id)
        self.touched.financings.add(financing_id)
        return financing_id

    @transaction
    def approve(self, caller: str, financing_id: int, terms: Terms) -> int:
        """``approveFinancing``; returns the financed piece id."""
        f = self._pending(financing_id)
        if caller != f.financier:
            raise ModelRevert("FinancingNotFinancier", financing_id=financing_id, caller=caller)
        self.require_active(caller, FINANCIER)
        # the applicant must still be in good standing when the money moves to it
        self.require_member(f.applicant)
        if self.now >= f.expires_at:
            raise ModelRevert("FinancingHasExpired", financing_id=financing_id)
        # the applicant's committed terms (I-12)
        if terms.advance < f.min_advance:
            raise ModelRevert("FinancingAdvanceBelowMinimum", financing_id=financing_id)
        if terms.recourse != f.recourse:
            raise ModelRevert("FinancingRecourseMismatch", financing_id=financing_id)
        # _checkTerms: I-5 bounds, the registration number, the discount convention
        if terms.advance == 0 or terms.advance + terms.discount + terms.fees != f.amount:
            raise ModelRevert("FinancingTermsInvalid", amount=f.amount)
        if self.parameters.registration_required and terms.registration_no == ZERO_HASH:
            raise ModelRevert("FinancingRegistrationRequired", financing_id=financing_id)
        days = days_to_maturity(
            self.payables[self.claims[f.claim_id].payable_id].due_date, self.now
        )
        if terms.term_days > days or terms.term_days + 1 < days:
            raise ModelRevert("FinancingTermDaysInvalid", term_days=terms.term_days, days=days)
        expected = discount_for(f.amount, terms.annual_rate_bps, terms.term_days)
        if terms.discount != expected:
            raise ModelRevert(
                "FinancingDiscountInvalid", discount=terms.discount, expected=expected
            )
        # _bookExposure
        e = self.exposure(caller, f.obligor)
        if e.outstanding + f.amount > e.limit:
            raise ModelRevert("FinancingExposureExceeded", exposure=e.outstanding + f.amount)
        e.outstanding += f.amount
        self.touched.exposures.add((caller, f.obligor))
        # _useReferences: a registration number / disbursement reference backs one financing
        if terms.registration_no != ZERO_HASH:
            if terms.registration_no in self.registrations:
                raise ModelRevert("FinancingRegistrationUsed", financing_id=financing_id)
            self.registrations[terms.registration_no] = financing_id
        if terms.disbursement_ref != ZERO_HASH:
            if terms.disbursement_ref in self.disbursements:
                raise ModelRevert("FinancingDisbursementUsed", financing_id=financing_id)
            self.disbursements[terms.disbursement_ref] = financing_id
        f.status = FinancingStatus.APPROVED
        f.terms = terms
        # ClaimLedger.financeLocked: the locked amount moves to the financier
        c = self._claim_of(f.claim_id)
        self._require_movable(c)
        c.locked -= f.amount
        holder = c.holder
        if c.financed:
            self._release_exposure(holder, self.payables[c.payable_id].obligor, f.amount)
        if f.amount == c.value:
            c.holder = caller
            c.financed = True
            f.financed_claim_id = c.id
            self.touched.claims.add(c.id)
        else:
            f.financed_claim_id = self._mint_split(
                c, holder, caller, f.amount, financed=True, invoice_id=ZERO_HASH
            )
        self.touched.financings.add(financing_id)
        return f.financed_claim_id

    @transaction
    def reject(self, caller: str, financing_id: int) -> None:
        self._require_not_paused()
        f = self._pending(financing_id)
        if caller != f.financier:
            raise ModelRevert("FinancingNotFinancier", financing_id=financing_id, caller=caller)
        f.status = FinancingStatus.REJECTED
        self._unlock(f)

    @transaction
    def withdraw(self, caller: str, financing_id: int) -> None:
        self._require_not_paused()
        f = self._pending(financing_id)
        if caller != f.applicant:
            raise ModelRevert("FinancingNotApplicant", financing_id=financing_id, caller=caller)
        f.status = FinancingStatus.WITHDRAWN
        self._unlock(f)

    @transaction
    def expire(self, caller: str, financing_id: int) -> None:
        del caller  # anyone may
        self._require_not_paused()
        f = self._pending(financing_id)
        if self.now < f.expires_at:
            raise ModelRevert("FinancingNotExpired", financing_id=financing_id)
        f.status = FinancingStatus.EXPIRED
        self._unlock(f)

    # ---------------------------------------------------------------- reading the model

    def take_touched(self) -> Touched:
        touched, self.touched = self.touched, Touched()
        return touched

    def pieces_of(self, payable_id: int) -> list[Claim]:
        return [c for c in self.claims.values() if c.payable_id == payable_id]

    def piece_count(self, account: str) -> int:
        """ERC-721 ``balanceOf``: pieces held, settled ones included, cancelled ones not."""
        return sum(1 for c in self.claims.values() if c.holder == account and not c.cancelled)

    def check_invariants(self) -> None:
        """SPEC §3 invariants the rules themselves must keep (no chain involved)."""
        for p in self.payables.values():
            pieces = self.pieces_of(p.id)
            live = [c for c in pieces if c.live]
            # I-1 conservation; no piece of value 0
            if p.status == PayableStatus.CANCELLED:
                assert not live, p
                assert p.settled_value == 0, p
            else:
                assert sum(c.value for c in live) + p.settled_value == p.face_value, p
            assert all(c.value > 0 for c in pieces), p
            assert (p.status == PayableStatus.SETTLED) == (p.settled_value == p.face_value), p
            # I-2: face ≤ the invoices backing it, which are Used while the payable stands
            invoices = [self.invoices[i] for i in p.invoice_ids]
            assert p.face_value <= sum(inv.amount for inv in invoices), p
            if p.status != PayableStatus.CANCELLED:
                assert all(inv.status == InvoiceStatus.USED for inv in invoices), p
        # I-3: an invoice backs at most one standing payable
        backing = [
            i
            for p in self.payables.values()
            if p.status != PayableStatus.CANCELLED
            for i in p.invoice_ids
        ]
        assert len(backing) == len(set(backing)), "an invoice backs two payables"
        # I-2: each obligor's outstanding face value is what it issued minus what it paid
        for obligor, account in self.obligors.items():
            owed = sum(
                p.face_value - p.settled_value
                for p in self.payables.values()
                if p.obligor == obligor and p.status != PayableStatus.CANCELLED
            )
            assert account.outstanding == owed, (obligor, account, owed)
        # I-4: locked value is exactly what pending applications hold; financed pieces are
        # held by financiers, and each financier's exposure is what it holds financed
        pending: dict[int, int] = {}
        for f in self.financings.values():
            if f.status == FinancingStatus.APPLIED:
                pending[f.claim_id] = pending.get(f.claim_id, 0) + f.amount
        for c in self.claims.values():
            assert c.locked == pending.get(c.id, 0), c
            assert 0 <= c.locked <= c.value, c
            if c.financed and c.live:
                assert self.has_role(c.holder, FINANCIER), c
        held: dict[tuple[str, str], int] = {}
        for c in self.claims.values():
            if c.financed and c.live:
                key = (c.holder, self.payables[c.payable_id].obligor)
                held[key] = held.get(key, 0) + c.value
        for key, e in self.exposures.items():
            assert e.outstanding == held.get(key, 0), (key, e, held.get(key, 0))
        # I-8: Settled, Cancelled, Voided (and a closed application) never change again
        final: list[tuple[tuple[str, Any], Any]] = [
            *((("claim", c.id), c) for c in self.claims.values() if not c.live),
            *((("payable", p.id), p) for p in self.payables.values()
              if p.status in (PayableStatus.SETTLED, PayableStatus.CANCELLED)),
            *((("invoice", i.id), i) for i in self.invoices.values()
              if i.status == InvoiceStatus.VOIDED),
            *((("financing", f.id), f) for f in self.financings.values()
              if f.status != FinancingStatus.APPLIED),
        ]  # fmt: skip
        for key, obj in final:
            first = self.finals.setdefault(key, copy.deepcopy(obj))
            assert obj == first, f"{key} left its terminal state: {first} -> {obj}"
        # I-5 on every approved financing
        for f in self.financings.values():
            if f.status == FinancingStatus.APPROVED:
                assert f.terms is not None
                assert 0 < f.terms.advance <= f.amount
                assert f.terms.advance + f.terms.discount + f.terms.fees == f.amount
