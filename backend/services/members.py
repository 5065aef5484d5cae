"""Members: onboarding (key, chain account, roles on chain, first API key), suspension,
reinstatement, KYC renewal, program limits and API keys. No FastAPI in here."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eth_utils.address import to_checksum_address
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller, roles_of, store_key
from backend.chain import CURRENT_JOURNAL, Mined
from backend.context import AppContext
from backend.errors import Forbidden, Invalid, NotFound
from backend.models import ApiKey, KeystoreEntry, MemberProfile
from backend.schemas.common import iso
from db.engine import now_s
from indexer import models as mirror
from ledger.roles import Role, roles_to_mask

#: Gas money a new member gets where gas has a price (anvil); QBFT networks run at zero.
GAS_ALLOWANCE_WEI = 10 * 10**18
FIRST_KEY_LABEL = "first key"


def reason_hash(reason: str) -> bytes:
    return hashlib.sha256(reason.encode()).digest()


async def member_view(session: AsyncSession, address: str) -> dict[str, Any] | None:
    """A member as the API shows it (chain facts from the mirror, the name from the API)."""
    row = await session.get(mirror.Member, address)
    profile = await session.get(MemberProfile, address)
    roles = await roles_of(session, address)
    if row is None and profile is None and not roles:
        return None
    return {
        "address": address,
        "name": profile.name if profile else None,
        "roles": sorted(r.value for r in roles),
        "status": row.status if row is not None else "active",
        "kyc_expires_at": iso(row.kyc_expires_at) if row is not None else None,
    }


async def list_members(
    session: AsyncSession,
    after: str | None,
    limit: int,
    role: Role | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Registered members in address order (the directory every member may read)."""
    query = select(mirror.Member.address).order_by(mirror.Member.address).limit(limit)
    if after:
        query = query.where(mirror.Member.address > after)
    if status:
        query = query.where(mirror.Member.status == status)
    if role is not None:
        query = query.where(mirror.Member.roles.op("&")(role.bit) != 0)
    out = []
    for address in (await session.execute(query)).scalars():
        view = await member_view(session, address)
        if view is not None:
            out.append(view)
    return out


async def get_member(session: AsyncSession, address: str) -> dict[str, Any]:
    view = await member_view(session, to_checksum_address(address))
    if view is None:
        raise NotFound("no such member", code="member_not_found")
    return view


def _written(mined: Mined) -> dict[str, Any]:
    return {"tx_hash": mined.tx_hash, "block_number": mined.block_number}


async def create_member(
    ctx: AppContext,
    session: AsyncSession,
    caller: Caller,
    name: str,
    roles: Sequence[str],
    kyc_expires_at: datetime,
) -> dict[str, Any]:
    """Make the member's account and key, register it with its roles on chain, fund its gas
    where gas costs something, and make its first API key (returned once)."""
    kyc = int(kyc_expires_at.timestamp())
    if kyc <= await ctx.gateway.chain_time():
        raise Invalid("kyc_expires_at must be in the future", code="kyc_expiry_invalid")
    mask = roles_to_mask(Role(r) for r in roles)
    journal = CURRENT_JOURNAL.get()
    address: str | None = journal.state.get("account") if journal is not None else None
    if address is None:
        account, keyfile = ctx.keystore.new_account()
        address = to_checksum_address(account.address)
        session.add(KeystoreEntry(address=address, keyfile=keyfile))
        session.add(MemberProfile(address=address, name=name, created_at=now_s()))
        await session.commit()
        if journal is not None:
            await journal.remember(account=address)
    if await ctx.gateway.gas_price() > 0:
        balance = await ctx.w3.eth.get_balance(address)  # type: ignore[arg-type]
        if balance < GAS_ALLOWANCE_WEI // 2:
            await ctx.gateway.send_value(session, caller.address, address, GAS_ALLOWANCE_WEI)
    registry = ctx.gateway.suite.members
    mined = await ctx.gateway.transact(
        session, caller.address, registry.functions.registerMember(address, mask, kyc)
    )
    # A run that died after making a first key never handed it out: retire it.
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.member == address,
            ApiKey.label == FIRST_KEY_LABEL,
            ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=now_s())
    )
    key_row, full = await store_key(session, address, FIRST_KEY_LABEL)
    await session.commit()
    view = await get_member(session, address)
    return {**view, **_written(mined), "api_key": full, "api_key_id": key_row.id}


