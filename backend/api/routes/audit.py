"""Audit: the chain's events feed, exposure per obligor, the mirror's reconciliation against
the contracts (IX-5) and the API's hash-chained audit log (AP-3). Read only: every member may
read its own events and exposure; auditors and the operator read everything."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from backend import audit_anchors
from backend.api.csv import CSV_RESPONSES
from backend.api.deps import (
    ContextDep,
    CurrentCaller,
    PageDep,
    SessionDep,
    read_session,
    require,
)
from backend.api.lists import list_answer
from backend.auth import Caller
from backend.schemas.audit import (
    AuditRecordsPublic,
    AuditVerificationPublic,
    EventsPublic,
    ExposuresPublic,
    ListFormat,
    ReconciliationPublic,
)
from backend.schemas.common import Address, Hash32, Id
from backend.services import audit_records, events_feed, exposure
from backend.services import reconciliation as reconciling
from backend.services.lists import chain_position
from ledger.roles import Role

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Auditor = Annotated[Caller, Depends(require(Role.AUDITOR, Role.OPERATOR))]
Format = Annotated[ListFormat, Query(alias="format", description="json or csv")]
Block = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="a block number")]
Time = Annotated[datetime | None, Query(description="ISO 8601 (UTC if no zone is given)")]


@router.get("/events", response_model=EventsPublic, responses=CSV_RESPONSES)
async def list_events(
    caller: CurrentCaller,
    request: Request,
    page: PageDep,
    event: Annotated[
        str | None, Query(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$", description="event name")
    ] = None,
    contract: Annotated[
        str | None, Query(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$", description="contract name")
    ] = None,
    claim_id: Annotated[Id | None, Query(description="events about this piece")] = None,
    payable_id: Annotated[Id | None, Query(description="events about this payable")] = None,
    financing_id: Annotated[Id | None, Query(description="events about this request")] = None,
    invoice_id: Annotated[Hash32 | None, Query(description="events about this invoice")] = None,
    account: Annotated[Address | None, Query(description="events about this member")] = None,
    from_block: Block = None,
    to_block: Block = None,
    from_time: Time = None,
    to_time: Time = None,
    fmt: Format = "json",
) -> Any:
    """The contracts' events in chain order (members: about an object of theirs or themselves)."""
    filters = events_feed.EventFilter(
        event=event,
        contract=contract,
        claim_id=claim_id,
        payable_id=payable_id,
        financing_id=financing_id,
        invoice_id=invoice_id,
        account=account,
        from_block=from_block,
        to_block=to_block,
        from_time=from_time,
        to_time=to_time,
    )
    if fmt == "json":
        # Written as JSON at once (events_feed.page_json): the model would check the
        # mirror's own typed columns again, and parse and re-encode every row's arguments.
        async with read_session(request) as session:
            rows = await events_feed.event_rows(session, caller, filters, page.after, page.limit)
        cursor = page.next_cursor(list(rows), lambda r: [r.block_number, r.log_index])
        return Response(events_feed.page_json(rows, cursor), media_type="application/json")
    async with read_session(request) as session:
        items = await events_feed.list_events(session, caller, filters, page.after, page.limit)
    return list_answer(
        items, page.next_cursor(items, chain_position), fmt, EventsPublic, "events.csv"
    )


@router.get("/exposure", response_model=ExposuresPublic, responses=CSV_RESPONSES)
async def list_exposure(
    caller: CurrentCaller,
    session: SessionDep,
    page: PageDep,
    obligor: Annotated[Address | None, Query(description="only this obligor")] = None,
    financier: Annotated[
        Address | None, Query(description="this financier's own rows (auditors: anyone's)")
    ] = None,
    fmt: Format = "json",
) -> Any:
    """Issued, outstanding, overdue and financed value per obligor, with its program limit."""
    items = await exposure.list_exposure(
        session, caller, obligor, financier, page.after, page.limit
    )
    return list_answer(
        items, page.next_cursor(items, exposure.exposure_key), fmt, ExposuresPublic, "exposure.csv"
    )


@router.get("/reconciliation", response_model=ReconciliationPublic)
async def reconciliation(
    caller: Auditor,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=0, le=1000, description="differences listed at most")] = 100,
) -> Any:
    """Compare every mirrored object with the contracts' views at the checkpoint (IX-5)."""
    return await reconciling.reconciliation(ctx.engine, ctx.settings.rpc_url, limit)


@router.get("/log", response_model=AuditRecordsPublic, responses=CSV_RESPONSES)
async def list_log(
    caller: Auditor,
    session: SessionDep,
    page: PageDep,
    member: Annotated[Address | None, Query(description="requests made by this member")] = None,
    method: Annotated[Literal["POST", "PUT", "PATCH", "DELETE"] | None, Query()] = None,
    status: Annotated[int | None, Query(ge=100, le=599, description="the HTTP status")] = None,
    code: Annotated[
        str | None, Query(pattern=r"^[a-z0-9_]{1,64}$", description="the problem code")
    ] = None,
    from_time: Time = None,
    to_time: Time = None,
    fmt: Format = "json",
) -> Any:
    """The API's audit log of mutating requests, accepted or refused, in sequence order."""
    filters = audit_records.LogFilter(member, method, status, code, from_time, to_time)
    items = await audit_records.list_log(session, filters, page.after, page.limit)
    return list_answer(
        items,
        page.next_cursor(items, lambda r: r["seq"]),
        fmt,
        AuditRecordsPublic,
        "audit-log.csv",
    )


@router.get("/log/verify", response_model=AuditVerificationPublic)
async def verify_log(caller: Auditor, ctx: ContextDep) -> Any:
    """Walk the audit log's hash chain (the first record changed, removed or out of place)
    and compare it with its anchors on chain: a record an anchor covers that was rewritten,
    even with every later hash recomputed, or a log truncated below an anchor, fails."""
    return await audit_anchors.verification(ctx.engine, ctx.w3, ctx.deployment)
