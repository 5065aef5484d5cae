"""ClaimLedger's claim piece events: split (a new piece), transferred whole, frozen and
unfrozen, settled. On chain a piece's size is its ``value``; in the mirror its ``amount``."""

from __future__ import annotations

from indexer.handlers.registry import handles, obligor_account, restatus
from indexer.rows import Row, claim_row, hash_or_none, settlement_row, transferred
from indexer.unit_of_work import UnitOfWork
from ledger.codec import DecodedEvent


def split_claim_from(ev: DecodedEvent, due_date: int) -> Row:
    """The piece a ``ClaimSplit`` event creates (its payable's ``due_date``)."""
    a = ev.args
    return claim_row(
        a["claimId"],
        a["payableId"],
        a["parentId"],
        a["depth"],
        a["to"],
        a["value"],
        due_date,
        hash_or_none(a["invoiceId"]),
        ev.block_number,
    )


@handles("ClaimLedger:ClaimSplit")
async def on_claim_split(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    parent = await uow.edit("claims", (a["parentId"],))
    parent["amount"] -= a["value"]
    await uow.create("claims", split_claim_from(ev, parent["due_date"]))


@handles("ClaimLedger:ClaimTransferred")
async def on_claim_transferred(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    transferred(await uow.edit("claims", (ev.args["claimId"],)), ev.args["to"])


@handles("ClaimLedger:ClaimFrozen")
async def on_claim_frozen(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    claim = await uow.edit("claims", (ev.args["claimId"],))
    claim["frozen"] = True
    restatus(claim)


@handles("ClaimLedger:ClaimUnfrozen")
async def on_claim_unfrozen(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    claim = await uow.edit("claims", (ev.args["claimId"],))
    claim["frozen"] = False
    restatus(claim)


@handles("ClaimLedger:ClaimSettled")
async def on_claim_settled(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    claim = await uow.edit("claims", (a["claimId"],))
    claim["status"] = "settled"
    payable = await uow.edit("payables", (a["payableId"],))
    payable["settled_value"] += a["value"]
    account = await obligor_account(uow, payable["obligor"])
    account["outstanding"] -= a["value"]
    uow.append(
        "settlements",
        settlement_row(
            a["claimId"],
            a["payableId"],
            a["holder"],
            a["value"],
            a["paymentRef"],
            ev.block_number,
            ev.tx_hash,
        ),
    )
