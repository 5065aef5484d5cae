"""Who may see what (AP-2): a member sees what it is a party to; auditors and the operator see
everything. Objects a caller may not see are answered 404, as if they did not exist.

Parties, by object:

- invoice: its seller and its buyer;
- claim piece: whoever holds it or ever held it, whoever held its parent piece when it was
  split off (the supplier that passed it down), its payable's obligor, supplier and clearing
  agent, and financiers with a financing request on it;
- payable: its obligor, supplier and clearing agent, and whoever holds or held a piece of it;
  the whole lineage tree only the obligor, the supplier, the clearing agent (and auditors);
- financing request: its applicant and its financier.

Every rule is a SQL clause (:func:`claims_clause` …) so lists are filtered in the database,
and a per-object check (:func:`require_claim` …) for single reads and writes.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.auth import Caller
from backend.errors import NotFound
from db.types import table_of
from indexer import models as m

#: The events that give a piece a (new) holder: its ``account`` column is the recipient.
HOLDING_EVENTS = ("ClaimSplit", "ClaimTransferred")


def _holding(event: Any) -> ColumnElement[bool]:
    """``event IN HOLDING_EVENTS`` with one plain bound parameter per name: ``in_`` of a
    tuple makes an expanding parameter, which SQLAlchemy renders into the SQL again on every
    execution (a regular-expression pass over the statement: a seventh of a piece's read)."""
    clause: ColumnElement[bool] = event.in_([literal(name) for name in HOLDING_EVENTS])
    return clause


def _holder_before(split: Any, child: Any) -> Any:
    """The holder of ``child``'s parent just before ``split`` (the event that made ``child``):
    the account of the parent's last holding event ahead of it, as a correlated scalar."""
    before = aliased(m.Event)
    return (
        select(before.account)
        .where(
            before.claim_id == child.parent_id,
            _holding(before.event),
            or_(
                before.block_number < split.block_number,
                and_(
                    before.block_number == split.block_number,
                    before.log_index < split.log_index,
                ),
            ),
        )
        .order_by(before.block_number.desc(), before.log_index.desc())
        .limit(1)
        .correlate(split, child)
        .scalar_subquery()
    )


def ever_held(member: Any) -> Any:
    """Ids of the pieces ``member`` holds or ever held (a subquery)."""
    received = select(m.Event.claim_id).where(
        m.Event.account == member, _holding(m.Event.event), m.Event.claim_id.is_not(None)
    )
    roots = select(m.Payable.root_claim_id).where(m.Payable.supplier == member)
    current = select(m.Claim.id).where(m.Claim.holder == member)
    return union(received, roots, current).subquery()


def split_off_by(member: Any) -> Any:
    """Ids of the pieces ``member`` split off: it held the parent piece *when* the piece was
    split off from it (the last holding event of the parent before the split names it; a root
    never passed on is its payable's supplier's). A former holder of the parent does not see
    what a later holder split off."""
    split = aliased(m.Event)
    child = aliased(m.Claim)
    holder_then = _holder_before(split, child)
    root_supplier = (
        select(m.Payable.supplier)
        .where(m.Payable.root_claim_id == child.parent_id)
        .correlate(child)
        .scalar_subquery()
    )
    return (
        select(split.claim_id)
        .join(child, child.id == split.claim_id)
        .where(
            split.event == "ClaimSplit",
            child.parent_id.in_(select(ever_held(member).c[0])),
            func.coalesce(holder_then, root_supplier) == member,
        )
    )


def _payables_of(member: Any) -> Any:
    return select(m.Payable.id).where(
        or_(
            m.Payable.obligor == member,
            m.Payable.supplier == member,
            m.Payable.clearing_agent == member,
        )
    )


def invoices_of_party(me: Any) -> ColumnElement[bool]:
    """The invoices ``me`` (an address, or a bound parameter) is a party to."""
    return or_(m.Invoice.seller == me, m.Invoice.buyer == me)


def invoices_clause(caller: Caller) -> ColumnElement[bool]:
    if caller.sees_everything:
        return true()
    return invoices_of_party(caller.address)


def claims_of_party(me: Any) -> ColumnElement[bool]:
    """The pieces ``me`` (an address, or a bound parameter) is a party to."""
    held = ever_held(me)
    return or_(
        m.Claim.holder == me,
        m.Claim.id.in_(select(held.c[0])),
        and_(m.Claim.parent_id.in_(select(held.c[0])), m.Claim.id.in_(split_off_by(me))),
        m.Claim.payable_id.in_(_payables_of(me)),
        m.Claim.id.in_(select(m.Financing.claim_id).where(m.Financing.financier == me)),
    )


def claims_clause(caller: Caller) -> ColumnElement[bool]:
    if caller.sees_everything:
        return true()
    return claims_of_party(caller.address)


def payables_of_party(me: Any) -> ColumnElement[bool]:
    """The payables ``me`` (an address, or a bound parameter) is a party to."""
    held = ever_held(me)
    return or_(
        m.Payable.obligor == me,
        m.Payable.supplier == me,
        m.Payable.clearing_agent == me,
        m.Payable.id.in_(select(m.Claim.payable_id).where(m.Claim.id.in_(select(held.c[0])))),
    )


def payables_clause(caller: Caller) -> ColumnElement[bool]:
    if caller.sees_everything:
        return true()
    return payables_of_party(caller.address)


def payables_clause_of_me() -> ColumnElement[bool]:
    """:func:`payables_clause` of a caller that does not see everything, its address the
    bound parameter ``me``: for statements built once and run with each caller's address."""
    return payables_of_party(bindparam("me"))


def financings_of_party(me: Any) -> ColumnElement[bool]:
    """The financing requests ``me`` (an address, or a bound parameter) is a party to."""
    return or_(m.Financing.applicant == me, m.Financing.financier == me)


def financings_clause(caller: Caller) -> ColumnElement[bool]:
    if caller.sees_everything:
        return true()
    return financings_of_party(caller.address)


def tree_visible(caller: Caller, payable: PayableRow) -> bool:
    """The whole lineage tree: the payable's own parties and auditors only."""
    return tree_parties_include(caller, payable.obligor, payable.supplier, payable.clearing_agent)


def tree_parties_include(
    caller: Caller, obligor: str, supplier: str, clearing_agent: str | None
) -> bool:
    """:func:`tree_visible` for a payable known by its parties (a list's item)."""
    return caller.sees_everything or caller.address in (obligor, supplier, clearing_agent)


async def require_invoice(session: AsyncSession, caller: Caller, invoice_id: str) -> m.Invoice:
    row = await session.get(m.Invoice, invoice_id)
    if row is None or not (caller.sees_everything or caller.address in (row.seller, row.buyer)):
        raise NotFound("no such invoice", code="invoice_not_found")
    return row


def _held_by(me: Any, claim_id: Any) -> ColumnElement[bool]:
    """Whether ``me`` holds or ever held the piece ``claim_id`` (a column of the outer row):
    :func:`ever_held` asked of one piece, by index lookups on that piece. Its payable's root
    is asked of the outer row's own payable (``m.Payable``, joined by the caller): a piece
    and its parent are pieces of the same payable."""
    parent = aliased(m.Claim)
    return or_(
        exists().where(
            m.Event.claim_id == claim_id,
            m.Event.account == me,
            _holding(m.Event.event),
        ),
        and_(m.Payable.root_claim_id == claim_id, m.Payable.supplier == me),
        exists().where(parent.id == claim_id, parent.holder == me),
    )


def _split_off_this_by(me: Any) -> ColumnElement[bool]:
    """Whether ``me`` split the outer row's piece off its parent: :func:`split_off_by` asked
    of one piece (its ``ClaimSplit`` found by the piece's id, not among every split)."""
    split = aliased(m.Event)
    holder_then = _holder_before(split, m.Claim)
    root_supplier = case(
        (m.Payable.root_claim_id == m.Claim.parent_id, m.Payable.supplier), else_=None
    )
    return (
        exists()
        .where(
            split.claim_id == m.Claim.id,
            split.event == "ClaimSplit",
            func.coalesce(holder_then, root_supplier) == me,
        )
        .correlate(m.Claim, m.Payable)
    )


def _this_claim_of(me: Any) -> ColumnElement[bool]:
    """:func:`claims_of_party` asked of one piece: the outer row's ``m.Claim``, with its payable
    ``m.Payable`` joined. The same rule, each part an index lookup on that piece, its parent
    or its payable, where the list's form builds the sets of every piece ``me`` may see (its
    splits part went through every ``ClaimSplit`` of the platform: a piece's read grew with
    everyone's splits)."""
    return or_(
        m.Claim.holder == me,
        _held_by(me, m.Claim.id),
        and_(_held_by(me, m.Claim.parent_id), _split_off_this_by(me)),
        m.Payable.obligor == me,
        m.Payable.supplier == me,
        m.Payable.clearing_agent == me,
        exists().where(m.Financing.claim_id == m.Claim.id, m.Financing.financier == me),
    )


#: A piece as :func:`visible_claim` reads it: a Core row, its columns by name (and
#: ``obligor``, ``visible``), or an ``m.Claim``; nothing changes a mirrored piece through the
#: API. (``Any``: SQLAlchemy types a row by its columns' types.)
ClaimRow: TypeAlias = Any
#: A payable as :func:`require_payable` reads it (its columns by name, and ``visible``), or an
#: ``m.Payable``.
PayableRow: TypeAlias = Any

_CLAIMS, _PAYABLES = table_of(m.Claim), table_of(m.Payable)

#: One piece, its obligor and whether ``:me`` is a party to it, in one round trip. Built once
#: with bound parameters: a statement object that lives on has its cache key memoised, where
#: one built per request (with the whole visibility rule in it) costs its key every time.
#: Its columns, not the ORM's entity: run on the session's Core connection, the row needs no
#: ORM loading (a third of the statement's cost).
_CLAIM_FOR = (
    select(*_CLAIMS.c, _PAYABLES.c.obligor, _this_claim_of(bindparam("me")).label("visible"))
    .select_from(_CLAIMS.outerjoin(_PAYABLES, _PAYABLES.c.id == _CLAIMS.c.payable_id))
    .where(_CLAIMS.c.id == bindparam("claim_id"))
)


async def visible_claim(
    session: AsyncSession, caller: Caller, claim_id: int
) -> tuple[ClaimRow, str | None]:
    """The piece and its payable's obligor, if ``caller`` may see it; else 404."""
    conn = await session.connection()
    found = (await conn.execute(_CLAIM_FOR, {"me": caller.address, "claim_id": claim_id})).first()
    if found is None or not (caller.sees_everything or found.visible):
        raise NotFound("no such claim piece", code="claim_not_found")
    return found, found.obligor


async def require_claim(session: AsyncSession, caller: Caller, claim_id: int) -> ClaimRow:
    return (await visible_claim(session, caller, claim_id))[0]


_PAYABLE_FOR = select(*_PAYABLES.c, payables_of_party(bindparam("me")).label("visible")).where(
    _PAYABLES.c.id == bindparam("payable_id")
)


async def require_payable(session: AsyncSession, caller: Caller, payable_id: int) -> PayableRow:
    """The payable, if ``caller`` may see it; else 404 (a Core row, as :func:`visible_claim`)."""
    conn = await session.connection()
    found = (
        await conn.execute(_PAYABLE_FOR, {"me": caller.address, "payable_id": payable_id})
    ).first()
    if found is None or not (caller.sees_everything or found.visible):
        raise NotFound("no such payable", code="payable_not_found")
    return found


async def require_financing(
    session: AsyncSession, caller: Caller, financing_id: int
) -> m.Financing:
    row = await session.get(m.Financing, financing_id)
    if row is None or not (
        caller.sees_everything or caller.address in (row.applicant, row.financier)
    ):
        raise NotFound("no such financing request", code="financing_not_found")
    return row
