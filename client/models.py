"""The API's representations as the client reads them (SPEC §4): pydantic models of the
client's own, so a partner installs this package without the server's code.

Every model accepts fields it does not know (``extra="allow"``): the API may add fields
without breaking clients already deployed. Amounts are integers in minor units (fen), times
aware ``datetime`` in UTC, addresses 0x-checksummed strings, hashes 0x-hex strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiKey",
    "ApiKeyCreated",
    "AuditRecord",
    "AuditVerification",
    "AutoApprovalOutlook",
    "AutoDecision",
    "Claim",
    "ClaimEvent",
    "ClaimWrite",
    "CreditLine",
    "CreditLineWrite",
    "DeployedContract",
    "Deployment",
    "Difference",
    "Event",
    "Exposure",
    "Financing",
    "FinancingWrite",
    "Health",
    "Invoice",
    "InvoiceWrite",
    "Member",
    "MemberCreated",
    "MemberWrite",
    "Model",
    "OrganisationUser",
    "OrganisationUserCreated",
    "Page",
    "Payable",
    "PayableOverdueWrite",
    "PayableTree",
    "PayableWrite",
    "Policy",
    "ProgramLimit",
    "Quote",
    "Reconciliation",
    "Settlement",
    "SettlementsWrite",
    "TransferWrite",
    "TreeNode",
    "Webhook",
    "WebhookCreated",
    "WebhookDelivery",
    "WriteResult",
]

RoleName = Literal[
    "operator", "core_enterprise", "supplier", "financier", "clearing_agent", "auditor"
]


class Model(BaseModel):
    """Base of every representation: unknown fields are kept, not refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_cursor`` (None on the last page) asks for the next."""

    items: list[T]
    next_cursor: str | None = None


class WriteResult(Model):
    """What every executed write answers besides its objects."""

    tx_hash: str = Field(description="the (last) transaction of the write")
    block_number: int


# -- system ------------------------------------------------------------------------------------


class Health(Model):
    status: str
    chain_id: int
    head_block: int | None = None
    mirrored_block: int | None = None
    lag_blocks: int | None = None
    indexer_heartbeat_age_s: float | None = None
    reasons: list[str] = []


class DeployedContract(Model):
    address: str
    start_block: int


class Deployment(Model):
    """``GET /v1/deployment``: the chain id and where each contract is."""

    chain_id: int
    contracts: dict[str, DeployedContract]
    start_block: int


# -- members -----------------------------------------------------------------------------------


class Member(Model):
    address: str
    name: str | None = None
    roles: list[RoleName]
    status: str
    kyc_expires_at: datetime | None = None
    custody: Literal["self", "hosted"] | None = Field(
        default=None, description="who holds its key (SPEC §2); absent from older servers"
    )


class MemberCreated(Member, WriteResult):
    api_key: str | None = Field(
        description="the member's first API key: shown this once only (null on a replay)"
    )
    api_key_id: str


class MemberWrite(Member, WriteResult):
    """A member after a write (suspension, reinstatement, KYC renewal)."""


class ProgramLimit(WriteResult):
    obligor: str
    program_limit: int
    outstanding: int
    #: Outstanding above the limit (it was lowered below it): no new payable until back under.
    over_limit: bool = False


class ApiKey(Model):
    id: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKey):
    api_key: str | None = Field(description="shown this once only (null on a replay)")


class OrganisationUser(Model):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    """A person of a member organisation (SPEC §1): its own API key and a role."""

    id: str
    name: str | None = None
    role: Literal["maker", "checker"] | str
    created_at: datetime | None = None


class OrganisationUserCreated(OrganisationUser):
    api_key: str | None = Field(
        description="the user's API key: shown this once only (null on a replay)"
    )


# -- invoices ----------------------------------------------------------------------------------

InvoiceStatus = Literal["registered", "confirmed", "used", "voided"]


class Invoice(Model):
    id: str = Field(description="the fingerprint")
    seller: str
    buyer: str
    seller_tax_id: str | None = None
    invoice_code: str | None = None
    number: str | None = None
    amount: int
    issue_date: datetime
    document_sha256: str
    status: InvoiceStatus | str
    payable_id: int | None = None
    claim_id: int | None = None
    registered_block: int | None = None


class InvoiceWrite(Invoice, WriteResult):
    """An invoice after a write (registration, confirmation, voiding)."""


# -- payables and claims -----------------------------------------------------------------------

PayableStatus = Literal["issued", "overdue", "settled", "cancelled"]
ClaimStatus = Literal["active", "locked", "financed", "settled", "frozen", "cancelled"]


class Payable(Model):
    id: int
    obligor: str
    supplier: str
    face_value: int
    settled_value: int
    outstanding_value: int
    due_date: datetime
    issued_at: datetime
    invoice_ids: list[str]
    clearing_agent: str | None = None
    status: PayableStatus | str
    root_claim_id: int
    long_term: bool = False
    issued_block: int | None = None
    #: reads only: the chain's overdueFrom (None once settled or cancelled, and in write answers)
    overdue_from: datetime | None = None


class PayableWrite(Payable, WriteResult):
    """A payable after a write (issue, overdue, cancel)."""


class PayableOverdueWrite(PayableWrite):
    unsettled_value: int


class Settlement(Model):
    claim_id: int
    holder: str
    amount: int
    payment_ref_sha256: str


class SettlementsWrite(WriteResult):
    payable: Payable
    settlements: list[Settlement]
    payable_settled: bool


class TreeNode(Model):
    id: int
    parent_id: int | None = None
    depth: int
    holder: str
    amount: int
    locked_amount: int
    status: ClaimStatus | str
    invoice_id: str | None = None
    child_count: int
    truncated: bool
    children: list[TreeNode]


class PayableTree(Model):
    payable_id: int
    from_claim_id: int
    node_count: int
    root: TreeNode


class Claim(Model):
    id: int
    payable_id: int
    parent_id: int | None = None
    depth: int
    holder: str
    obligor: str | None = None
    amount: int
    locked_amount: int
    available_amount: int
    status: ClaimStatus | str
    frozen: bool
    financed: bool
    due_date: datetime
    invoice_id: str | None = None
    created_block: int | None = None


class ClaimWrite(Claim, WriteResult):
    """A piece after a write (freeze, unfreeze)."""


class TransferWrite(WriteResult):
    kind: Literal["split", "transfer"]
    claim_id: int = Field(description="the piece the recipient now holds")
    from_claim_id: int
    to: str
    amount: int
    claim: Claim
    source: Claim


class ClaimEvent(Model):
    block_number: int
    log_index: int
    block_time: datetime
    tx_hash: str
    contract: str
    event: str
    args: dict[str, Any]


# -- financing ---------------------------------------------------------------------------------

FinancingStatus = Literal["applied", "approved", "rejected", "withdrawn", "expired"]


class AutoDecision(Model):
    outcome: str
    detail: str | None = None
    tx_hash: str | None = None
    decided_at: datetime


class Financing(Model):
    id: int
    claim_id: int
    applicant: str
    financier: str
    obligor: str
    amount: int
    status: FinancingStatus | str
    expires_at: datetime
    min_advance: int | None = None
    advance: int | None = None
    discount: int | None = None
    fees: int | None = None
    annual_rate_bps: int | None = None
    recourse: bool | None = None
    registration_no: str | None = None
    disbursement_ref: str | None = None
    financed_claim_id: int | None = None
    reason_hash: str | None = None
    auto_decision: AutoDecision | None = None


class FinancingWrite(Financing, WriteResult):
    """A financing request after a write."""


class AutoApprovalOutlook(Model):
    would_approve: bool
    reason: str | None = None


class Quote(Model):
    claim_id: int
    financier: str
    obligor: str
    amount: int
    annual_rate_bps: int
    fee_bps: int
    term_days: int
    due_date: datetime
    discount: int
    fees: int
    advance: int
    available: int
    quoted_at: datetime
    valid_until: datetime
    auto_approval: AutoApprovalOutlook


class CreditLine(Model):
    financier: str
    obligor: str
    limit: int
    outstanding: int
    available: int
    registration_no: str | None = None
    updated_at: datetime | None = None
    #: Outstanding above the limit: no approval on this obligor until back under.
    over_limit: bool = False


class CreditLineWrite(CreditLine, WriteResult):
    """A credit line after its limit was set on chain."""


class Policy(Model):
    financier: str
    enabled: bool
    max_amount: int
    max_tenor_days: int
    allowed_obligors: list[str]
    annual_rate_bps: int
    fee_bps: int
    recourse: bool
    updated_at: datetime | None = None


# -- audit -------------------------------------------------------------------------------------


class Event(Model):
    block_number: int
    block_hash: str
    block_time: datetime
    tx_hash: str
    log_index: int
    contract: str
    event: str
    args: dict[str, Any]


class Exposure(Model):
    obligor: str
    obligor_name: str | None = None
    financier: str | None = None
    program_limit: int | None = None
    issued: int | None = None
    outstanding: int | None = None
    overdue: int | None = None
    financed: int
    exposure_limit: int | None = None
    #: Outstanding above the (program or exposure) limit of the row.
    over_limit: bool = False


class Difference(Model):
    kind: str
    key: str
    field: str
    mirror: Any = None
    chain: Any = None


class Reconciliation(Model):
    block_number: int
    block_hash: str
    checked: dict[str, int]
    ok: bool
    differences: list[Difference]
    differences_total: int


class AuditRecord(Model):
    seq: int
    at: str = Field(description="as stored (ISO 8601, UTC, milliseconds): part of the hash")
    member: str | None = None
    api_key_id: str | None = None
    method: str
    path: str
    status: int
    code: str | None = None
    idempotency_key: str | None = None
    request_sha256: str
    tx_hashes: list[str]
    prev_hash: str
    hash: str


class AuditVerification(Model):
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str | None = None


# -- webhooks ----------------------------------------------------------------------------------


class Webhook(Model):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: str
    url: str
    event_types: list[str]
    status: str | None = None
    failing_reason: str | None = None
    created_at: datetime | None = None


class WebhookCreated(Webhook):
    secret: str = Field(description="the signing secret: shown this once only")


class WebhookDelivery(Model):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: str
    event_id: str | None = None
    event_type: str | None = None
    status: str | None = None
    attempts: int | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    #: Every attempt: ``attempted_at``, ``latency_ms``, ``status_code``, ``error``, ``ok``.
    attempt_log: list[dict[str, Any]] = Field(default_factory=list)
