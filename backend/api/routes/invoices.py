"""Invoices: a supplier registers what it sold, the buyer confirms it, the seller voids it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from backend.api.csv import CSV_RESPONSES
from backend.api.deps import CurrentCaller, PageDep, SessionDep, WritesDep, writer
from backend.api.lists import list_answer
from backend.auth import Caller
from backend.schemas.common import Address, Hash32
from backend.schemas.invoices import (
    InvoiceCreate,
    InvoicePublic,
    InvoicesPublic,
    InvoiceStatus,
    InvoiceWrite,
    ListFormat,
    seconds,
)
from backend.services import invoices as service
from backend.services.commands import Command
from ledger.roles import Role

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])


InvoicePath = Annotated[Hash32, Path(description="the invoice's fingerprint (0x-hex)")]
Member = Annotated[Caller, writer()]


@router.post("", status_code=201, response_model=InvoiceWrite)
async def register_invoice(
    body: InvoiceCreate,
    caller: Annotated[Caller, writer(Role.SUPPLIER)],
    writes: WritesDep,
) -> Any:
    """Register an invoice the caller (a supplier) issued; its id is the fingerprint
    keccak256(abi.encode(tax id, code, number)) of the identifiers normalised (NFKC, upper
    case, no whitespace or dashes)."""
    args = {
        "buyer": body.buyer,
        "seller_tax_id": body.seller_tax_id,
        "invoice_code": body.invoice_code,
        "number": body.number,
        "amount": body.amount,
        "issue_date": seconds(body.issue_date),
        "document_sha256": body.document_sha256,
    }
    return await writes.run(caller, Command("invoices.register", args))


@router.get("", response_model=InvoicesPublic, responses=CSV_RESPONSES)
async def list_invoices(
    caller: CurrentCaller,
    session: SessionDep,
    page: PageDep,
    status: Annotated[InvoiceStatus | None, Query(description="only this status")] = None,
    role: Annotated[
        Literal["seller", "buyer"] | None, Query(description="the caller's side of the invoice")
    ] = None,
    counterparty: Annotated[Address | None, Query(description="the other side")] = None,
    fmt: Annotated[ListFormat, Query(alias="format", description="json or csv")] = "json",
) -> Any:
    """The invoices the caller is a party to (auditors and the operator: all), in chain order."""
    items = await service.list_invoices(
        session, caller, page.after, page.limit, status, role, counterparty
    )
    return list_answer(
        items, page.next_cursor(items, service.invoice_key), fmt, InvoicesPublic, "invoices.csv"
    )


@router.get("/{invoice_id}", response_model=InvoicePublic)
async def get_invoice(invoice_id: InvoicePath, caller: CurrentCaller, session: SessionDep) -> Any:
    """One invoice (404 unless the caller is its seller or buyer, an auditor or the operator)."""
    return await service.get_invoice(session, caller, invoice_id)


@router.post("/{invoice_id}/confirm", response_model=InvoiceWrite)
async def confirm_invoice(invoice_id: InvoicePath, caller: Member, writes: WritesDep) -> Any:
    """The buyer confirms the invoice is genuine (Registered → Confirmed)."""
    return await writes.run(caller, Command("invoices.confirm", {"invoice_id": invoice_id}))


@router.post("/{invoice_id}/void", response_model=InvoiceWrite)
async def void_invoice(invoice_id: InvoicePath, caller: Member, writes: WritesDep) -> Any:
    """The seller, or the operator, voids an invoice not yet used (→ Voided)."""
    return await writes.run(caller, Command("invoices.void", {"invoice_id": invoice_id}))
