"""Invoices: a supplier registers what it sold, the buyer confirms it, the seller voids it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from backend.api.csv import CSV_RESPONSES, csv_response
from backend.api.deps import ContextDep, CurrentCaller, PageDep, SessionDep, WritesDep, writer
from backend.auth import Caller
from backend.schemas.common import Address, Hash32
from backend.schemas.invoices import (
    InvoiceCreate,
    InvoicePublic,
    InvoicesPublic,
    InvoiceStatus,
    InvoiceWrite,
    ListFormat,
)
from backend.services import invoices as service
from ledger.roles import Role

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])


def list_answer(
    items: list[dict[str, Any]],
    next_cursor: str | None,
    fmt: ListFormat,
    model: type[BaseModel],
    filename: str,
) -> Any:
    """A list's answer: the JSON page, or (``format=csv``) the same items as CSV, one column
    per field of the item model, the next page's cursor in ``X-Next-Cursor``."""
    body = {"items": items, "next_cursor": next_cursor}
    if fmt != "csv":
        return body
    dumped = model.model_validate(body).model_dump(mode="json")
    item_model = model.model_fields["items"].annotation
    columns = list(get_args(item_model)[0].model_fields)
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else None
    return csv_response(dumped["items"], columns, filename, headers)


InvoicePath = Annotated[Hash32, Path(description="the invoice's fingerprint (0x-hex)")]
Member = Annotated[Caller, writer()]


@router.post("", status_code=201, response_model=InvoiceWrite)
async def register_invoice(
    body: InvoiceCreate,
    caller: Annotated[Caller, writer(Role.SUPPLIER)],
    ctx: ContextDep,
    session: SessionDep,
    writes: WritesDep,
) -> Any:
    """Register an invoice the caller (a supplier) issued; its id is the fingerprint
    keccak256(abi.encode(tax id, code, number)) of the identifiers normalised (NFKC, upper
    case, no whitespace or dashes)."""
    return await writes.run(
        caller, lambda: service.register(ctx, session, caller, body), InvoiceWrite, status=201
    )


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
async def confirm_invoice(
    invoice_id: InvoicePath, caller: Member, ctx: ContextDep, session: SessionDep, writes: WritesDep
) -> Any:
    """The buyer confirms the invoice is genuine (Registered → Confirmed)."""
    return await writes.run(
        caller, lambda: service.confirm(ctx, session, caller, invoice_id), InvoiceWrite
    )


@router.post("/{invoice_id}/void", response_model=InvoiceWrite)
async def void_invoice(
    invoice_id: InvoicePath, caller: Member, ctx: ContextDep, session: SessionDep, writes: WritesDep
) -> Any:
    """The seller, or the operator, voids an invoice not yet used (→ Voided)."""
    return await writes.run(
        caller, lambda: service.void(ctx, session, caller, invoice_id), InvoiceWrite
    )
