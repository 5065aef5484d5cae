"""Financing requests (apply, approve, reject, withdraw, expire) and a financier's settings
(credit lines per obligor, the auto-approval policy). No FastAPI in here.

Every rule is the FinancingDesk's: the holder applies (the value locks at once), only the named
financier decides, terms satisfy ``advance + discount + fees = amount`` with the discount by
the convention of :mod:`backend.services.quotes`, the exposure stays under the limit. The API
prices, encodes and translates; the chain refuses (``ContractRevert`` → the mapped problem).

Encodings (see :mod:`backend.schemas.financing`): ``registration_no`` text ↔ a left-aligned,
zero-padded ``bytes32``; ``disbursement_ref`` and a rejection's reason → SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.chain import Mined
from backend.context import AppContext
from backend.errors import Forbidden, Invalid, NotFound
from backend.models import AutoDecision, CreditLine, FinancingPolicy
from backend.schemas.common import iso
from backend.schemas.financing import FinancingApprove, PolicyRequest
from backend.services import quotes
from backend.services.visibility import financings_clause, require_claim, require_financing
from db.engine import now_s
from db.types import table_of
from indexer import models as m
from ledger.bindings import ZERO_HASH
from ledger.deployment import DAY

#: An application's default life: a week, but never closer than an hour to the due date.
DEFAULT_EXPIRY_S = 7 * DAY
EXPIRY_BEFORE_DUE_S = 3600
ZERO_HEX = "0x" + "00" * 32


# -- encodings ------------------------------------------------------------------------------


def encode_registration(text: str | None) -> bytes:
    """A registration number as the ``bytes32`` the desk keeps (zero: none)."""
    return ZERO_HASH if not text else text.encode().ljust(32, b"\0")


def decode_registration(value: str | None) -> str | None:
    """The text of a mirrored ``registrationNo`` (0x-hex when it is not text the API wrote)."""
    if value is None or value == ZERO_HEX:
        return None
    raw = bytes.fromhex(value[2:]).rstrip(b"\0")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return value
    return value if "\0" in text or not text.isprintable() else text


def text_hash(text: str | None) -> bytes:
    """SHA-256 of a reference or reason (zero when there is none)."""
    return ZERO_HASH if not text else hashlib.sha256(text.encode()).digest()


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
        "advance": row.advance if decided else None,
        "discount": row.discount if decided else None,
        "fees": row.fees if decided else None,
        "annual_rate_bps": row.annual_rate_bps if decided else None,
        "recourse": row.recourse if decided else None,
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


async def _written(
    session: AsyncSession, financing_id: int, mined: Mined, fallback: dict[str, Any] | None = None
) -> dict[str, Any]:
    row = await _fresh(session, financing_id)
    if row is None:
        if fallback is None:
            raise NotFound("no such financing request", code="financing_not_found")
        view = fallback
    else:
        view = (await _views(session, [row]))[0]
    return {**view, "tx_hash": mined.tx_hash, "block_number": mined.block_number}


# -- writes ---------------------------------------------------------------------------------


async def apply(
    ctx: AppContext,
    session: AsyncSession,
    caller: Caller,
    claim_id: int,
    financier: str,
    amount: int,
    expires_at: datetime | None,
) -> dict[str, Any]:
    """The holder applies to ``financier`` for ``amount`` of its piece: the value locks."""
    claim = await require_claim(session, caller, claim_id)
    payable = await session.get(m.Payable, claim.payable_id)
    assert payable is not None  # the mirror writes a piece with its payable
    if expires_at is not None:
        expiry = int(expires_at.timestamp())
    else:
        expiry = default_expiry(await ctx.gateway.chain_time(), claim.due_date)
    fn = ctx.gateway.suite.desk.functions.applyForFinancing(claim_id, financier, amount, expiry)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    applied = mined.event("FinancingDesk:FinancingApplied").args
    financing_id = int(applied["financingId"])
    # Shown if the mirror has not caught up within the gateway's wait.
    fallback = {
        "id": financing_id,
        "claim_id": claim_id,
        "applicant": caller.address,
        "financier": applied["financier"],
        "obligor": payable.obligor,
        "amount": int(applied["amount"]),
        "status": "applied",
        "expires_at": iso(int(applied["expiresAt"])),
        **dict.fromkeys(
            (
                "advance",
                "discount",
                "fees",
                "annual_rate_bps",
                "recourse",
                "registration_no",
                "disbursement_ref",
                "financed_claim_id",
                "reason_hash",
                "auto_decision",
            )
        ),
    }
    return await _written(session, financing_id, mined, fallback)


async def approve(
    ctx: AppContext,
    session: AsyncSession,
    caller: Caller,
    financing_id: int,
    body: FinancingApprove,
) -> dict[str, Any]:
    """The financier approves with terms it gives or the API computes from its rate and fees;
    the amount moves to it in the same transaction."""
    row = await require_financing(session, caller, financing_id)
    claim = await session.get(m.Claim, row.claim_id)
    assert claim is not None  # the mirror writes a financing with its piece
    rate = body.annual_rate_bps
    if rate is None:
        policy = await session.get(FinancingPolicy, caller.address)
        if policy is None:
            raise Invalid(
                "give annual_rate_bps (no policy rate is set)", code="annual_rate_required"
            )
        rate = policy.annual_rate_bps
    now = await ctx.gateway.chain_time()
    if body.advance is None or body.discount is None:
        pricing = quotes.price(
            row.amount,
            rate,
            body.fees,
            claim.due_date,
            now + quotes.APPROVAL_MARGIN_S,
            body.term_days,
        )
        pricing.require_advance()
        advance = pricing.advance
    else:
        days = body.term_days
        if days is None:
            days = quotes.matching_term_days(row.amount, rate, body.discount, claim.due_date, now)
        pricing = quotes.Pricing(row.amount, rate, days, body.discount, body.fees)
        advance = body.advance
    registration = body.registration_no
    if registration is None:
        # The programme's number from the credit line, when the financier keeps one there.
        line = await session.get(CreditLine, (caller.address, row.obligor))
        registration = line.registration_no if line is not None else None
    terms = (
        advance,
        pricing.discount,
        pricing.fees,
        pricing.annual_rate_bps,
        pricing.term_days,
        body.recourse,
        encode_registration(registration),
        text_hash(body.disbursement_ref),
    )
    fn = ctx.gateway.suite.desk.functions.approveFinancing(financing_id, terms)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return await _written(session, financing_id, mined)


async def reject(
    ctx: AppContext, session: AsyncSession, caller: Caller, financing_id: int, reason: str
) -> dict[str, Any]:
    """The financier declines; the value unlocks."""
    await require_financing(session, caller, financing_id)
    fn = ctx.gateway.suite.desk.functions.rejectFinancing(financing_id, text_hash(reason))
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return await _written(session, financing_id, mined)


async def withdraw(
    ctx: AppContext, session: AsyncSession, caller: Caller, financing_id: int
) -> dict[str, Any]:
    """The applicant withdraws; the value unlocks."""
    await require_financing(session, caller, financing_id)
    fn = ctx.gateway.suite.desk.functions.withdrawFinancing(financing_id)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return await _written(session, financing_id, mined)


async def expire(
    ctx: AppContext, session: AsyncSession, caller: Caller, financing_id: int
) -> dict[str, Any]:
    """Anyone concerned expires a lapsed application: its parties, and the piece's obligor and
    clearing agent (who must clear locks before settling); the value unlocks."""
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
    fn = ctx.gateway.suite.desk.functions.expireFinancing(financing_id)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return await _written(session, financing_id, mined)


# -- financier settings ---------------------------------------------------------------------


async def _upsert(
    session: AsyncSession, model: Any, values: dict[str, Any], keys: list[str]
) -> None:
    """Insert or replace one row of the API's own tables (two workers may race on one)."""
    table = table_of(model)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}
    )
    await session.execute(statement)


