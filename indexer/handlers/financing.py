"""FinancingDesk's events: applications (the value locks), approvals (exactly that amount
moves to the financier), rejections, withdrawals, expiries; exposure limits and releases."""

from __future__ import annotations

from indexer.handlers.registry import exposure_of, handles, restatus
from indexer.rows import Row, financing_row, hash_or_none
from indexer.unit_of_work import UnitOfWork
from ledger.codec import DecodedEvent


def financing_from(ev: DecodedEvent, obligor: str) -> Row:
    """The application a ``FinancingApplied`` event records (its piece's ``obligor``)."""
    a = ev.args
    return financing_row(
        a["financingId"],
        a["claimId"],
        a["applicant"],
        a["financier"],
        obligor,
        a["amount"],
        a["expiresAt"],
        ev.block_number,
        a["minAdvance"],
        a["recourse"],
    )


@handles("FinancingDesk:FinancingApplied")
async def on_financing_applied(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    claim = await uow.edit("claims", (a["claimId"],))
    claim["locked_amount"] += a["amount"]
    restatus(claim)
    payable = await uow.need("payables", (claim["payable_id"],))
    await uow.create("financings", financing_from(ev, payable["obligor"]))


@handles("FinancingDesk:FinancingApproved")
async def on_financing_approved(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    a = ev.args
    financing = await uow.edit("financings", (a["financingId"],))
    financing.update(
        status="approved",
        advance=a["advance"],
        discount=a["discount"],
        fees=a["fees"],
        annual_rate_bps=a["annualRateBps"],
        recourse=a["recourse"],
        registration_no=hash_or_none(a["registrationNo"]),
        disbursement_ref=hash_or_none(a["disbursementRef"]),
        financed_claim_id=a["financedClaimId"],
    )
    source = await uow.edit("claims", (financing["claim_id"],))
    source["locked_amount"] -= financing["amount"]
    restatus(source)
    financed = await uow.edit("claims", (a["financedClaimId"],))
    financed["financed"] = True
    restatus(financed)
    exposure = await exposure_of(uow, a["financier"], financing["obligor"])
    exposure["outstanding"] += financing["amount"]


async def _unlock(uow: UnitOfWork, financing_id: int, status: str) -> Row:
    financing = await uow.edit("financings", (financing_id,))
    financing["status"] = status
    claim = await uow.edit("claims", (financing["claim_id"],))
    claim["locked_amount"] -= financing["amount"]
    restatus(claim)
    return financing


@handles("FinancingDesk:FinancingRejected")
async def on_financing_rejected(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    financing = await _unlock(uow, ev.args["financingId"], "rejected")
    financing["reason_hash"] = ev.args["reasonHash"]


@handles("FinancingDesk:FinancingWithdrawn")
async def on_financing_withdrawn(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await _unlock(uow, ev.args["financingId"], "withdrawn")


@handles("FinancingDesk:FinancingExpired")
async def on_financing_expired(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await _unlock(uow, ev.args["financingId"], "expired")


@handles("FinancingDesk:ExposureLimitSet")
async def on_exposure_limit_set(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    exposure = await exposure_of(uow, ev.args["financier"], ev.args["obligor"])
    exposure["exposure_limit"] = ev.args["exposureLimit"]


@handles("FinancingDesk:ExposureReleased")
async def on_exposure_released(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    exposure = await exposure_of(uow, ev.args["financier"], ev.args["obligor"])
    exposure["outstanding"] -= ev.args["value"]
