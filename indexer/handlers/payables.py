"""ClaimLedger's payable events: issued (with its root piece), cancelled, overdue, settled;
program limits; the financing desk bound."""

from __future__ import annotations

from indexer.handlers.registry import handles, obligor_account
from indexer.rows import Row, claim_row, payable_invoice_row, payable_row, platform_state_row
from indexer.unit_of_work import UnitOfWork
from ledger.codec import DecodedEvent


def payable_from(ev: DecodedEvent, issued_at: int) -> Row:
    """The payable a ``PayableIssued`` event issues (in block time ``issued_at``)."""
    a = ev.args
    agent = a["clearingAgent"]
    return payable_row(
        a["payableId"],
        a["obligor"],
        a["supplier"],
        a["faceValue"],
        a["dueDate"],
        issued_at,
        None if int(agent, 16) == 0 else agent,
        a["rootClaimId"],
        a["longTerm"],
        ev.block_number,
    )


def root_claim_from(ev: DecodedEvent) -> Row:
    """The root piece a ``PayableIssued`` event mints to the supplier."""
    a = ev.args
    return claim_row(
        a["rootClaimId"],
        a["payableId"],
        None,
        0,
        a["supplier"],
        a["faceValue"],
        a["dueDate"],
        None,
        ev.block_number,
    )


@handles("ClaimLedger:PayableIssued")
async def on_payable_issued(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    payable_id, face = a["payableId"], a["faceValue"]
    await uow.create("payables", payable_from(ev, t))
    await uow.create("claims", root_claim_from(ev))
    for position, invoice_id in enumerate(a["invoiceIds"]):
        uow.append(
            "payable_invoices",
            payable_invoice_row(payable_id, position, invoice_id, ev.block_number),
        )
    account = await obligor_account(uow, a["obligor"])
    account["outstanding"] += face


@handles("ClaimLedger:PayableCancelled")
async def on_payable_cancelled(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    payable = await uow.edit("payables", (ev.args["payableId"],))
    payable["status"] = "cancelled"
    root = await uow.edit("claims", (ev.args["rootClaimId"],))
    root["status"] = "cancelled"
    account = await obligor_account(uow, payable["obligor"])
    account["outstanding"] -= payable["face_value"]


@handles("ClaimLedger:PayableOverdue")
async def on_payable_overdue(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    payable = await uow.edit("payables", (ev.args["payableId"],))
    payable["status"] = "overdue"
    account = await obligor_account(uow, payable["obligor"])
    # the chain keeps the two latest overdue times (overdueFrom at marking), in any marking order
    at = int(ev.args["overdueFrom"])
    if at >= account["last_overdue_at"]:
        account["previous_overdue_at"] = account["last_overdue_at"]
        account["last_overdue_at"] = at
    elif at > account["previous_overdue_at"]:
        account["previous_overdue_at"] = at


@handles("ClaimLedger:PayableSettled")
async def on_payable_settled(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    (await uow.edit("payables", (ev.args["payableId"],)))["status"] = "settled"


@handles("ClaimLedger:ProgramLimitSet")
async def on_program_limit_set(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    account = await obligor_account(uow, ev.args["obligor"])
    account["program_limit"] = ev.args["programLimit"]


@handles("ClaimLedger:FinancingDeskBound")
async def on_financing_desk_bound(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await uow.upsert(
        "platform_state", platform_state_row("financing_desk", ev.args["financingDesk"])
    )