async def reconsider(session: AsyncSession, financier: str) -> None:
    """Forget the declined and failed auto-decisions on ``financier``'s pending requests, so
    they are assessed again under its new settings."""
    pending = select(m.Financing.id).where(
        m.Financing.financier == financier, m.Financing.status == "applied"
    )
    await session.execute(
        delete(AutoDecision).where(
            AutoDecision.financier == financier,
            AutoDecision.outcome.in_(("declined", "failed")),
            AutoDecision.financing_id.in_(pending),
        )
    )


def _line_view(
    financier: str, obligor: str, exposure: m.Exposure | None, line: CreditLine | None
) -> dict[str, Any]:
    limit = exposure.exposure_limit if exposure else (line.limit if line else 0)
    outstanding = exposure.outstanding if exposure else 0
    return {
        "financier": financier,
        "obligor": obligor,
        "limit": limit,
        "outstanding": outstanding,
        "available": max(0, limit - outstanding),
        "registration_no": line.registration_no if line else None,
        "updated_at": iso(line.updated_at) if line else None,
    }


def _own(caller: Caller, financier: str | None) -> str:
    """Whose settings a read is about: the caller's own, or anyone's for auditors."""
    who = financier or caller.address
    if who != caller.address and not caller.sees_everything:
        raise Forbidden("a financier sees its own settings only", code="not_allowed")
    return who


