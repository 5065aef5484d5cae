"""Organisation users (SPEC §1): the people of a member, each with its own API keys and a role
— ``admin`` (manages the member's users, keys and settings), ``maker`` (prepares writes),
``checker`` (approves them under dual control) — and the member's dual-control setting. Only
the member's own admin users change them (never the operator). No FastAPI in here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import ORG_ROLES, Caller, store_key
from backend.errors import Invalid, NotFound
from backend.models import MemberProfile, OrgUser
from backend.ports import Ports, WriteContext
from backend.schemas.common import iso
from backend.services.members import new_user_id, require_member_admin
from db.engine import now_s


def user_view(row: OrgUser) -> dict[str, Any]:
    return {
        "id": row.id,
        "member": row.member,
        "name": row.name,
        "role": row.role,
        "created_at": iso(row.created_at),
    }


async def list_users(
    session: AsyncSession, caller: Caller, address: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """The member's users in id order: for its own users, the operator and auditors."""
    if caller.address != address and not caller.sees_everything:
        raise NotFound("no such member", code="member_not_found")
    query = select(OrgUser).where(OrgUser.member == address).order_by(OrgUser.id).limit(limit)
    if after:
        query = query.where(OrgUser.id > after)
    return [user_view(r) for r in (await session.execute(query)).scalars()]


async def create_user(
    ports: Ports, write: WriteContext, address: str, name: str, role: str
) -> dict[str, Any]:
    """A user of the member with its role and first API key (returned once)."""
    require_member_admin(write.caller, address)
    if role not in ORG_ROLES:
        raise Invalid(f"role must be one of {', '.join(ORG_ROLES)}", code="org_role_invalid")
    async with ports.session() as session:
        if await session.get(MemberProfile, address) is None:
            raise NotFound("no such member", code="member_not_found")
        user = OrgUser(id=new_user_id(), member=address, name=name, role=role, created_at=now_s())
        session.add(user)
        key_row, full = await store_key(session, address, f"user {name}"[:100], user.id)
        await session.commit()
        return {**user_view(user), "api_key": full, "api_key_id": key_row.id}


async def set_dual_control(
    ports: Ports, write: WriteContext, address: str, enabled: bool
) -> dict[str, Any]:
    """Turn dual control on or off for the member (its admin users only)."""
    require_member_admin(write.caller, address)
    async with ports.session() as session:
        profile = await session.get(MemberProfile, address)
        if profile is None:
            raise NotFound("no such member", code="member_not_found")
        profile.dual_control = enabled
        await session.commit()
    return {"address": address, "dual_control": enabled}
