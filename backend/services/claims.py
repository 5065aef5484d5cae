"""Claim pieces: reads, transfers by the holder, history, and the operator's freeze.

Split or whole transfer. ``POST /v1/claims/{id}/transfers`` carries an ``amount``: equal to the
piece's amount as the mirror shows it → ``transferClaim`` (the piece keeps its id and gets a
new holder); anything else → ``split`` (a new piece for the recipient; the id comes from the
``ClaimSplit`` event). Every write waits for the mirror before answering, so it is current for
the caller's own writes; in case another write has changed the piece an instant before (a
concurrent split, a financing approval), a whole transfer goes ahead only if the chain's own
view at the pending block shows the same amount, else 409 ``claim_changed`` (read again,
retry): it must never move a piece smaller than the caller saw. A split moves exactly its
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

import hashlib
import json
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.chain import Mined
from backend.context import AppContext
from backend.errors import Conflict
from backend.schemas.claims import TransferCreate
from backend.schemas.common import iso
from backend.services.invoices import cursor_parts
from backend.services.visibility import claims_clause, require_claim, visible_claim
from indexer import models as m
from ledger.bindings import ZERO_HASH


def _view(row: m.Claim, obligor: str | None) -> dict[str, Any]:
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
    return [_view(claim, obligor) for claim, obligor in rows.tuples()]


async def get_claim(session: AsyncSession, caller: Caller, claim_id: int) -> dict[str, Any]:
    return _view(*await visible_claim(session, caller, claim_id))


def _written(mined: Mined) -> dict[str, Any]:
    return {"tx_hash": mined.tx_hash, "block_number": mined.block_number}


async def _fresh(session: AsyncSession, claim_id: int) -> m.Claim | None:
    # The session may hold the row as it was read before the write: read it again.
    row = await session.get(m.Claim, claim_id, populate_existing=True)
    return row


async def transfer(
    ctx: AppContext, session: AsyncSession, caller: Caller, claim_id: int, body: TransferCreate
) -> dict[str, Any]:
    """Pass ``body.amount`` of the piece to ``body.to`` (see the module docstring)."""
    source, obligor = await visible_claim(session, caller, claim_id)
    invoice = bytes.fromhex(body.invoice_id[2:]) if body.invoice_id else ZERO_HASH
    functions = ctx.gateway.suite.claim_ledger.functions
    whole = body.amount == source.amount
    if whole:
        # The choice of a whole transfer rests on the mirror's amount: make sure the chain,
        # pending transactions included, still agrees, or it could move a piece another write
        # has just made smaller (a value the caller never asked to move). A split needs no
        # such check: it moves exactly ``amount``, or the chain refuses it.
        on_chain = await ctx.gateway.suite.claim(claim_id, "pending")
        if on_chain.amount != source.amount:
            raise Conflict(
                "the piece changed since the platform last showed it: read it again and retry",
                code="claim_changed",
                extra={"amount": on_chain.amount},
            )
        fn = functions.transferClaim(claim_id, body.to, invoice)
    else:
        fn = functions.split(claim_id, body.to, body.amount, invoice)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    if whole:
        moved = mined.event("ClaimLedger:ClaimTransferred").args
        received_id = claim_id
    else:
        moved = mined.event("ClaimLedger:ClaimSplit").args
        received_id = moved["claimId"]
    received = await _fresh(session, received_id)
    after = await _fresh(session, claim_id)
    if received is None or after is None:  # the mirror is late: answer from the event
        received_view = {
            **_view(source, obligor),
            "id": received_id,
            "holder": moved["to"],
            "amount": body.amount,
            "available_amount": body.amount,
        }
        if not whole:
            received_view.update(
                parent_id=claim_id,
                depth=moved["depth"],
                locked_amount=0,
                status="active",
                frozen=False,
                financed=False,
                invoice_id=body.invoice_id,
                created_block=mined.block_number,
            )
        source_view = received_view if whole else _view(source, obligor)
    else:
        received_view = _view(received, obligor)
        source_view = _view(after, obligor)
    return {
        "kind": "transfer" if whole else "split",
        "claim_id": received_id,
        "from_claim_id": claim_id,
        "to": moved["to"],
        "amount": body.amount,
        "claim": received_view,
        "source": source_view,
        **_written(mined),
    }


def reason_hash(reason: str) -> bytes:
    """What the chain keeps of a freeze's reason: the SHA-256 of its UTF-8 text."""
    return hashlib.sha256(reason.encode()).digest()


async def _after_write(
    session: AsyncSession, caller: Caller, claim_id: int, mined: Mined, frozen: bool
) -> dict[str, Any]:
    row = await _fresh(session, claim_id)
    assert row is not None  # it was there before the write, and pieces are never deleted
    view = await claim_view(session, row)
    if not mined.mirrored:
        view["frozen"] = frozen
    return {**view, **_written(mined)}


async def freeze(
    ctx: AppContext, session: AsyncSession, caller: Caller, claim_id: int, reason: str
) -> dict[str, Any]:
    """Freeze a live piece (a court order): nothing moves it until it is unfrozen."""
    await require_claim(session, caller, claim_id)
    fn = ctx.gateway.suite.claim_ledger.functions.freezeClaim(claim_id, reason_hash(reason))
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return await _after_write(session, caller, claim_id, mined, True)


async def unfreeze(
    ctx: AppContext, session: AsyncSession, caller: Caller, claim_id: int
) -> dict[str, Any]:
    """Lift a piece's freeze."""
    await require_claim(session, caller, claim_id)
    fn = ctx.gateway.suite.claim_ledger.functions.unfreezeClaim(claim_id)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return await _after_write(session, caller, claim_id, mined, False)


# -- history ---------------------------------------------------------------------------------


def event_key(item: dict[str, Any]) -> list[int]:
    return [item["block_number"], item["log_index"]]


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
        block, index = cursor
        query = query.where(
            or_(
                m.Event.block_number > block,
                and_(m.Event.block_number == block, m.Event.log_index > index),
            )
        )
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
