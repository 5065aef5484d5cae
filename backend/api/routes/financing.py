"""Financing: the holder asks a quote and applies, the named financier approves or rejects,
the applicant withdraws, a lapsed application is expired."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from backend.api.deps import CurrentCaller, PageDep, PortsDep, SessionDep, WritesDep, writer
from backend.auth import Caller
from backend.errors import Invalid
from backend.schemas.common import Address, Id, PositiveAmount
from backend.schemas.financing import (
    MAX_RATE_BPS,
    FinancingApply,
    FinancingApprove,
    FinancingPublic,
    FinancingReject,
    FinancingsPublic,
    FinancingStatus,
    FinancingWrite,
    QuotePublic,
)
from backend.services import financing as service
from backend.services import quotes
from backend.services.commands import Command
from ledger.roles import Role

router = APIRouter(tags=["financing"])
FinancingId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the financing request's id")]
Financier = Annotated[Caller, writer(Role.FINANCIER)]
Member = Annotated[Caller, writer()]


@router.get("/v1/financing-quotes", response_model=QuotePublic)
async def get_quote(
    caller: CurrentCaller,
    ports: PortsDep,
    claim_id: Annotated[Id, Query(description="the piece to finance part of")],
    amount: Annotated[PositiveAmount, Query(description="minor units (fen)")],
    financier: Annotated[Address, Query(description="the financier to apply to")],
    annual_rate_bps: Annotated[
        int | None,
        Query(ge=0, le=MAX_RATE_BPS, description="default: the financier's policy rate"),
    ] = None,
    fee_bps: Annotated[
        int | None, Query(ge=0, le=10_000, description="default: the financier's policy fees")
    ] = None,
) -> Any:
    """The cost of financing before applying, and whether auto-approval would take it."""
    return await quotes.quote(ports, caller, claim_id, amount, financier, annual_rate_bps, fee_bps)


@router.post("/v1/financing-requests", status_code=201, response_model=FinancingWrite)
async def apply_for_financing(body: FinancingApply, caller: Member, writes: WritesDep) -> Any:
    """Apply for financing part of a piece the caller holds: the amount is locked at once."""
    args = {
        "claim_id": body.claim_id,
        "financier": body.financier,
        "amount": body.amount,
        "expires_at": None if body.expires_at is None else int(body.expires_at.timestamp()),
        "min_advance": body.min_advance,
        "recourse": body.recourse,
    }
    return await writes.run(caller, Command("financing.apply", args))


@router.get("/v1/financing-requests", response_model=FinancingsPublic)
async def list_financing_requests(
    caller: CurrentCaller,
    session: SessionDep,
    page: PageDep,
    status: Annotated[FinancingStatus | None, Query(description="only in this status")] = None,
    role: Annotated[
        Literal["applicant", "financier"] | None,
        Query(description="only those the caller applied for, or is asked to finance"),
    ] = None,
    claim_id: Annotated[Id | None, Query(description="only on this piece")] = None,
) -> Any:
    """The financing requests the caller is party to, in id order."""
    after = page.after
    if after is not None and (
        not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63
    ):
        raise Invalid("the cursor is not one this API gave out", code="cursor_invalid")
    items = await service.list_financings(
        session, caller, after, page.limit, status, role, claim_id
    )
    return {"items": items, "next_cursor": page.next_cursor(items, lambda f: f["id"])}


@router.get("/v1/financing-requests/{financing_id}", response_model=FinancingPublic)
async def get_financing_request(
    financing_id: FinancingId, caller: CurrentCaller, session: SessionDep
) -> Any:
    """One financing request, with its terms once approved and any auto-approval decision."""
    return await service.get_financing(session, caller, financing_id)


@router.post("/v1/financing-requests/{financing_id}/approve", response_model=FinancingWrite)
async def approve_financing_request(
    financing_id: FinancingId,
    body: FinancingApprove,
    caller: Financier,
    writes: WritesDep,
) -> Any:
    """Approve as the named financier: the amount moves to it in the same transaction."""
    args = {"financing_id": financing_id, **body.model_dump()}
    return await writes.run(caller, Command("financing.approve", args))


@router.post("/v1/financing-requests/{financing_id}/reject", response_model=FinancingWrite)
async def reject_financing_request(
    financing_id: FinancingId,
    body: FinancingReject,
    caller: Financier,
    writes: WritesDep,
) -> Any:
    """Reject as the named financier (the reason is kept as its SHA-256); the value unlocks."""
    args = {"financing_id": financing_id, "reason": body.reason}
    return await writes.run(caller, Command("financing.reject", args))


@router.post("/v1/financing-requests/{financing_id}/withdraw", response_model=FinancingWrite)
async def withdraw_financing_request(
    financing_id: FinancingId, caller: Member, writes: WritesDep
) -> Any:
    """Withdraw the caller's own pending application; the value unlocks."""
    args = {"financing_id": financing_id}
    return await writes.run(caller, Command("financing.withdraw", args))


@router.post("/v1/financing-requests/{financing_id}/expire", response_model=FinancingWrite)
async def expire_financing_request(
    financing_id: FinancingId, caller: Member, writes: WritesDep
) -> Any:
    """Expire an application whose expiry has passed; the value unlocks."""
    args = {"financing_id": financing_id}
    return await writes.run(caller, Command("financing.expire", args))
