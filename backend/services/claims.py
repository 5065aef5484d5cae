"""Claim pieces: reads, transfers by the holder, history, and the operator's freeze.

Split or whole transfer. ``POST /v1/claims/{id}/transfers`` carries an ``amount``: equal to the
piece's amount as the mirror shows it → ``transferClaim`` (the piece keeps its id and gets a
new holder); anything else → ``split`` (a new piece for the recipient; the id comes from the
``ClaimSplit`` event). Every write waits for the mirror before answering, so it is current for
the caller's own writes; in case another write has changed the piece an instant before (a
concurrent split, a financing approval), a whole transfer goes ahead only if the chain's own
view at the pending block shows the same amount, else 409 ``claim_changed`` (read again,
retry): it must never move a piece smaller than the caller saw. The choice is the write's,
kept with it: a run that resumes it makes the same call, and the answer names what the chain
did. A split moves exactly its
amount or is refused, so a holder may split one piece several times at once (paying several
suppliers). Whatever the chain then finds wrong (more than the unlocked value, locked value
on a whole transfer, past the due date, frozen, not the holder) it refuses, and that refusal
is the answer. One race is left to the holder: a whole transfer sent while its own split of
the same piece is not yet broadcast moves what the split leaves.

History. A piece's events are those the mirror files under its id (its creation split or,
for a root, the PayableIssued; transfers, freezes, financing, settlement, a cancellation) and
the splits that took value off it, in chain order.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import Conflict
from backend.ports import Mined, Ports, WriteContext
from backend.schemas.common import iso
from backend.services.encodings import sha256_text
from backend.services.lists import cursor_parts, keyset_after
from backend.services.visibility import ClaimRow, claims_clause, require_claim, visible_claim
from db.types import table_of
from indexer import models as m
from indexer.handlers.claims import split_claim_from
from indexer.rows import Row, as_record, transferred
from ledger import calls


def _view(row: ClaimRow, obligor: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "payable_id": row.payable_id,
        "parent_id": row.parent_id,
        "depth": row.depth,
        "holder": row.holder,
        "obligor": obligor,
        "amount": row.amount,
        "locked_amount": row.locked_amount,
        "available_amount": row.amount - row.locked_amount,
        "status": row.status,
        "frozen": row.frozen,
        "financed": row.financed,
        "due_date": iso(row.due_date),
        "invoice_id": row.invoice_id,
        "created_block": row.created_block,
    }


async def claim_view(session: AsyncSession, row: m.Claim) -> dict[str, Any]:
    payable = await session.get(m.Payable, row.payable_id)
    return _view(row, payable.obligor if payable else None)


async def list_claims(
    session: AsyncSession,
    caller: Caller,
    after: Any,
    limit: int,
    payable_id: int | None = None,
    holder: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """The pieces the caller may see, in the order they were made."""
    query = (
        select(m.Claim, m.Payable.obligor)
        .outerjoin(m.Payable, m.Payable.id == m.Claim.payable_id)
        .where(claims_clause(caller))
        .order_by(m.Claim.id)
        .limit(limit)
    )
    cursor = cursor_parts(after, int)
    if cursor is not None:
        query = query.where(m.Claim.id > cursor[0])
    if payable_id is not None:
        query = query.where(m.Claim.payable_id == payable_id)
    if holder:
        query = query.where(m.Claim.holder == holder)
    if status:
        query = query.where(m.Claim.status == status)
    rows = await session.execute(query)
    return [_view(claim, obligor) for claim, obligor in rows]


async def get_claim(session: AsyncSession, caller: Caller, claim_id: int) -> dict[str, Any]:
    return _view(*await visible_claim(session, caller, claim_id))


_CLAIMS = table_of(m.Claim)

#: Two pieces by id (a transfer's: the one received and its source), built once and read as
#: Core rows: a write's answer took an ORM load of both, its statement built per request.
_TWO_PIECES = select(*_CLAIMS.c).where(
    or_(_CLAIMS.c.id == bindparam("first"), _CLAIMS.c.id == bindparam("second"))
)


async def _fresh_views(
    ports: Ports, ids: tuple[int, int], obligor: str | None
) -> dict[int, dict[str, Any]]:
    """The pieces ``ids`` as the mirror shows them now (absent: not mirrored yet)."""
    async with ports.session() as session:
        conn = await session.connection()
        rows = await conn.execute(_TWO_PIECES, {"first": ids[0], "second": ids[1]})
        return {row.id: _view(row, obligor) for row in rows}


async def transfer(
    ports: Ports,
    write: WriteContext,
    claim_id: int,
    to: str,
    amount: int,
    invoice_id: str | None = None,
) -> dict[str, Any]:
    """Pass ``amount`` of the piece to ``to`` (see the module docstring)."""
    async with ports.session() as session:
        source, obligor = await visible_claim(session, write.caller, claim_id)
    # The choice is the write's, made once: a run that resumes it (its worker died after the
    # broadcast, its member's signature came) finds the mirror moved on, where a split that
    # left the piece at the amount it moved would read as whole, and a different call would
    # then be sent beside the first. Kept with the transaction's record, before it leaves.
    chosen = write.remembered("whole")
    whole = amount == source.amount if chosen is None else bool(chosen)
    write.keep(whole=whole)
    journal = write.journal
    if whole and not (journal is not None and journal.recorded):
        # The choice of a whole transfer rests on the mirror's amount: make sure the chain,
        # pending transactions included, still agrees, or it could move a piece another write
        # has just made smaller (a value the caller never asked to move). A split needs no
        # such check: it moves exactly ``amount``, or the chain refuses it. (A run that
        # resumes a transfer already sent finds it through its record instead.)
        on_chain = await ports.ledger.pending_claim(claim_id)
        if on_chain.amount != amount:
            raise Conflict(
                "the piece changed since the platform last showed it: read it again and retry",
                code="claim_changed",
                extra={"amount": on_chain.amount},
            )
        call = calls.transfer_claim(claim_id, to, invoice_id)
    else:
        call = calls.split(claim_id, to, amount, invoice_id)
    mined = await ports.ledger.submit(write, call)
    # What the chain did names the answer, not the choice above: a write resumed after its
    # broadcast (a worker that died, a signature that came) runs this again on a mirror that
    # moved on, and a split that left the piece at the amount it moved reads as whole then.
    splits = [e for e in mined.all("ClaimLedger:ClaimSplit") if e.args["parentId"] == claim_id]
    if splits:
        whole, moved = False, splits[0]
        received_id = moved.args["claimId"]
    else:
        whole, moved = True, mined.event("ClaimLedger:ClaimTransferred")
        received_id = claim_id
    fresh = await _fresh_views(ports, (received_id, claim_id), obligor)
    if received_id in fresh and claim_id in fresh:
        received_view, source_view = fresh[received_id], fresh[claim_id]
    else:  # the mirror is late: answer what it will show, from the event
        before = row_of(source)
        if whole:
            received_view = source_view = _view(as_record(transferred(before, to)), obligor)
        else:
            received_view = _view(as_record(split_claim_from(moved, source.due_date)), obligor)
            source_view = _view(source, obligor)
    return {
        "kind": "transfer" if whole else "split",
        "claim_id": received_id,
        "from_claim_id": claim_id,
        "to": moved.args["to"],
        "amount": amount,
        "claim": received_view,
        "source": source_view,
        **mined.written,
    }


async def _after_write(
    ports: Ports, caller: Caller, claim_id: int, mined: Mined, frozen: bool
) -> dict[str, Any]:
    async with ports.session() as session:
        row = await session.get(m.Claim, claim_id)
        assert row is not None  # it was there before the write, and pieces are never deleted
        view = await claim_view(session, row)
    if not mined.mirrored:
        view["frozen"] = frozen
    return {**view, **mined.written}


async def freeze(ports: Ports, write: WriteContext, claim_id: int, reason: str) -> dict[str, Any]:
    """Freeze a live piece (a court order): nothing moves it until it is unfrozen."""
    async with ports.session() as session:
        await require_claim(session, write.caller, claim_id)
    mined = await ports.ledger.submit(write, calls.freeze_claim(claim_id, sha256_text(reason)))
    return await _after_write(ports, write.caller, claim_id, mined, True)


async def unfreeze(ports: Ports, write: WriteContext, claim_id: int) -> dict[str, Any]:
    """Lift a piece's freeze."""
    async with ports.session() as session:
        await require_claim(session, write.caller, claim_id)
    mined = await ports.ledger.submit(write, calls.unfreeze_claim(claim_id))
    return await _after_write(ports, write.caller, claim_id, mined, False)


