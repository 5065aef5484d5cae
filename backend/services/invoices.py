"""Invoices: registration by the seller, confirmation by the buyer, voiding, reads.

The fingerprint. An invoice's ``id`` is ``keccak256(abi.encode(string taxId, string code,
string number))`` over the three identifiers after :func:`normalise`: Unicode NFKC (full-width
letters, digits, spaces and dashes become their ASCII forms), upper case, and every
whitespace character and dash removed. So ``" 9131-0000 ma1fl0xx1x "`` and
``"91310000MA1FL0XX1X"`` are one tax id, and the same invoice typed twice, once with spaces or
in full width, is refused as a duplicate (``invoice_duplicate``, by the chain). ``abi.encode``
keeps the three parts apart (``"AB" + "C"`` differs from ``"A" + "BC"``), and anyone can
recompute it in Solidity or with ``eth_abi``. The identifiers are kept off chain, as given, in
``invoice_details``; the chain sees only the fingerprint and the document's SHA-256.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.chain import Mined
from backend.context import AppContext
from backend.errors import Invalid
from backend.models import InvoiceDetails
from backend.schemas.common import iso
from backend.schemas.invoices import InvoiceCreate, seconds
from backend.services.visibility import invoices_clause, require_invoice
from indexer import models as m


def normalise(identifier: str) -> str:
    """The form of a tax id, invoice code or number the fingerprint is made of."""
    folded = unicodedata.normalize("NFKC", identifier).upper()
    return "".join(
        c for c in folded if not c.isspace() and unicodedata.category(c) != "Pd" and c != "\u2212"
    )


def _checked(name: str, value: str, required: bool) -> str:
    norm = normalise(value)
    if required and not norm:
        raise Invalid(f"{name} has no characters besides spaces and dashes", code=f"{name}_invalid")
    if any(unicodedata.category(c).startswith("C") for c in norm):
        raise Invalid(f"{name} contains control characters", code=f"{name}_invalid")
    return norm


def fingerprint(seller_tax_id: str, invoice_code: str, number: str) -> str:
    """The invoice id: keccak256(abi.encode(the three normalised identifiers)), 0x-hex."""
    parts = [
        _checked("seller_tax_id", seller_tax_id, True),
        _checked("invoice_code", invoice_code, False),
        _checked("number", number, True),
    ]
    return "0x" + keccak(abi_encode(["string", "string", "string"], parts)).hex()


def _view(row: m.Invoice, details: InvoiceDetails | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "seller": row.seller,
        "buyer": row.buyer,
        "seller_tax_id": details.seller_tax_id if details else None,
        "invoice_code": details.invoice_code if details else None,
        "number": details.number if details else None,
        "amount": row.amount,
        "issue_date": iso(row.issue_date),
        "document_sha256": row.document_hash[2:],
        "status": row.status,
        "payable_id": row.payable_id,
        "claim_id": row.claim_id,
        "registered_block": row.registered_block,
    }


def invoice_key(item: dict[str, Any]) -> list[Any]:
    """The cursor of a list item: chain order, then id."""
    return [item["registered_block"], item["id"]]


#: Keys are BIGINT columns: a cursor outside them is not one this API gave out (and the
#: database drivers would refuse it with an error, not an empty page).
_MAX_KEY = 2**63 - 1


def _part_ok(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_KEY
    return isinstance(value, str) and len(value) <= 66


def cursor_parts(after: Any, *kinds: type) -> tuple[Any, ...] | None:
    """The parts of a list cursor (one value, or a list of them, of ``kinds``), or None for
    the first page; anything else is 422 ``cursor_invalid``."""
    if after is None:
        return None
    parts = after if isinstance(after, list) else [after]
    if len(parts) == len(kinds) and all(map(_part_ok, parts, kinds)):
        return tuple(parts)
    raise Invalid("the cursor is not one this list gave out", code="cursor_invalid")


async def list_invoices(
    session: AsyncSession,
    caller: Caller,
    after: Any,
    limit: int,
    status: str | None = None,
    role: str | None = None,
    counterparty: str | None = None,
) -> list[dict[str, Any]]:
    """The invoices the caller may see, in the order they were registered on chain.

    ``role`` is the caller's side (``seller``: invoices it issued; ``buyer``: invoices issued
    to it); ``counterparty`` the other side (with no ``role``: either side)."""
    query = (
        select(m.Invoice, InvoiceDetails)
        .outerjoin(InvoiceDetails, InvoiceDetails.id == m.Invoice.id)
        .where(invoices_clause(caller))
        .order_by(m.Invoice.registered_block, m.Invoice.id)
        .limit(limit)
    )
    cursor = cursor_parts(after, int, str)
    if cursor is not None:
        block, last = cursor
        query = query.where(
            or_(
                m.Invoice.registered_block > block,
                and_(m.Invoice.registered_block == block, m.Invoice.id > last),
            )
        )
    if status:
        query = query.where(m.Invoice.status == status)
    if role == "seller":
        query = query.where(m.Invoice.seller == caller.address)
        if counterparty:
            query = query.where(m.Invoice.buyer == counterparty)
    elif role == "buyer":
        query = query.where(m.Invoice.buyer == caller.address)
        if counterparty:
            query = query.where(m.Invoice.seller == counterparty)
    elif counterparty:
        query = query.where(or_(m.Invoice.seller == counterparty, m.Invoice.buyer == counterparty))
    rows = await session.execute(query)
    return [_view(invoice, details) for invoice, details in rows.tuples()]


async def get_invoice(session: AsyncSession, caller: Caller, invoice_id: str) -> dict[str, Any]:
    row = await require_invoice(session, caller, invoice_id)
    return _view(row, await session.get(InvoiceDetails, invoice_id))


def _written(mined: Mined) -> dict[str, Any]:
    return {"tx_hash": mined.tx_hash, "block_number": mined.block_number}


async def _keep_details(session: AsyncSession, invoice_id: str, body: InvoiceCreate) -> None:
    """Keep the off-chain identifiers before the chain sees the fingerprint, so a read right
    after the write shows them. A registered invoice's details are never replaced (a second
    registration of its fingerprint is refused by the chain anyway); those of an attempt the
    chain refused are, as they carry the same normalised identifiers by construction."""
    if await session.get(m.Invoice, invoice_id) is not None:
        return
    existing = await session.get(InvoiceDetails, invoice_id)
    if existing is None:
        session.add(
            InvoiceDetails(
                id=invoice_id,
                seller_tax_id=body.seller_tax_id,
                invoice_code=body.invoice_code,
                number=body.number,
            )
        )
    else:
        existing.seller_tax_id = body.seller_tax_id
        existing.invoice_code = body.invoice_code
        existing.number = body.number
    try:
        await session.commit()
    except IntegrityError:
        # Another request registering the same fingerprint wrote them first: the same
        # identifiers up to normalisation; the chain decides which registration stands.
        await session.rollback()


async def register(
    ctx: AppContext, session: AsyncSession, caller: Caller, body: InvoiceCreate
) -> dict[str, Any]:
    """Register the caller's invoice to ``body.buyer``; answers the new invoice."""
    invoice_id = fingerprint(body.seller_tax_id, body.invoice_code, body.number)
    await _keep_details(session, invoice_id, body)
    fn = ctx.gateway.suite.invoices.functions.registerInvoice(
        bytes.fromhex(invoice_id[2:]),
        body.buyer,
        body.amount,
        seconds(body.issue_date),
        bytes.fromhex(body.document_sha256),
    )
    mined = await ctx.gateway.transact(session, caller.address, fn)
    registered = mined.event("InvoiceRegistry:InvoiceRegistered").args
    row = await session.get(m.Invoice, registered["invoiceId"])
    details = await session.get(InvoiceDetails, registered["invoiceId"])
    if row is None:  # the mirror is late (bounded wait passed): answer from the event
        view = {
            "id": registered["invoiceId"],
            "seller": registered["seller"],
            "buyer": registered["buyer"],
            "seller_tax_id": body.seller_tax_id,
            "invoice_code": body.invoice_code,
            "number": body.number,
            "amount": registered["amount"],
            "issue_date": iso(registered["issueDate"]),
            "document_sha256": registered["documentHash"][2:],
            "status": "registered",
            "payable_id": None,
            "claim_id": None,
            "registered_block": mined.block_number,
        }
    else:
        view = _view(row, details)
    return {**view, **_written(mined)}