async def suspend(
    ctx: AppContext, session: AsyncSession, caller: Caller, address: str, reason: str
) -> dict[str, Any]:
    fn = ctx.gateway.suite.members.functions.suspendMember(address, reason_hash(reason))
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return {**await get_member(session, address), **_written(mined)}


async def reinstate(
    ctx: AppContext, session: AsyncSession, caller: Caller, address: str
) -> dict[str, Any]:
    fn = ctx.gateway.suite.members.functions.reinstateMember(address)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return {**await get_member(session, address), **_written(mined)}


async def renew_kyc(
    ctx: AppContext, session: AsyncSession, caller: Caller, address: str, expires: datetime
) -> dict[str, Any]:
    kyc = int(expires.timestamp())
    # Before 1970 fits no uint64: refuse it as the chain refuses any past expiry.
    if kyc <= await ctx.gateway.chain_time():
        raise Invalid("kyc_expires_at must be in the future", code="kyc_expiry_invalid")
    fn = ctx.gateway.suite.members.functions.renewKyc(address, kyc)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    return {**await get_member(session, address), **_written(mined)}


async def set_program_limit(
    ctx: AppContext, session: AsyncSession, caller: Caller, obligor: str, limit: int
) -> dict[str, Any]:
    fn = ctx.gateway.suite.claim_ledger.functions.setProgramLimit(obligor, limit)
    mined = await ctx.gateway.transact(session, caller.address, fn)
    account = await session.get(mirror.ObligorAccount, obligor)
    return {
        "obligor": obligor,
        "program_limit": account.program_limit if account else limit,
        "outstanding": account.outstanding if account else 0,
        **_written(mined),
    }


# -- API keys --------------------------------------------------------------------------------


def _may_manage_keys(caller: Caller, address: str) -> None:
    if caller.address != address and not caller.is_operator:
        raise NotFound("no such member", code="member_not_found")


def _key_view(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "label": row.label,
        "created_at": iso(row.created_at),
        "revoked_at": iso(row.revoked_at),
    }


async def list_keys(session: AsyncSession, caller: Caller, address: str) -> list[dict[str, Any]]:
    _may_manage_keys(caller, address)
    rows = await session.execute(
        select(ApiKey).where(ApiKey.member == address).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [_key_view(r) for r in rows.scalars()]


async def rotate_key(
    session: AsyncSession, caller: Caller, address: str, label: str
) -> dict[str, Any]:
    """A new key for the member (the old ones stay valid until revoked)."""
    _may_manage_keys(caller, address)
    if await member_view(session, address) is None:
        raise NotFound("no such member", code="member_not_found")
    row, full = await store_key(session, address, label)
    await session.commit()
    return {**_key_view(row), "api_key": full}


async def revoke_key(
    session: AsyncSession, caller: Caller, address: str, key_id: str
) -> dict[str, Any]:
    _may_manage_keys(caller, address)
    row = (
        await session.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.member == address))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("no such API key", code="api_key_not_found")
    if row.id == caller.key_id and caller.address == address:
        others = await session.execute(
            select(ApiKey.id).where(
                ApiKey.member == address, ApiKey.revoked_at.is_(None), ApiKey.id != key_id
            )
        )
        if others.first() is None:
            raise Forbidden(
                "this is the member's last valid key: make another first", code="last_api_key"
            )
    if row.revoked_at is None:
        row.revoked_at = now_s()
        await session.commit()
    return _key_view(row)
