"""Claim pieces: the holder passes them on (whole or split), everyone party to one reads it and
its history, the operator freezes one on court order."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from backend.api.answers import json_answer
from backend.api.csv import CSV_RESPONSES
from backend.api.deps import (
    CurrentCaller,
    PageDep,
    SessionDep,
    WritesDep,
    read_session,
    writer,
)
from backend.api.lists import list_answer
from backend.auth import Caller
from backend.schemas.claims import (
    ClaimHistory,
    ClaimPublic,
    ClaimsPublic,
    ClaimWrite,
    FreezeRequest,
    TransferCreate,
    TransferWrite,
)
from backend.schemas.common import Address, Id
from backend.schemas.invoices import ListFormat
from backend.schemas.payables import ClaimStatus
from backend.services import claims as service
from backend.services.commands import Command
from backend.services.lists import chain_position
from backend.services.members import custody_of
from ledger.roles import Role

router = APIRouter(prefix="/v1/claims", tags=["claims"])
ClaimPath = Annotated[Id, Path(description="the piece's id")]
Operator = Annotated[Caller, writer(Role.OPERATOR)]


@router.get("", response_model=ClaimsPublic, responses=CSV_RESPONSES)
async def list_claims(
    caller: CurrentCaller,
    session: SessionDep,
    page: PageDep,
    payable_id: Annotated[Id | None, Query(description="only pieces of this payable")] = None,
    holder: Annotated[Address | None, Query(description="only pieces it holds")] = None,
    status: Annotated[ClaimStatus | None, Query(description="only this status")] = None,
    fmt: Annotated[ListFormat, Query(alias="format", description="json or csv")] = "json",
) -> Any:
    """The pieces the caller may see (held, passed on, of its payables), in creation order."""
    items = await service.list_claims(
        session, caller, page.after, page.limit, payable_id, holder, status
    )
    next_cursor = page.next_cursor(items, lambda c: c["id"])
    return list_answer(items, next_cursor, fmt, ClaimsPublic, "claims.csv")


@router.get("/{claim_id}", response_model=ClaimPublic)
async def get_claim(claim_id: ClaimPath, caller: CurrentCaller, request: Request) -> Any:
    """One piece (404 unless the caller is a party to it)."""
    async with read_session(request) as session:
        view = await service.get_claim(session, caller, claim_id)
    # Written as JSON at once (backend.api.answers): the view is ClaimPublic's fields.
    return json_answer(view)


@router.post("/{claim_id}/transfers", status_code=201, response_model=TransferWrite)
async def transfer_claim(
    claim_id: ClaimPath,
    body: TransferCreate,
    caller: Annotated[Caller, writer()],
    writes: WritesDep,
) -> Any:
    """The holder passes `amount` to `to`: the whole amount moves the piece, less splits a new
    piece off it."""
    args = {
        "claim_id": claim_id,
        "to": body.to,
        "amount": body.amount,
        "invoice_id": body.invoice_id,
    }
    return await writes.run(caller, Command("claims.transfer", args))


@router.get("/{claim_id}/history", response_model=ClaimHistory)
async def claim_history(
    claim_id: ClaimPath, caller: CurrentCaller, session: SessionDep, page: PageDep
) -> Any:
    """The piece's chain events in order, with transaction hashes and block times."""
    items = await service.history(session, caller, claim_id, page.after, page.limit)
    holder = (await service.get_claim(session, caller, claim_id))["holder"]
    custody = await custody_of(session, {holder})
    return {
        "claim_id": claim_id,
        "holder": holder,
        "holder_custody": custody[holder],
        "items": items,
        "next_cursor": page.next_cursor(items, chain_position),
    }


@router.post("/{claim_id}/freeze", response_model=ClaimWrite)
async def freeze_claim(
    claim_id: ClaimPath,
    body: FreezeRequest,
    caller: Operator,
    writes: WritesDep,
) -> Any:
    """Freeze a live piece on court order (the operator; the chain keeps the reason's hash)."""
    args = {"claim_id": claim_id, "reason": body.reason}
    return await writes.run(caller, Command("claims.freeze", args))


@router.post("/{claim_id}/unfreeze", response_model=ClaimWrite)
async def unfreeze_claim(claim_id: ClaimPath, caller: Operator, writes: WritesDep) -> Any:
    """Lift a piece's freeze (the operator)."""
    return await writes.run(caller, Command("claims.unfreeze", {"claim_id": claim_id}))