async def set_credit_line(
    ctx: AppContext,
    session: AsyncSession,
    caller: Caller,
    obligor: str,
    limit: int,
    registration_no: str | None,
) -> dict[str, Any]:
    """Set the exposure limit for ``obligor`` on chain; keep the programme's registration
    number (what auto-approval files the financings under) with the credit line."""
    fn = ctx.gateway.suite.desk.functions.setExposureLimit(obligor, limit)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    values = {
        "financier": caller.address,
        "obligor": obligor,
        "limit": limit,
        "registration_no": registration_no,
        "updated_at": now_s(),
    }
    await _upsert(session, CreditLine, values, ["financier", "obligor"])
    await reconsider(session, caller.address)
    await session.commit()
    exposure = await session.get(m.Exposure, (caller.address, obligor), populate_existing=True)
    line = await session.get(CreditLine, (caller.address, obligor), populate_existing=True)
    return {
        **_line_view(caller.address, obligor, exposure, line),
        "tx_hash": mined.tx_hash,
        "block_number": mined.block_number,
    }


async def list_credit_lines(
    session: AsyncSession, caller: Caller, financier: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """A financier's credit lines in obligor order: its limits and outstanding exposure from
    the mirror (the chain's), its registration numbers from the API's table."""
    who = _own(caller, financier)
    exposures = select(m.Exposure).where(m.Exposure.financier == who)
    lines = select(CreditLine).where(CreditLine.financier == who)
    if after:
        exposures = exposures.where(m.Exposure.obligor > after)
        lines = lines.where(CreditLine.obligor > after)
    by_exposure = {
        e.obligor: e
        for e in (await session.execute(exposures.order_by(m.Exposure.obligor).limit(limit)))
        .scalars()
        .all()
    }
    by_line = {
        c.obligor: c
        for c in (await session.execute(lines.order_by(CreditLine.obligor).limit(limit)))
        .scalars()
        .all()
    }
    obligors = sorted(set(by_exposure) | set(by_line))[:limit]
    return [_line_view(who, o, by_exposure.get(o), by_line.get(o)) for o in obligors]


def _policy_view(row: FinancingPolicy) -> dict[str, Any]:
    return {
        "financier": row.financier,
        "enabled": row.enabled,
        "max_amount": row.max_amount,
        "max_tenor_days": row.max_tenor_days,
        "allowed_obligors": json.loads(row.allowed_obligors),
        "annual_rate_bps": row.annual_rate_bps,
        "fee_bps": row.fee_bps,
        "recourse": row.recourse,
        "updated_at": iso(row.updated_at),
    }


async def put_policy(session: AsyncSession, caller: Caller, body: PolicyRequest) -> dict[str, Any]:
    """Replace the caller's auto-approval policy; pending requests are assessed again."""
    values = {
        "financier": caller.address,
        "enabled": body.enabled,
        "max_amount": body.max_amount,
        "max_tenor_days": body.max_tenor_days,
        "allowed_obligors": json.dumps(body.allowed_obligors),
        "annual_rate_bps": body.annual_rate_bps,
        "fee_bps": body.fee_bps,
        "recourse": body.recourse,
        "updated_at": now_s(),
    }
    await _upsert(session, FinancingPolicy, values, ["financier"])
    await reconsider(session, caller.address)
    await session.commit()
    row = await session.get(FinancingPolicy, caller.address, populate_existing=True)
    assert row is not None
    return _policy_view(row)


async def get_policy(
    session: AsyncSession, caller: Caller, financier: str | None
) -> dict[str, Any]:
    who = _own(caller, financier)
    row = await session.get(FinancingPolicy, who)
    if row is None:
        raise NotFound("no auto-approval policy is set", code="financing_policy_not_found")
    return _policy_view(row)