async def _changed(
    session: AsyncSession, caller: Caller, invoice_id: str, mined: Mined, status: str
) -> dict[str, Any]:
    # The session still holds the row as read before the write: forget it, read it again.
    session.expire_all()
    view = await get_invoice(session, caller, invoice_id)
    if not mined.mirrored:
        view["status"] = status  # what the mined event says, while the mirror catches up
    return {**view, **_written(mined)}


async def confirm(
    ctx: AppContext, session: AsyncSession, caller: Caller, invoice_id: str
) -> dict[str, Any]:
    """The buyer confirms the invoice is genuine (the chain refuses anyone else)."""
    await require_invoice(session, caller, invoice_id)
    fn = ctx.gateway.suite.invoices.functions.confirmInvoice(bytes.fromhex(invoice_id[2:]))
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return await _changed(session, caller, invoice_id, mined, "confirmed")


async def void(
    ctx: AppContext, session: AsyncSession, caller: Caller, invoice_id: str
) -> dict[str, Any]:
    """The seller (or the operator) voids an unused invoice."""
    await require_invoice(session, caller, invoice_id)
    fn = ctx.gateway.suite.invoices.functions.voidInvoice(bytes.fromhex(invoice_id[2:]))
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return await _changed(session, caller, invoice_id, mined, "voided")
