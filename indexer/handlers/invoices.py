"""InvoiceRegistry's events: an invoice registered, confirmed, voided, used and released."""

from __future__ import annotations

from indexer.handlers.registry import handles
from indexer.rows import Row, invoice_row
from indexer.unit_of_work import UnitOfWork
from ledger.codec import DecodedEvent


def invoice_from(ev: DecodedEvent) -> Row:
    """The invoice an ``InvoiceRegistered`` event registers."""
    a = ev.args
    return invoice_row(
        a["invoiceId"],
        a["seller"],
        a["buyer"],
        a["amount"],
        a["issueDate"],
        a["documentHash"],
        ev.block_number,
    )


@handles("InvoiceRegistry:InvoiceRegistered")
async def on_invoice_registered(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await uow.create("invoices", invoice_from(ev))


@handles("InvoiceRegistry:InvoiceConfirmed")
async def on_invoice_confirmed(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    (await uow.edit("invoices", (ev.args["invoiceId"],)))["status"] = "confirmed"


@handles("InvoiceRegistry:InvoiceVoided")
async def on_invoice_voided(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    (await uow.edit("invoices", (ev.args["invoiceId"],)))["status"] = "voided"


@handles("InvoiceRegistry:InvoiceUsed")
async def on_invoice_used(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    invoice = await uow.edit("invoices", (ev.args["invoiceId"],))
    invoice["status"] = "used"
    invoice["payable_id"] = ev.args["payableId"] or None
    invoice["claim_id"] = ev.args["claimId"] or None


@handles("InvoiceRegistry:InvoiceReleased")
async def on_invoice_released(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    invoice = await uow.edit("invoices", (ev.args["invoiceId"],))
    invoice["status"] = "confirmed"
    invoice["payable_id"] = None
