"""Financing: requests (apply, approve, reject, withdraw, expire), quotes, and a financier's
credit lines and auto-approval policy.

Text fields that go on chain as ``bytes32``:

- ``registration_no`` (the financing's number in the national registry, 中登网登记编号) is
  1..32 bytes of UTF-8, stored left-aligned and zero-padded, so it reads back as the same
  text (a value the API did not write and cannot read as text is shown as 0x-hex);
- ``disbursement_ref`` (the bank's reference of the payout) and a rejection ``reason`` are
  kept as their SHA-256, like payment references: bank references stay off the shared ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from backend.schemas.common import (
    Address,
    Amount,
    Hash32,
    Id,
    Input,
    Output,
    PositiveAmount,
    Timestamp,
    WriteResult,
)

FinancingStatus = Literal["applied", "approved", "rejected", "withdrawn", "expired"]
#: Largest annual rate a policy or an approval takes (1,000 % a year): far above any real one,
#: well inside the contract's uint32.
MAX_RATE_BPS = 10_000_000
#: Longest tenor a policy may name (the contract's termDays is a uint16; terms cap at 10 years).
MAX_TENOR_DAYS = 3650
#: Bytes a registration number may take on chain.
REGISTRATION_MAX_BYTES = 32

RateBps = Field(ge=0, le=MAX_RATE_BPS, description="annual rate in basis points (600 = 6 %)")


def _registration(value: str) -> str:
    raw = value.encode()
    if not 1 <= len(raw) <= REGISTRATION_MAX_BYTES:
        raise ValueError(f"a registration number is 1 to {REGISTRATION_MAX_BYTES} bytes of UTF-8")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("a registration number has no control characters")
    return value


RegistrationText = Annotated[
    str,
    AfterValidator(_registration),
    Field(
        min_length=1,
        max_length=REGISTRATION_MAX_BYTES,
        description="number in the national registry (中登网登记编号): 1 to 32 bytes of UTF-8, "
        "kept on chain left-aligned in a bytes32",
        examples=["0456789000012345678A"],
    ),
]


def _chain_time(value: datetime) -> datetime:
    """A time the chain can take (a naive one is read as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not 0 < value.timestamp() < 2**40:
        raise ValueError("the time is outside what the ledger records")
    return value


ChainTime = Annotated[datetime, AfterValidator(_chain_time)]


# -- requests ---------------------------------------------------------------------------------


class FinancingApply(Input):
    claim_id: Id = Field(description="the piece to finance part of (the caller holds it)")
    financier: Address
    amount: PositiveAmount
    expires_at: ChainTime | None = Field(
        default=None,
        description="when the application lapses; default: 7 days from now, or an hour "
        "before the due date if that is sooner (it must lie before the due date)",
    )
    min_advance: Amount | None = Field(
        default=None,
        description="the least advance (fen) the applicant accepts, committed on chain: an "
        "approval that gives less is refused. Default: the advance of the quote "
        "(GET /v1/financing-quotes) at the financier's current policy; 0 when the "
        "financier has no policy. At most the amount",
    )
    recourse: bool | None = Field(
        default=None,
        description="the recourse the applicant accepts, committed on chain: an approval with "
        "other recourse is refused. Default: the financier's policy's (false without one)",
    )


class FinancingApprove(Input):
    """Either the terms themselves (``advance``, ``discount``, ``fees``) or ``annual_rate_bps``
    and ``fees``, from which the API computes the discount by the contract's convention and
    the advance as the rest."""

    annual_rate_bps: int | None = Field(
        default=None,
        ge=0,
        le=MAX_RATE_BPS,
        description="annual rate in basis points; default: the financier's policy rate",
    )
    fees: Amount = 0
    advance: PositiveAmount | None = None
    discount: Amount | None = None
    term_days: int | None = Field(
        default=None,
        ge=0,
        le=65_535,
        description="days the discount is counted over; default: the days to maturity "
        "(rounded up) that matches the given discount",
    )
    recourse: bool | None = Field(
        default=None,
        description="default: the recourse the applicant committed to (other recourse is "
        "refused by the chain)",
    )
    registration_no: RegistrationText | None = Field(
        default=None,
        description="the financing's number in the national registry; a number backs one "
        "financing only. Default: the credit line's programme number followed by "
        "`-<financing id>` (refused when that is over 32 bytes)",
    )
    disbursement_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the bank disbursement's reference (kept on chain as its SHA-256)",
    )

    @model_validator(mode="after")
    def _both_or_neither(self) -> FinancingApprove:
        if (self.advance is None) != (self.discount is None):
            raise ValueError("give advance and discount together, or neither")
        return self


