"""Members: the operator onboards them; every member reads the directory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from backend.api.deps import ContextDep, CurrentCaller, PageDep, SessionDep, WritesDep, writer
from backend.auth import Caller
from backend.schemas.common import Address
from backend.schemas.members import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeysPublic,
    KycRenewal,
    MemberCreate,
    MemberCreated,
    MemberPublic,
    MembersPublic,
    MemberWrite,
    ProgramLimitPublic,
    ProgramLimitRequest,
    RoleName,
    SuspendRequest,
)
from backend.services import members as service
from ledger.roles import Role

router = APIRouter(prefix="/v1/members", tags=["members"])
AddressPath = Annotated[Address, Path(description="the member's address")]
Operator = Annotated[Caller, writer(Role.OPERATOR)]


@router.post("", status_code=201, response_model=MemberCreated)
async def create_member(
    body: MemberCreate, caller: Operator, ctx: ContextDep, session: SessionDep, writes: WritesDep
) -> Any:
    """Onboard a member: its chain account and key, its roles on chain, its first API key."""
    return await writes.run(
        caller,
        lambda: service.create_member(
            ctx, session, caller, body.name, body.roles, body.kyc_expires_at
        ),
        MemberCreated,
        status=201,
    )


@router.get("", response_model=MembersPublic)
async def list_members(
    caller: CurrentCaller,
    session: SessionDep,
    page: PageDep,
    role: Annotated[RoleName | None, Query(description="only members with this role")] = None,
    status: Annotated[str | None, Query(pattern="^(active|suspended)$")] = None,
) -> Any:
    """The member directory, in address order."""
    after = page.after if isinstance(page.after, str) else None
    items = await service.list_members(
        session, after, page.limit, Role(role) if role else None, status
    )
    return {"items": items, "next_cursor": page.next_cursor(items, lambda m: m["address"])}


@router.get("/{address}", response_model=MemberPublic)
async def get_member(address: AddressPath, caller: CurrentCaller, session: SessionDep) -> Any:
    """One member."""
    return await service.get_member(session, address)


@router.post("/{address}/suspend", response_model=MemberWrite)
async def suspend_member(
    address: AddressPath,
    body: SuspendRequest,
    caller: Operator,
    ctx: ContextDep,
    session: SessionDep,
    writes: WritesDep,
) -> Any:
    """Suspend a member: it can do no new business until reinstated."""
    return await writes.run(
        caller, lambda: service.suspend(ctx, session, caller, address, body.reason), MemberWrite
    )


@router.post("/{address}/reinstate", response_model=MemberWrite)
async def reinstate_member(
    address: AddressPath, caller: Operator, ctx: ContextDep, session: SessionDep, writes: WritesDep
) -> Any:
    """Reinstate a suspended member."""
    return await writes.run(
        caller, lambda: service.reinstate(ctx, session, caller, address), MemberWrite
    )


@router.post("/{address}/kyc", response_model=MemberWrite)
async def renew_kyc(
    address: AddressPath,
    body: KycRenewal,
    caller: Operator,
    ctx: ContextDep,
    session: SessionDep,
    writes: WritesDep,
) -> Any:
    """Renew a member's KYC until a new date."""
    return await writes.run(
        caller,
        lambda: service.renew_kyc(ctx, session, caller, address, body.kyc_expires_at),
        MemberWrite,
    )


@router.put("/{address}/program-limit", response_model=ProgramLimitPublic)
async def set_program_limit(
    address: AddressPath,
    body: ProgramLimitRequest,
    caller: Operator,
    ctx: ContextDep,
    session: SessionDep,
    writes: WritesDep,
) -> Any:
    """Set a core enterprise's program limit: its outstanding face value never exceeds it."""
    return await writes.run(
        caller,
        lambda: service.set_program_limit(ctx, session, caller, address, body.program_limit),
        ProgramLimitPublic,
    )


@router.get("/{address}/api-keys", response_model=ApiKeysPublic)
async def list_api_keys(address: AddressPath, caller: CurrentCaller, session: SessionDep) -> Any:
    """A member's API keys (never their secrets)."""
    return {"items": await service.list_keys(session, caller, address)}


@router.post("/{address}/api-keys", status_code=201, response_model=ApiKeyCreated)
async def rotate_api_key(
    address: AddressPath,
    body: ApiKeyCreate,
    caller: Annotated[Caller, writer()],
    session: SessionDep,
    writes: WritesDep,
) -> Any:
    """Make a new API key (shown once; the member itself or the operator; an auditor's keys
    are the operator's to manage); revoke the old one when clients have moved."""
    return await writes.run(
        caller,
        lambda: service.rotate_key(session, caller, address, body.label),
        ApiKeyCreated,
        status=201,
    )


@router.delete("/{address}/api-keys/{key_id}", response_model=ApiKeyPublic)
async def revoke_api_key(
    address: AddressPath,
    key_id: Annotated[str, Path(pattern="^[0-9a-f]{12}$")],
    caller: Annotated[Caller, writer()],
    session: SessionDep,
) -> Any:
    """Revoke an API key at once."""
    return await service.revoke_key(session, caller, address, key_id)
