"""Financing requests: apply, approve, reject, withdraw, expire, and their reads. A
financier's settings are :mod:`~backend.services.credit_lines` and
:mod:`~backend.services.policy`. No FastAPI in here.

Every rule is the FinancingDesk's: the holder applies (the value locks at once), only the named
financier decides, terms satisfy ``advance + discount + fees = amount`` with the discount by
the convention of :mod:`backend.services.quotes`, the exposure stays under the limit. The API
prices, encodes and translates; the chain refuses (``ContractRevert`` → the mapped problem).

Encodings (:mod:`backend.services.encodings`): ``registration_no`` text ↔ a left-aligned,
zero-padded ``bytes32``; ``disbursement_ref`` and a rejection's reason → SHA-256.

The applicant commits on chain to ``min_advance`` and ``recourse`` when it applies (default:
the quote at the financier's current policy, :func:`quotes.default_min_advance`); the desk
refuses an approval below that advance or with other recourse. A registration number backs
one financing only: without one the approval takes the credit line's programme number with
the financing id appended (:func:`encodings.financing_registration`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import Invalid, NotFound
from backend.models import AutoDecision, CreditLine, FinancingPolicy
from backend.ports import Mined, Ports, WriteContext
from backend.schemas.common import iso
from backend.services import quotes
from backend.services.chain_clock import write_time
from backend.services.encodings import (
    decode_registration,
    encode_registration,
    financing_registration,
    text_hash,
)
from backend.services.visibility import (
    financings_clause,
    require_financing,
    visible_claim,
)
from db.types import table_of
from indexer import models as m
from indexer.handlers.financing import financing_from
from indexer.rows import as_record
from ledger import calls
from ledger.deployment import DAY

#: An application's default life: a week, but never closer than an hour to the due date.
DEFAULT_EXPIRY_S = 7 * DAY
EXPIRY_BEFORE_DUE_S = 3600


def default_expiry(now: int, due_date: int) -> int:
    """A week from ``now``, or an hour before the due date if sooner (the desk wants
    ``now < expiresAt < dueDate``; when even that is impossible it says so)."""
    expiry = min(now + DEFAULT_EXPIRY_S, due_date - EXPIRY_BEFORE_DUE_S)
    return expiry if expiry > now else due_date - 1


# -- representation -------------------------------------------------------------------------


def _decision_view(row: AutoDecision | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "outcome": row.outcome,
        "detail": row.detail,
        "tx_hash": row.tx_hash,
        "decided_at": iso(row.decided_at),
    }


def _view(row: m.Financing, decision: AutoDecision | None) -> dict[str, Any]:
    decided = row.status == "approved"
    return {
        "id": row.id,
        "claim_id": row.claim_id,
        "applicant": row.applicant,
        "financier": row.financier,
        "obligor": row.obligor,
        "amount": row.amount,
        "status": row.status,
        "expires_at": iso(row.expires_at),
        "min_advance": row.min_advance,
        "advance": row.advance if decided else None,
        "discount": row.discount if decided else None,
        "fees": row.fees if decided else None,
        "annual_rate_bps": row.annual_rate_bps if decided else None,
        "recourse": row.recourse,
        "registration_no": decode_registration(row.registration_no),
        "disbursement_ref": row.disbursement_ref,
        "financed_claim_id": row.financed_claim_id,
        "reason_hash": row.reason_hash,
        "auto_decision": _decision_view(decision),
    }


async def _views(session: AsyncSession, rows: Sequence[m.Financing]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    decisions: dict[int, AutoDecision] = {}
    if ids:
        found = await session.execute(
            select(AutoDecision)
            .where(AutoDecision.financing_id.in_(ids))
            .execution_options(populate_existing=True)
        )
        decisions = {d.financing_id: d for d in found.scalars()}
    return [_view(r, decisions.get(r.id)) for r in rows]


async def _fresh(session: AsyncSession, financing_id: int) -> m.Financing | None:
    # populate_existing: a row read before a write must show what the mirror says now.
    return await session.get(m.Financing, financing_id, populate_existing=True)


async def list_financings(
    session: AsyncSession,
    caller: Caller,
    after: int | None,
    limit: int,
    status: str | None = None,
    role: str | None = None,
    claim_id: int | None = None,
) -> list[dict[str, Any]]:
    """The requests the caller is party to (auditors and the operator: all), in id order."""
    query = (
        select(m.Financing).where(financings_clause(caller)).order_by(m.Financing.id).limit(limit)
    )
    if after is not None:
        query = query.where(m.Financing.id > after)
    if status is not None:
        query = query.where(m.Financing.status == status)
    if role == "applicant":
        query = query.where(m.Financing.applicant == caller.address)
    elif role == "financier":
        query = query.where(m.Financing.financier == caller.address)
    if claim_id is not None:
        query = query.where(m.Financing.claim_id == claim_id)
    rows = (await session.execute(query)).scalars().all()
    return await _views(session, rows)


async def get_financing(session: AsyncSession, caller: Caller, financing_id: int) -> dict[str, Any]:
    row = await require_financing(session, caller, financing_id)
    return (await _views(session, [row]))[0]


_FINANCINGS, _DECISIONS = table_of(m.Financing), table_of(AutoDecision)
_POLICIES = table_of(FinancingPolicy)

#: A financing with its auto-decision's columns (``decision_*``; ``None`` without one), in
#: one round trip. Built once, read as a Core row: a write's answer took two ORM loads.
_WRITTEN = (
    select(
        *_FINANCINGS.c,
        _DECISIONS.c.outcome.label("decision_outcome"),
        _DECISIONS.c.detail.label("decision_detail"),
        _DECISIONS.c.tx_hash.label("decision_tx_hash"),
        _DECISIONS.c.decided_at.label("decision_decided_at"),
    )
    .select_from(_FINANCINGS.outerjoin(_DECISIONS, _DECISIONS.c.financing_id == _FINANCINGS.c.id))
    .where(_FINANCINGS.c.id == bindparam("financing_id"))
)

#: A financier's policy (a Core row, its columns by name), built once.
_POLICY = select(*_POLICIES.c).where(_POLICIES.c.financier == bindparam("financier"))


def _written_view(row: Any) -> dict[str, Any]:
    """:func:`_view` of a :data:`_WRITTEN` row (its auto-decision's columns as the object
    :func:`_decision_view` shows, when there is one)."""
    decision = None
    if row.decision_outcome is not None:
        decision = AutoDecision(
            outcome=row.decision_outcome,
            detail=row.decision_detail,
            tx_hash=row.decision_tx_hash,
            decided_at=row.decision_decided_at,
        )
    return _view(row, decision)


async def _written(
    ports: Ports, financing_id: int, mined: Mined, fallback: dict[str, Any] | None = None
) -> dict[str, Any]:
    async with ports.session() as session:
        conn = await session.connection()
        row = (await conn.execute(_WRITTEN, {"financing_id": financing_id})).first()
    view = None if row is None else _written_view(row)
    if view is None:
        if fallback is None:
            raise NotFound("no such financing request", code="financing_not_found")
        view = fallback
    return {**view, **mined.written}


# -- writes ---------------------------------------------------------------------------------


async def apply(
    ports: Ports,
    write: WriteContext,
    claim_id: int,
    financier: str,
    amount: int,
    expires_at: int | None = None,
    min_advance: int | None = None,
    recourse: bool | None = None,
) -> dict[str, Any]:
    """The holder applies to ``financier`` for ``amount`` of its piece: the value locks.
    It commits to ``min_advance`` and ``recourse`` (default: the quote at the financier's
    current policy; without a policy, no minimum and no recourse)."""
    async with ports.session() as session:
        claim, obligor = await visible_claim(session, write.caller, claim_id)
        assert obligor is not None  # the mirror writes a piece with its payable
        policy = None
        if min_advance is None or recourse is None:
            conn = await session.connection()
            policy = (await conn.execute(_POLICY, {"financier": financier})).first()
    now = await write_time(ports, write)
    if expires_at is None:
        expires_at = default_expiry(now, claim.due_date)
    if min_advance is None:
        min_advance = quotes.default_min_advance(policy, amount, claim.due_date, now)
    if recourse is None:
        recourse = policy.recourse if policy is not None else False
    if min_advance > amount:
        raise Invalid(
            "min_advance is more than the amount applied for",
            code="min_advance_invalid",
            extra={"min_advance": min_advance, "amount": amount},
        )
    call = calls.apply_for_financing(claim_id, financier, amount, expires_at, min_advance, recourse)
    mined = await ports.ledger.submit(write, call)
    applied = mined.event("FinancingDesk:FinancingApplied")
    # Shown if the mirror has not caught up within the port's wait.
    fallback = _view(as_record(financing_from(applied, obligor)), None)
    return await _written(ports, int(applied.args["financingId"]), mined, fallback)


async def approve(
    ports: Ports,
    write: WriteContext,
    financing_id: int,
    annual_rate_bps: int | None = None,
    fees: int = 0,
    advance: int | None = None,
    discount: int | None = None,
    term_days: int | None = None,
    recourse: bool | None = None,
    registration_no: str | None = None,
    disbursement_ref: str | None = None,
) -> dict[str, Any]:
    """The financier approves with terms it gives or the API computes from its rate and fees
    (on the term that honours the applicant's ``min_advance`` when one does); the amount moves
    to it in the same transaction. Recourse defaults to the applicant's committed one."""
    caller = write.caller
    async with ports.session() as session:
        row = await require_financing(session, caller, financing_id)
        claim = await session.get(m.Claim, row.claim_id)
        assert claim is not None  # the mirror writes a financing with its piece
        rate = annual_rate_bps
        if rate is None:
            policy = await session.get(FinancingPolicy, caller.address)
            if policy is None:
                raise Invalid(
                    "give annual_rate_bps (no policy rate is set)", code="annual_rate_required"
                )
            rate = policy.annual_rate_bps
        if registration_no is None:
            # The financing's own number under the credit line's programme, when the
            # financier keeps one there (a number backs one financing only).
            line = await session.get(CreditLine, (caller.address, row.obligor))
            programme = line.registration_no if line is not None else None
            registration_no = financing_registration(programme, financing_id)
    if recourse is None:
        recourse = row.recourse
    now = await write_time(ports, write)
    if advance is None or discount is None:
        if term_days is None:
            pricing = quotes.price_at_least(
                row.amount, rate, fees, claim.due_date, now, row.min_advance
            )
        else:
            pricing = quotes.price(
                row.amount, rate, fees, claim.due_date, now + quotes.APPROVAL_MARGIN_S, term_days
            )
        pricing.require_advance()
        advance = pricing.advance
    else:
        days = term_days
        if days is None:
            days = quotes.matching_term_days(row.amount, rate, discount, claim.due_date, now)
        pricing = quotes.Pricing(row.amount, rate, days, discount, fees)
    terms = calls.Terms(
        advance,
        pricing.discount,
        pricing.fees,
        pricing.annual_rate_bps,
        pricing.term_days,
        recourse,
        encode_registration(registration_no),
        text_hash(disbursement_ref),
    )
    mined = await ports.ledger.submit(write, calls.approve_financing(financing_id, terms))
    return await _written(ports, financing_id, mined)


async def reject(
    ports: Ports, write: WriteContext, financing_id: int, reason: str
) -> dict[str, Any]:
    """The financier declines; the value unlocks."""
    async with ports.session() as session:
        await require_financing(session, write.caller, financing_id)
    mined = await ports.ledger.submit(
        write, calls.reject_financing(financing_id, text_hash(reason))
    )
    return await _written(ports, financing_id, mined)


async def withdraw(ports: Ports, write: WriteContext, financing_id: int) -> dict[str, Any]:
    """The applicant withdraws; the value unlocks."""
    async with ports.session() as session:
        await require_financing(session, write.caller, financing_id)
    mined = await ports.ledger.submit(write, calls.withdraw_financing(financing_id))
    return await _written(ports, financing_id, mined)


async def expire(ports: Ports, write: WriteContext, financing_id: int) -> dict[str, Any]:
    """Anyone concerned expires a lapsed application: its parties, and the piece's obligor and
    clearing agent (who must clear locks before settling); the value unlocks."""
    caller = write.caller
    async with ports.session() as session:
        row = await session.get(m.Financing, financing_id)
        payable = None
        if row is not None:
            claim = await session.get(m.Claim, row.claim_id)
            payable = await session.get(m.Payable, claim.payable_id) if claim else None
    concerned = row is not None and (
        caller.sees_everything
        or caller.address in (row.applicant, row.financier, row.obligor)
        or (payable is not None and caller.address == payable.clearing_agent)
    )
    if not concerned:
        raise NotFound("no such financing request", code="financing_not_found")
    mined = await ports.ledger.submit(write, calls.expire_financing(financing_id))
    return await _written(ports, financing_id, mined)
