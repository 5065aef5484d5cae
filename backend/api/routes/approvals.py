"""Approvals (dual control, SPEC §1): a checker of the member approves or declines a maker's
held write; an approved write runs at once, under the maker's Idempotency-Key and identity, and
the checker gets the write's own answer (the maker's retry replays it). The audit log records
the checker's request beside the maker's."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from backend.api.deps import (
    ContextDep,
    CurrentCaller,
    PageDep,
    SessionDep,
    UnkeyedWritesDep,
    Writes,
    writer,
)
from backend.auth import Caller, caller_of_key
from backend.schemas.approvals import (
    ApprovalDecision,
    ApprovalPublic,
    ApprovalsPublic,
    ApprovalStatus,
    DeclineRequest,
)
from backend.services import approvals as service
from backend.services.commands import Command

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])
ApprovalPath = Annotated[str, Path(pattern="^apr_[0-9a-f]{16}$", description="the approval")]
Checker = Annotated[Caller, writer()]
DECIDED = {
    200: {"description": "declined: the approval; approved: the write's own answer"},
    201: {"description": "approved: the write's own answer (it created an object)"},
}


@router.get("", response_model=ApprovalsPublic)
async def list_approvals(
    caller: CurrentCaller,
    session: SessionDep,
    page: PageDep,
    status: Annotated[ApprovalStatus | None, Query(description="only these")] = None,
) -> Any:
    """The approvals of the caller's member, oldest first."""
    after = page.after if isinstance(page.after, str) else None
    items = await service.list_approvals(session, caller, status, after, page.limit)
    return {"items": items, "next_cursor": page.next_cursor(items, lambda a: a["id"])}


@router.get("/{approval_id}", response_model=ApprovalPublic)
async def get_approval(
    approval_id: ApprovalPath, caller: CurrentCaller, session: SessionDep
) -> Any:
    return service.approval_view(await service.get(session, caller, approval_id))


async def _decide(
    ctx: ContextDep,
    writes: Writes,
    caller: Caller,
    approval_id: str,
    approve: bool,
    reason: str | None,
) -> Any:
    row = await service.decide(ctx.sessions, caller, approval_id, approve, reason)
    if not approve:
        return service.approval_view(row)
    async with ctx.engine.connect() as conn:
        maker = await caller_of_key(conn, row.maker_key_id)
    request = (row.method, row.path, row.body.encode("latin-1"))
    command = Command(row.operation, json.loads(row.arguments))
    return await writes.run_keyed(maker, row.idempotency_key, request, command)


@router.post("/{approval_id}", responses=DECIDED)  # type: ignore[arg-type]
async def decide(
    approval_id: ApprovalPath,
    body: ApprovalDecision,
    caller: Checker,
    ctx: ContextDep,
    writes: UnkeyedWritesDep,
) -> Any:
    """A checker of the member approves or declines (`decision`) a held write; never its own
    (`checker_is_maker`), and only checkers (`not_checker`)."""
    return await _decide(ctx, writes, caller, approval_id, body.decision == "approve", body.reason)


@router.post("/{approval_id}/approve", responses=DECIDED)  # type: ignore[arg-type]
async def approve(
    approval_id: ApprovalPath, caller: Checker, ctx: ContextDep, writes: UnkeyedWritesDep
) -> Any:
    """Approve a held write: it runs now; the answer is the write's own."""
    return await _decide(ctx, writes, caller, approval_id, True, None)


@router.post("/{approval_id}/decline", response_model=ApprovalPublic)
async def decline(
    approval_id: ApprovalPath,
    body: DeclineRequest,
    caller: Checker,
    ctx: ContextDep,
    writes: UnkeyedWritesDep,
) -> Any:
    """Decline a held write: every retry of it answers `409 approval_declined`."""
    return await _decide(ctx, writes, caller, approval_id, False, body.reason)
