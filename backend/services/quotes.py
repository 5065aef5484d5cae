"""Pricing a financing the way FinancingDesk checks it, the quote a supplier sees before it
applies, and whether a financier's auto-approval policy would take a request.

The convention is the contract's (``FinancingDesk.discountFor``)::

    discount = ceil(amount × annual_rate_bps × term_days / 3,600,000)   # face × rate × days / 360
    fees     = ceil(amount × fee_bps / 10,000)                          # the policy's fee share
    advance  = amount − discount − fees                                 # the cash paid out

Both round up, in the financier's favour by less than one minor unit (SPEC §2).

Term days. The desk accepts ``termDays`` equal to the days to maturity *at mining*, rounded
up, or one less (:func:`days_to_maturity`). Pricing at ``now + v`` (``v`` ≤ one day) gives a
``T`` with ``D(t) ∈ {T, T + 1}`` for every mining time ``t`` in ``[now, now + v]`` (``D`` only
falls, and by at most one over ``v``), so the terms are accepted for ``v`` seconds: quotes
use :data:`QUOTE_VALIDITY_S` (``valid_until``), the API's own approvals
:data:`APPROVAL_MARGIN_S`. Times are the chain's (the latest block), never the host's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import Conflict, Invalid
from backend.models import CreditLine, FinancingPolicy
from backend.ports import Ports
from backend.schemas.common import iso
from backend.services.visibility import require_claim
from indexer import models as mirror
from ledger.calls import Terms
from ledger.deployment import DAY
from ledger.roles import Role

#: 360-day year, rate in basis points (the contract's ``_DISCOUNT_DENOMINATOR``).
DISCOUNT_DENOMINATOR = 360 * 10_000
BPS = 10_000
#: How long a quote's terms stay what the desk accepts.
QUOTE_VALIDITY_S = 600
#: The horizon the API prices its own approvals for (they are mined within seconds).
APPROVAL_MARGIN_S = 60


def days_to_maturity(due_date: int, at: int) -> int:
    """``ceil((due − at) / 1 day)``, as FinancingDesk counts it (0 once due)."""
    return max(0, -(-(due_date - at) // DAY))


def discount_for(amount: int, annual_rate_bps: int, term_days: int) -> int:
    """``FinancingDesk.discountFor``: ``ceil(amount × bps × days / 3,600,000)``."""
    return -(-(amount * annual_rate_bps * term_days) // DISCOUNT_DENOMINATOR)


def fees_for(amount: int, fee_bps: int) -> int:
    """``ceil(amount × fee_bps / 10,000)``: fees round up, like the discount."""
    return -(-(amount * fee_bps) // BPS)


@dataclass(frozen=True)
class Pricing:
    amount: int
    annual_rate_bps: int
    term_days: int
    discount: int
    fees: int

    @property
    def advance(self) -> int:
        return self.amount - self.discount - self.fees

    def require_advance(self) -> None:
        """The desk takes ``0 < advance``; a negative one cannot even be encoded."""
        if self.advance <= 0:
            raise Invalid(
                "the discount and fees take the whole amount: nothing would be advanced",
                code="terms_invalid",
                extra={"discount": self.discount, "fees": self.fees},
            )

    def terms(self, recourse: bool, registration_no: bytes, disbursement_ref: bytes) -> Terms:
        """The ``IFinancingDesk.Terms`` of this pricing."""
        return Terms(
            self.advance,
            self.discount,
            self.fees,
            self.annual_rate_bps,
            self.term_days,
            recourse,
            registration_no,
            disbursement_ref,
        )


def price(
    amount: int, annual_rate_bps: int, fees: int, due_date: int, at: int, term_days: int | None
) -> Pricing:
    """Terms for ``amount`` at ``annual_rate_bps`` with ``fees``, counted to ``at``."""
    days = days_to_maturity(due_date, at) if term_days is None else term_days
    return Pricing(amount, annual_rate_bps, days, discount_for(amount, annual_rate_bps, days), fees)


def price_at_least(
    amount: int, annual_rate_bps: int, fees: int, due_date: int, now: int, min_advance: int
) -> Pricing:
    """:func:`price` for mining within :data:`APPROVAL_MARGIN_S` of ``now``, on the shorter
    term the desk also accepts when the longer one would advance less than ``min_advance``.

    The desk takes ``termDays`` = D(t) or D(t) − 1 (D: days to maturity at mining t). With no
    day boundary in [now, now + margin] D is constant, so D − 1 is accepted throughout; that is
    what lets an approval honour an application whose ``min_advance`` is the quote's advance
    (priced up to :data:`QUOTE_VALIDITY_S` ahead, so possibly one day shorter)."""
    pricing = price(amount, annual_rate_bps, fees, due_date, now + APPROVAL_MARGIN_S, None)
    if pricing.advance >= min_advance or pricing.term_days == 0:
        return pricing
    if days_to_maturity(due_date, now) != pricing.term_days:
        return pricing  # a day boundary within the margin: only D is safe
    return price(amount, annual_rate_bps, fees, due_date, now, pricing.term_days - 1)


#: A financier's policy: a :class:`FinancingPolicy`, or a Core row of its columns (read by
#: name). (``Any``: SQLAlchemy types a row by its columns' types.)
PolicyRow: TypeAlias = Any


def default_min_advance(policy: PolicyRow | None, amount: int, due_date: int, now: int) -> int:
    """The least advance an application commits to when the applicant names none: the
    advance of the quote (:func:`quote`) at the financier's current policy, so a supplier who
    applies from a quote gets what it saw; 0 when the financier has no policy (no quote)."""
    if policy is None:
        return 0
    valid_until = min(now + QUOTE_VALIDITY_S, due_date)
    fees = fees_for(amount, policy.fee_bps)
    pricing = price(amount, policy.annual_rate_bps, fees, due_date, valid_until, term_days=None)
    return max(pricing.advance, 0)


def matching_term_days(
    amount: int, annual_rate_bps: int, discount: int, due_date: int, now: int
) -> int:
    """The term a given discount was priced for: of the two the desk accepts around ``now``,
    the one whose discount matches (the later one first); neither: the later one, and the
    desk refuses the discount (``discount_invalid``)."""
    later = days_to_maturity(due_date, now + APPROVAL_MARGIN_S)
    for days in (later, later + 1):
        if discount_for(amount, annual_rate_bps, days) == discount:
            return days
    return later


# -- auto-approval outlook ------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    """Whether a financier's policy approves a request automatically, and with what."""

    approve: bool
    reason: str | None
    policy: FinancingPolicy | None = None
    registration_no: str | None = None