# -- history ---------------------------------------------------------------------------------


async def history(
    session: AsyncSession, caller: Caller, claim_id: int, after: Any, limit: int
) -> list[dict[str, Any]]:
    """The piece's events in chain order (see the module docstring)."""
    await require_claim(session, caller, claim_id)
    children = select(m.Claim.id).where(m.Claim.parent_id == claim_id)
    query = (
        select(m.Event)
        .where(
            or_(
                m.Event.claim_id == claim_id,
                and_(m.Event.event == "ClaimSplit", m.Event.claim_id.in_(children)),
            )
        )
        .order_by(m.Event.block_number, m.Event.log_index)
        .limit(limit)
    )
    cursor = cursor_parts(after, int, int)
    if cursor is not None:
        query = query.where(keyset_after(m.Event.block_number, m.Event.log_index, cursor))
    return [
        {
            "block_number": row.block_number,
            "log_index": row.log_index,
            "block_time": iso(row.block_time),
            "tx_hash": row.tx_hash,
            "contract": row.contract,
            "event": row.event,
            # The indexer wrote exact integers; json.loads keeps them Python ints.
            "args": json.loads(row.args),
        }
        for row in (await session.execute(query)).scalars()
    ]


_CLAIM_COLUMNS = tuple(c.key for c in table_of(m.Claim).columns)


def row_of(claim: ClaimRow) -> Row:
    """A mirrored piece as the row the indexer keeps (to apply a mined event to)."""
    return {name: getattr(claim, name) for name in _CLAIM_COLUMNS}
