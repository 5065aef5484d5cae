"""Payables: the core enterprise issues them, the supplier may decline one, pieces are settled
at maturity by the obligor or its clearing agent, anyone marks an unpaid one overdue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from backend.api.csv import CSV_RESPONSES
from backend.api.deps import ContextDep, CurrentCaller, PageDep, SessionDep, WritesDep, writer
from backend.api.routes.invoices import list_answer
from backend.auth import Caller
from backend.schemas.common import Address, Id
from backend.schemas.invoices import ListFormat
from backend.schemas.payables import (
    MAX_TREE_LEVELS,
    PayableCreate,
    PayableOverdueWrite,
    PayablePublic,
    PayablesPublic,
    PayableStatus,
    PayableTree,
    PayableWrite,
    SettlementCreate,
    SettlementsWrite,
)
from backend.services import payables as service
from ledger.roles import Role

router = APIRouter(prefix="/v1/payables", tags=["payables"])
PayablePath = Annotated[Id, Path(description="the payable's id")]
Member = Annotated[Caller, writer()]


@router.post("", status_code=201, response_model=PayableWrite)
async def issue_payable(
    body: PayableCreate,
    caller: Annotated[Caller, writer(Role.CORE_ENTERPRISE)],
    ctx: ContextDep,
    session: SessionDep,
    writes: WritesDep,
) -> Any:
    """Issue a payable to a supplier against confirmed invoices; mints its root piece."""
    return await writes.run(
        caller, lambda: service.issue(ctx, session, caller, body), PayableWrite, status=201
    )


@router.get("", response_model=PayablesPublic, responses=CSV_RESPONSES)
async def list_payables(
    caller: CurrentCaller,
    session: SessionDep,
    page: PageDep,
    status: Annotated[PayableStatus | None, Query(description="only this status")] = None,
    obligor: Annotated[Address | None, Query(description="only this obligor's")] = None,
    supplier: Annotated[Address | None, Query(description="only those issued to it")] = None,
    fmt: Annotated[ListFormat, Query(alias="format", description="json or csv")] = "json",
) -> Any:
    """The payables the caller is a party to or holds a piece of, in issue order."""
    items = await service.list_payables(
        session, caller, page.after, page.limit, status, obligor, supplier
    )
    next_cursor = page.next_cursor(items, lambda p: p["id"])
    return list_answer(items, next_cursor, fmt, PayablesPublic, "payables.csv")


@router.get("/{payable_id}", response_model=PayablePublic)
async def get_payable(payable_id: PayablePath, caller: CurrentCaller, session: SessionDep) -> Any:
    """One payable (404 unless the caller is a party to it or holds a piece of it)."""
    return await service.get_payable(session, caller, payable_id)


@router.get("/{payable_id}/tree", response_model=PayableTree)
async def get_payable_tree(
    payable_id: PayablePath,
    caller: CurrentCaller,
    session: SessionDep,
    from_claim_id: Annotated[
        Id | None, Query(description="start at this piece (default: the root piece)")
    ] = None,
    levels: Annotated[
        int, Query(ge=1, le=MAX_TREE_LEVELS, description="levels nested below the start")
    ] = MAX_TREE_LEVELS,
) -> Any:
    """The lineage tree of the payable's pieces (its obligor, supplier, clearing agent and
    auditors only)."""
    return await service.tree(session, caller, payable_id, from_claim_id, levels)


@router.post("/{payable_id}/settlements", response_model=SettlementsWrite)
async def settle_pieces(
    payable_id: PayablePath,
    body: SettlementCreate,
    caller: Member,
    ctx: ContextDep,
    session: SessionDep,
    writes: WritesDep,
) -> Any:
    """Record that the holders of the listed pieces were paid, each with its bank payment
    reference (from the due date on; the obligor or the payable's clearing agent)."""
    return await writes.run(
        caller,
        lambda: service.settle(ctx, session, caller, payable_id, body.items),
        SettlementsWrite,
    )


@router.post("/{payable_id}/overdue", response_model=PayableOverdueWrite)
async def mark_overdue(
    payable_id: PayablePath, caller: Member, ctx: ContextDep, session: SessionDep, writes: WritesDep
) -> Any:
    """Mark the payable Overdue once its due date and grace period have passed unpaid."""
    return await writes.run(
        caller,
        lambda: service.mark_overdue(ctx, session, caller, payable_id),
        PayableOverdueWrite,
    )


@router.post("/{payable_id}/cancel", response_model=PayableWrite)
async def cancel_payable(
    payable_id: PayablePath, caller: Member, ctx: ContextDep, session: SessionDep, writes: WritesDep
) -> Any:
    """The supplier declines a payable it has not touched: the invoices and limit are freed."""
    return await writes.run(
        caller, lambda: service.cancel(ctx, session, caller, payable_id), PayableWrite
    )
