"""Members: the operator onboards them; every member reads the directory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from backend.api.deps import (
    CurrentCaller,
    PageDep,
    SessionDep,
    UnkeyedWritesDep,
    WritesDep,
    writer,
)
from backend.auth import Caller
from backend.schemas.common import Address
from backend.schemas.members import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeysPublic,
    DualControlPublic,
    DualControlRequest,
    KycRenewal,
    MemberCreate,
    MemberCreated,
    MemberPublic,
    MembersPublic,
    MemberWrite,
    OrgUserCreate,
    OrgUserCreated,
    OrgUsersPublic,
    ProgramLimitPublic,
    ProgramLimitRequest,
    RoleName,
    SuspendRequest,
)
from backend.services import members as service
from backend.services import org_users
from backend.services.commands import Command
from ledger.roles import Role

router = APIRouter(prefix="/v1/members", tags=["members"])
AddressPath = Annotated[Address, Path(description="the member's address")]
Operator = Annotated[Caller, writer(Role.OPERATOR)]


@router.post("", status_code=201, response_model=MemberCreated)
async def create_member(body: MemberCreate, caller: Operator, writes: WritesDep) -> Any:
    """Onboard a member: its roles on chain and its first API key (its admin user's); with
    `address`, `self` custody (the member's own account, no key kept here), otherwise
    `hosted` (the account and its key made and kept here)."""
    args = {
        "name": body.name,
        "roles": list(body.roles),
        "kyc_expires_at": int(body.kyc_expires_at.timestamp()),
        "address": body.address,
    }
    return await writes.run(caller, Command("members.create", args))


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
    address: AddressPath, body: SuspendRequest, caller: Operator, writes: WritesDep
) -> Any:
    """Suspend a member: it can do no new business until reinstated."""
    args = {"address": address, "reason": body.reason}
    return await writes.run(caller, Command("members.suspend", args))


@router.post("/{address}/reinstate", response_model=MemberWrite)
async def reinstate_member(address: AddressPath, caller: Operator, writes: WritesDep) -> Any:
    """Reinstate a suspended member."""
    return await writes.run(caller, Command("members.reinstate", {"address": address}))


@router.post("/{address}/kyc", response_model=MemberWrite)
async def renew_kyc(
    address: AddressPath, body: KycRenewal, caller: Operator, writes: WritesDep
) -> Any:
    """Renew a member's KYC until a new date."""
    args = {"address": address, "kyc_expires_at": int(body.kyc_expires_at.timestamp())}
    return await writes.run(caller, Command("members.renew_kyc", args))


@router.put("/{address}/program-limit", response_model=ProgramLimitPublic)
async def set_program_limit(
    address: AddressPath, body: ProgramLimitRequest, caller: Operator, writes: WritesDep
) -> Any:
    """Set a core enterprise's program limit: its outstanding face value never exceeds it."""
    args = {"obligor": address, "program_limit": body.program_limit}
    return await writes.run(caller, Command("members.set_program_limit", args))


@router.get("/{address}/api-keys", response_model=ApiKeysPublic)
async def list_api_keys(address: AddressPath, caller: CurrentCaller, session: SessionDep) -> Any:
    """A member's API keys (never their secrets)."""
    return {"items": await service.list_keys(session, caller, address)}


@router.post("/{address}/api-keys", status_code=201, response_model=ApiKeyCreated)
async def rotate_api_key(
    address: AddressPath,
    body: ApiKeyCreate,
    caller: Annotated[Caller, writer()],
    writes: WritesDep,
) -> Any:
    """Make a new API key (shown once) for the calling admin user of the member; the operator
    makes none (`operator_cannot_make_keys`); revoke the old one when clients have moved."""
    args = {"address": address, "label": body.label}
    return await writes.run(caller, Command("api_keys.create", args))


@router.delete("/{address}/api-keys/{key_id}", response_model=ApiKeyPublic)
async def revoke_api_key(
    address: AddressPath,
    key_id: Annotated[str, Path(pattern="^[0-9a-f]{12}$")],
    caller: Annotated[Caller, writer()],
    writes: UnkeyedWritesDep,
) -> Any:
    """Revoke an API key at once (the member's admin, a user its own, or the operator for
    security)."""
    args = {"address": address, "key_id": key_id}
    return await writes.run_once(caller, Command("api_keys.revoke", args))


@router.get("/{address}/users", response_model=OrgUsersPublic)
async def list_users(
    address: AddressPath, caller: CurrentCaller, session: SessionDep, page: PageDep
) -> Any:
    """The member's organisation users (its own users, the operator and auditors)."""
    after = page.after if isinstance(page.after, str) else None
    items = await org_users.list_users(session, caller, address, after, page.limit)
    return {"items": items, "next_cursor": page.next_cursor(items, lambda u: u["id"])}


@router.post("/{address}/users", status_code=201, response_model=OrgUserCreated)
async def create_user(
    address: AddressPath,
    body: OrgUserCreate,
    caller: Annotated[Caller, writer()],
    writes: WritesDep,
) -> Any:
    """A user of the member (`admin`, `maker` or `checker`) with its own API key (shown once);
    the member's admin users only."""
    args = {"address": address, "name": body.name, "role": body.role}
    return await writes.run(caller, Command("users.create", args))


@router.put("/{address}/dual-control", response_model=DualControlPublic)
async def set_dual_control(
    address: AddressPath,
    body: DualControlRequest,
    caller: Annotated[Caller, writer()],
    writes: UnkeyedWritesDep,
) -> Any:
    """Dual control on or off: with it on, a business write waits for a checker of the member
    (`202 awaiting_approval`); the member's admin users only."""
    args = {"address": address, "enabled": body.enabled}
    return await writes.run_once(caller, Command("members.set_dual_control", args))