def _no(reason: str) -> Assessment:
    return Assessment(False, reason)


async def assess(
    session: AsyncSession,
    policy: FinancingPolicy | None,
    financier: str,
    obligor: str,
    amount: int,
    term_days: int,
) -> Assessment:
    """Apply ``policy``: amount ≤ its maximum, tenor ≤ its maximum, obligor allowed, a credit
    line with a registration number, and room under the exposure limit (the chain would
    refuse otherwise). Reasons do not disclose the policy's figures."""
    if policy is None:
        return _no("the financier has no auto-approval policy: a person decides")
    if not policy.enabled:
        return _no("the financier's auto-approval is off: a person decides")
    if amount > policy.max_amount:
        return _no("the amount is above what the financier approves automatically")
    if term_days > policy.max_tenor_days:
        return _no("the term is longer than the financier approves automatically")
    if obligor not in json.loads(policy.allowed_obligors):
        return _no("the financier does not approve this obligor's paper automatically")
    line = await session.get(CreditLine, (financier, obligor))
    if line is None or not line.registration_no:
        return _no("the financier has no credit line with a registration number for this obligor")
    exposure = await session.get(mirror.Exposure, (financier, obligor), populate_existing=True)
    outstanding, limit = (exposure.outstanding, exposure.exposure_limit) if exposure else (0, 0)
    if outstanding + amount > limit:
        return _no("the financier's exposure limit for this obligor would be exceeded")
    return Assessment(True, None, policy, line.registration_no)


# -- the quote ------------------------------------------------------------------------------


async def _require_financier(session: AsyncSession, financier: str) -> None:
    member = await session.get(mirror.Member, financier)
    if member is None or not member.roles & Role.FINANCIER.bit:
        raise Invalid(
            "the financier must be a member with the financier role", code="financier_invalid"
        )


async def quote(
    ports: Ports,
    caller: Caller,
    claim_id: int,
    amount: int,
    financier: str,
    annual_rate_bps: int | None,
    fee_bps: int | None,
) -> dict[str, Any]:
    """What financing ``amount`` of piece ``claim_id`` with ``financier`` costs now. No write."""
    async with ports.session() as session:
        claim = await require_claim(session, caller, claim_id)
        payable = await session.get(mirror.Payable, claim.payable_id)
        assert payable is not None  # the mirror writes a piece with its payable
        await _require_financier(session, financier)
        policy = await session.get(FinancingPolicy, financier)
    rate = annual_rate_bps
    if rate is None and policy is not None:
        rate = policy.annual_rate_bps
    if rate is None:
        raise Invalid(
            "the financier has no policy rate: give annual_rate_bps",
            code="annual_rate_required",
        )
    fee_share = fee_bps if fee_bps is not None else (policy.fee_bps if policy else 0)
    now = await ports.ledger.chain_time()
    if now >= claim.due_date:
        raise Conflict("the payable is due: pieces no longer move", code="past_due_date")
    valid_until = min(now + QUOTE_VALIDITY_S, claim.due_date)
    pricing = price(
        amount, rate, fees_for(amount, fee_share), claim.due_date, valid_until, term_days=None
    )
    pricing.require_advance()
    async with ports.session() as session:
        outlook = await assess(
            session, policy, financier, payable.obligor, amount, pricing.term_days
        )
    return {
        "claim_id": claim_id,
        "financier": financier,
        "obligor": payable.obligor,
        "amount": amount,
        "annual_rate_bps": rate,
        "fee_bps": fee_share,
        "term_days": pricing.term_days,
        "due_date": iso(claim.due_date),
        "discount": pricing.discount,
        "fees": pricing.fees,
        "advance": pricing.advance,
        "available": claim.amount - claim.locked_amount,
        "quoted_at": iso(now),
        "valid_until": iso(valid_until),
        "auto_approval": {"would_approve": outlook.approve, "reason": outlook.reason},
    }
