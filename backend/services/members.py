"""Members: onboarding (key, chain account, roles on chain, first API key), suspension,
reinstatement, KYC renewal, program limits and API keys. No FastAPI in here: writes take
the :class:`~backend.ports.Ports` and the :class:`~backend.ports.WriteContext`, reads a
session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_utils.address import to_checksum_address
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller, roles_of, store_key
from backend.errors import Forbidden, Invalid, NotFound
from backend.models import ApiKey, KeystoreEntry, MemberProfile
from backend.ports import Mined, Ports, WriteContext
from backend.schemas.common import iso
from backend.services.encodings import sha256_text
from db.engine import now_s
from indexer import models as mirror
from ledger import calls
from ledger.roles import Role, roles_to_mask

#: Gas money a new member gets where gas has a price (anvil); QBFT networks run at zero.
GAS_ALLOWANCE_WEI = 10 * 10**18
FIRST_KEY_LABEL = "first key"


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


async def create_member(
    ports: Ports, write: WriteContext, name: str, roles: Sequence[str], kyc_expires_at: int
) -> dict[str, Any]:
    """Make the member's account and key, register it with its roles on chain, fund its gas
    where gas costs something, and make its first API key (returned once)."""
    if kyc_expires_at <= await ports.ledger.chain_time():
        raise Invalid("kyc_expires_at must be in the future", code="kyc_expiry_invalid")
    mask = roles_to_mask(Role(r) for r in roles)
    address: str | None = write.remembered("account")
    if address is None:
        account = ports.ledger.new_account()
        address = account.address
        async with ports.session() as session:
            session.add(KeystoreEntry(address=address, keyfile=account.keyfile))
            session.add(MemberProfile(address=address, name=name, created_at=now_s()))
            await session.commit()
        await write.remember(account=address)
    if (
        await ports.ledger.gas_price() > 0
        and await ports.ledger.balance(address) < GAS_ALLOWANCE_WEI // 2
    ):
        await ports.ledger.send_value(write, address, GAS_ALLOWANCE_WEI)
    mined = await ports.ledger.submit(write, calls.register_member(address, mask, kyc_expires_at))
    async with ports.session() as session:
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
    return {**view, **mined.written, "api_key": full, "api_key_id": key_row.id}


async def _member_after(ports: Ports, address: str, mined: Mined) -> dict[str, Any]:
    async with ports.session() as session:
        return {**await get_member(session, address), **mined.written}


async def suspend(ports: Ports, write: WriteContext, address: str, reason: str) -> dict[str, Any]:
    mined = await ports.ledger.submit(write, calls.suspend_member(address, sha256_text(reason)))
    return await _member_after(ports, address, mined)


async def reinstate(ports: Ports, write: WriteContext, address: str) -> dict[str, Any]:
    mined = await ports.ledger.submit(write, calls.reinstate_member(address))
    return await _member_after(ports, address, mined)


async def renew_kyc(
    ports: Ports, write: WriteContext, address: str, kyc_expires_at: int
) -> dict[str, Any]:
    # Before 1970 fits no uint64: refuse it as the chain refuses any past expiry.
    if kyc_expires_at <= await ports.ledger.chain_time():
        raise Invalid("kyc_expires_at must be in the future", code="kyc_expiry_invalid")
    mined = await ports.ledger.submit(write, calls.renew_kyc(address, kyc_expires_at))
    return await _member_after(ports, address, mined)


async def set_program_limit(
    ports: Ports, write: WriteContext, obligor: str, program_limit: int
) -> dict[str, Any]:
    mined = await ports.ledger.submit(write, calls.set_program_limit(obligor, program_limit))
    async with ports.session() as session:
        account = await session.get(mirror.ObligorAccount, obligor)
    return {
        "obligor": obligor,
        "program_limit": account.program_limit if account else program_limit,
        "outstanding": account.outstanding if account else 0,
        **mined.written,
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


async def rotate_key(ports: Ports, write: WriteContext, address: str, label: str) -> dict[str, Any]:
    """A new key for the member (the old ones stay valid until revoked)."""
    _may_manage_keys(write.caller, address)
    async with ports.session() as session:
        if await member_view(session, address) is None:
            raise NotFound("no such member", code="member_not_found")
        row, full = await store_key(session, address, label)
        await session.commit()
    return {**_key_view(row), "api_key": full}


async def revoke_key(
    ports: Ports, write: WriteContext, address: str, key_id: str
) -> dict[str, Any]:
    async with ports.session() as session:
        return await _revoke_key(session, write.caller, address, key_id)


async def _revoke_key(
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
