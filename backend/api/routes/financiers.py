"""Financier settings: a credit line (exposure limit on chain, registration number) per
obligor, and the auto-approval policy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from backend.api.deps import (
    PageDep,
    SessionDep,
    UnkeyedWritesDep,
    WritesDep,
    require,
    writer,
)
from backend.auth import Caller
from backend.errors import Invalid
from backend.schemas.common import Address
from backend.schemas.financing import (
    CreditLineRequest,
    CreditLinesPublic,
    CreditLineWrite,
    PolicyPublic,
    PolicyRequest,
)
from backend.services import credit_lines, policy
from backend.services.commands import Command
from ledger.roles import Role

router = APIRouter(tags=["financier settings"])
Financier = Annotated[Caller, writer(Role.FINANCIER)]
#: Reads: the financier itself, or auditors and the operator (naming the financier).
Reader = Annotated[Caller, Depends(require(Role.FINANCIER, Role.AUDITOR, Role.OPERATOR))]
FinancierQuery = Annotated[
    Address | None, Query(description="whose (auditors and the operator); default: the caller")
]


@router.put("/v1/credit-lines/{obligor}", response_model=CreditLineWrite)
async def set_credit_line(
    obligor: Annotated[Address, Path(description="the obligor (core enterprise)")],
    body: CreditLineRequest,
    caller: Financier,
    writes: WritesDep,
) -> Any:
    """Set the exposure limit for an obligor on chain and keep its registration number."""
    args = {"obligor": obligor, "limit": body.limit, "registration_no": body.registration_no}
    return await writes.run(caller, Command("credit_lines.set", args))


@router.get("/v1/credit-lines", response_model=CreditLinesPublic)
async def list_credit_lines(
    caller: Reader, session: SessionDep, page: PageDep, financier: FinancierQuery = None
) -> Any:
    """A financier's credit lines with the exposure outstanding on each, in obligor order."""
    if page.after is not None and not isinstance(page.after, str):
        raise Invalid("the cursor is not one this API gave out", code="cursor_invalid")
    items = await credit_lines.list_credit_lines(session, caller, financier, page.after, page.limit)
    return {"items": items, "next_cursor": page.next_cursor(items, lambda c: c["obligor"])}


@router.put("/v1/financing-policy", response_model=PolicyPublic)
async def put_financing_policy(
    body: PolicyRequest, caller: Financier, writes: UnkeyedWritesDep
) -> Any:
    """Replace the caller's auto-approval policy (pending requests are assessed again)."""
    return await writes.run_once(caller, Command("financing_policy.put", body.model_dump()))


@router.get("/v1/financing-policy", response_model=PolicyPublic)
async def get_financing_policy(
    caller: Reader, session: SessionDep, financier: FinancierQuery = None
) -> Any:
    """A financier's auto-approval policy."""
    return await policy.get_policy(session, caller, financier)