class FinancingReject(Input):
    reason: str = Field(min_length=1, max_length=500, description="kept as its SHA-256 on chain")


class AutoDecisionPublic(Output):
    outcome: Literal["claimed", "approved", "declined", "failed", "awaiting_signature"] = Field(
        description="claimed: being approved now; declined: left for a person (see detail); "
        "awaiting_signature: prepared as an intent for a self-custody financier's own signer"
    )
    detail: str | None
    tx_hash: Hash32 | None
    decided_at: Timestamp


class FinancingPublic(Output):
    id: int
    claim_id: int
    applicant: Address
    financier: Address
    obligor: Address
    amount: int
    status: FinancingStatus
    expires_at: Timestamp
    min_advance: int = Field(description="the least advance the applicant committed to accept")
    advance: int | None = Field(description="set on approval")
    discount: int | None
    fees: int | None
    annual_rate_bps: int | None
    recourse: bool = Field(
        description="the recourse the applicant committed to (the approval has the same)"
    )
    registration_no: str | None
    disbursement_ref: Hash32 | None = Field(description="SHA-256 of the bank reference")
    financed_claim_id: int | None = Field(description="the piece the financier received")
    reason_hash: Hash32 | None = Field(description="SHA-256 of a rejection's reason")
    auto_decision: AutoDecisionPublic | None = Field(
        description="what the financier's auto-approval did with it, and why"
    )


class FinancingsPublic(Output):
    items: list[FinancingPublic]
    next_cursor: str | None = None


class FinancingWrite(FinancingPublic, WriteResult):
    """A financing request after a write."""


# -- quotes -----------------------------------------------------------------------------------


class AutoApprovalOutlook(Output):
    would_approve: bool
    reason: str | None = Field(description="why not, when it would not")


class QuotePublic(Output):
    claim_id: int
    financier: Address
    obligor: Address
    amount: int
    annual_rate_bps: int
    fee_bps: int
    term_days: int = Field(description="days to maturity, rounded up, at `valid_until`")
    due_date: Timestamp
    discount: int = Field(description="ceil(amount × annual_rate_bps × term_days / 3,600,000)")
    fees: int = Field(description="ceil(amount × fee_bps / 10,000)")
    advance: int = Field(description="amount − discount − fees: the cash the supplier gets")
    available: int = Field(description="the piece's value not locked by other applications")
    quoted_at: Timestamp = Field(description="the chain's time the quote was made at")
    valid_until: Timestamp = Field(description="the terms stay what the chain accepts until")
    auto_approval: AutoApprovalOutlook


# -- financier settings -----------------------------------------------------------------------


class CreditLineRequest(Input):
    limit: Amount = Field(description="the exposure limit for this obligor (on chain)")
    registration_no: RegistrationText | None = None


class CreditLinePublic(Output):
    financier: Address
    obligor: Address
    limit: int = Field(description="the exposure limit on chain")
    outstanding: int = Field(description="financed value outstanding on this obligor")
    available: int
    over_limit: bool = Field(
        description="outstanding above the limit (a limit may be lowered below it): no "
        "approval on this obligor until it is back under"
    )
    registration_no: str | None
    updated_at: Timestamp | None


class CreditLinesPublic(Output):
    items: list[CreditLinePublic]
    next_cursor: str | None = None


class CreditLineWrite(CreditLinePublic, WriteResult):
    """A credit line after its limit was set on chain."""


class PolicyRequest(Input):
    enabled: bool
    max_amount: Amount = Field(description="largest amount approved automatically")
    max_tenor_days: int = Field(ge=0, le=MAX_TENOR_DAYS, description="longest term, in days")
    allowed_obligors: list[Address] = Field(
        default_factory=list,
        max_length=200,
        description="obligors whose paper is approved automatically (empty: none)",
    )
    annual_rate_bps: int = RateBps
    fee_bps: int = Field(ge=0, le=10_000, description="fees as basis points of the amount")
    recourse: bool = False

    @field_validator("allowed_obligors")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return sorted(set(value))


class PolicyPublic(Output):
    financier: Address
    enabled: bool
    max_amount: int
    max_tenor_days: int
    allowed_obligors: list[Address]
    annual_rate_bps: int
    fee_bps: int
    recourse: bool
    updated_at: Timestamp
