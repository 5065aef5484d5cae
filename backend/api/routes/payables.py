"""Payables: the core enterprise issues them, the supplier may decline one, pieces are settled
at maturity by the obligor or its clearing agent, anyone marks an unpaid one overdue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from backend.api.answers import json_answer
from backend.api.csv import CSV_RESPONSES
from backend.api.deps import (
    CurrentCaller,
    PageDep,
    PortsDep,
    SessionDep,
    WritesDep,
    decode_cursor,
    encode_cursor,
    read_session,
    writer,
)
from backend.api.lists import list_answer
from backend.auth import Caller
from backend.errors import Invalid
from backend.schemas.common import Address, Id
from backend.schemas.invoices import ListFormat, seconds
from backend.schemas.payables import (
    MAX_COMPACT_PAGE,
    MAX_TREE_LEVELS,
    PayableCreate,
    PayableOverdueWrite,
    PayablePublic,
    PayablesPublic,
    PayableStatus,
    PayableTree,
    PayableTreeCompact,
    PayableWrite,
    SettlementCreate,
    SettlementsWrite,
    TreeFormat,
)
from backend.services import payables as service
from backend.services.commands import Command
from ledger.roles import Role

router = APIRouter(prefix="/v1/payables", tags=["payables"])
PayablePath = Annotated[Id, Path(description="the payable's id")]
Member = Annotated[Caller, writer()]


@router.post("", status_code=201, response_model=PayableWrite)
async def issue_payable(
    body: PayableCreate,
    caller: Annotated[Caller, writer(Role.CORE_ENTERPRISE)],
    writes: WritesDep,
) -> Any:
    """Issue a payable to a supplier against confirmed invoices; mints its root piece."""
    args = {
        "supplier": body.supplier,
        "face_value": body.face_value,
        "due_date": seconds(body.due_date),
        "invoice_ids": list(body.invoice_ids),
        "clearing_agent": body.clearing_agent,
    }
    return await writes.run(caller, Command("payables.issue", args))


@router.get("", response_model=PayablesPublic, responses=CSV_RESPONSES)
async def list_payables(
    caller: CurrentCaller,
    request: Request,
    ports: PortsDep,
    page: PageDep,
    status: Annotated[PayableStatus | None, Query(description="only this status")] = None,
    obligor: Annotated[Address | None, Query(description="only this obligor's")] = None,
    supplier: Annotated[Address | None, Query(description="only those issued to it")] = None,
    fmt: Annotated[ListFormat, Query(alias="format", description="json or csv")] = "json",
) -> Any:
    """The payables the caller is a party to or holds a piece of, in issue order."""
    async with read_session(request) as session:
        items = await service.list_payables(
            session, caller, page.after, page.limit, status, obligor, supplier
        )
    await service.with_overdue_from(ports.ledger, items)
    next_cursor = page.next_cursor(items, lambda p: p["id"])
    return list_answer(items, next_cursor, fmt, PayablesPublic, "payables.csv", exact=True)


@router.get("/{payable_id}", response_model=PayablePublic)
async def get_payable(
    payable_id: PayablePath, caller: CurrentCaller, session: SessionDep, ports: PortsDep
) -> Any:
    """One payable (404 unless the caller is a party to it or holds a piece of it)."""
    view = await service.get_payable(session, caller, payable_id)
    return (await service.with_overdue_from(ports.ledger, [view]))[0]


@router.get("/{payable_id}/tree", response_model=PayableTree | PayableTreeCompact)
async def get_payable_tree(
    payable_id: PayablePath,
    caller: CurrentCaller,
    request: Request,
    from_claim_id: Annotated[
        Id | None, Query(description="start at this piece (default: the root piece)")
    ] = None,
    levels: Annotated[
        int, Query(ge=1, le=MAX_TREE_LEVELS, description="levels nested below the start")
    ] = MAX_TREE_LEVELS,
    fmt: Annotated[
        TreeFormat,
        Query(
            alias="format",
            description="`nested` (pieces inside their parents) or `compact` (columns, paged "
            "by whole levels: a tree of thousands of pieces in a fraction of the bytes)",
        ),
    ] = "nested",
    cursor: Annotated[
        str | None,
        Query(max_length=100, description="compact: `next_cursor` of the page before"),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_COMPACT_PAGE,
            description="compact: pieces per page at most (whole levels; a level larger "
            "than this is a page by itself)",
        ),
    ] = MAX_COMPACT_PAGE,
) -> Any:
    """The lineage tree of the payable's pieces (its obligor, supplier, clearing agent and
    auditors only)."""
    if fmt == "nested":
        if cursor is not None:
            raise Invalid("cursor pages format=compact only", code="cursor_invalid")
        async with read_session(request) as session:
            nested = await service.tree(session, caller, payable_id, from_claim_id, levels)
        # Written as JSON at once (backend.api.answers): the nodes are TreeNode's fields.
        return json_answer(nested)
    first = 0
    if cursor is not None:
        first = decode_cursor(cursor)
        if not isinstance(first, int) or isinstance(first, bool) or not 0 < first <= levels:
            raise Invalid("the cursor is not one this API gave out", code="cursor_invalid")
    async with read_session(request) as session:
        answer = await service.tree_compact(
            session, caller, payable_id, from_claim_id, levels, first, limit
        )
    following = answer.pop("next_level")
    answer["next_cursor"] = None if following is None else encode_cursor(following)
    # Built as JSON at once: validating thousands of column entries again would cost more
    # than the tree (the service builds exactly PayableTreeCompact's fields).
    return JSONResponse(answer)


@router.post("/{payable_id}/settlements", response_model=SettlementsWrite)
async def settle_pieces(
    payable_id: PayablePath,
    body: SettlementCreate,
    caller: Member,
    writes: WritesDep,
) -> Any:
    """Record that the holders of the listed pieces were paid, each with its bank payment
    reference (from the due date on; the obligor or the payable's clearing agent)."""
    items = [{"claim_id": i.claim_id, "payment_ref": i.payment_ref} for i in body.items]
    args = {"payable_id": payable_id, "items": items}
    return await writes.run(caller, Command("payables.settle", args))


@router.post("/{payable_id}/overdue", response_model=PayableOverdueWrite)
async def mark_overdue(payable_id: PayablePath, caller: Member, writes: WritesDep) -> Any:
    """Mark the payable Overdue once its due date and grace period have passed unpaid; time
    the platform was paused or a piece of it frozen does not count towards the grace."""
    return await writes.run(caller, Command("payables.mark_overdue", {"payable_id": payable_id}))


@router.post("/{payable_id}/cancel", response_model=PayableWrite)
async def cancel_payable(payable_id: PayablePath, caller: Member, writes: WritesDep) -> Any:
    """The supplier declines a payable it has not touched: the invoices and limit are freed."""
    return await writes.run(caller, Command("payables.cancel", {"payable_id": payable_id}))
