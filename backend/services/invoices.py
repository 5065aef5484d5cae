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
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import Invalid
from backend.models import InvoiceDetails
from backend.ports import Mined, Ports, WriteContext
from backend.schemas.common import iso
from backend.services.lists import cursor_parts, keyset_after
from backend.services.visibility import invoices_clause, require_invoice
from indexer import models as m
from indexer.handlers.invoices import invoice_from
from indexer.rows import as_record
from ledger import calls


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
        query = query.where(keyset_after(m.Invoice.registered_block, m.Invoice.id, cursor))
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
    return [_view(invoice, details) for invoice, details in rows]


async def get_invoice(session: AsyncSession, caller: Caller, invoice_id: str) -> dict[str, Any]:
    row = await require_invoice(session, caller, invoice_id)
    return _view(row, await session.get(InvoiceDetails, invoice_id))


async def _keep_details(
    session: AsyncSession, invoice_id: str, seller_tax_id: str, invoice_code: str, number: str
) -> None:
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
                id=invoice_id, seller_tax_id=seller_tax_id, invoice_code=invoice_code, number=number
            )
        )
    else:
        existing.seller_tax_id = seller_tax_id
        existing.invoice_code = invoice_code
        existing.number = number
    try:
        await session.commit()
    except IntegrityError:
        # Another request registering the same fingerprint wrote them first: the same
        # identifiers up to normalisation; the chain decides which registration stands.
        await session.rollback()


async def register(
    ports: Ports,
    write: WriteContext,
    buyer: str,
    seller_tax_id: str,
    invoice_code: str,
    number: str,
    amount: int,
    issue_date: int,
    document_sha256: str,
) -> dict[str, Any]:
    """Register the caller's invoice to ``buyer``; answers the new invoice."""
    invoice_id = fingerprint(seller_tax_id, invoice_code, number)
    async with ports.session() as session:
        await _keep_details(session, invoice_id, seller_tax_id, invoice_code, number)
    call = calls.register_invoice(invoice_id, buyer, amount, issue_date, document_sha256)
    mined = await ports.ledger.submit(write, call)
    registered = mined.event("InvoiceRegistry:InvoiceRegistered")
    registered_id = registered.args["invoiceId"]
    async with ports.session() as session:
        row = await session.get(m.Invoice, registered_id)
        details = await session.get(InvoiceDetails, registered_id)
    if row is None:  # the mirror is late (bounded wait passed): answer from the event
        view = _view(as_record(invoice_from(registered)), details)
    else:
        view = _view(row, details)
    return {**view, **mined.written}


async def _changed(
    ports: Ports, caller: Caller, invoice_id: str, mined: Mined, status: str
) -> dict[str, Any]:
    async with ports.session() as session:
        view = await get_invoice(session, caller, invoice_id)
    if not mined.mirrored:
        view["status"] = status  # what the mined event says, while the mirror catches up
    return {**view, **mined.written}


async def confirm(ports: Ports, write: WriteContext, invoice_id: str) -> dict[str, Any]:
    """The buyer confirms the invoice is genuine (the chain refuses anyone else)."""
    async with ports.session() as session:
        await require_invoice(session, write.caller, invoice_id)
    mined = await ports.ledger.submit(write, calls.confirm_invoice(invoice_id))
    return await _changed(ports, write.caller, invoice_id, mined, "confirmed")


async def void(ports: Ports, write: WriteContext, invoice_id: str) -> dict[str, Any]:
    """The seller (or the operator) voids an unused invoice."""
    async with ports.session() as session:
        await require_invoice(session, write.caller, invoice_id)
    mined = await ports.ledger.submit(write, calls.void_invoice(invoice_id))
    return await _changed(ports, write.caller, invoice_id, mined, "voided")
