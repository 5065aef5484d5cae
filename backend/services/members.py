"""Members: onboarding (key, chain account, roles on chain, first API key), suspension,
reinstatement, KYC renewal, program limits and API keys.

Custody (SPEC §2): a member onboarded with its own ``address`` is ``self`` custody (the
platform makes and keeps no key for it), any other ``hosted`` (its key made here and kept in
the keystore). Keys (SPEC §1, docs/consent.md): the operator makes a member's first key (its
admin user's) at onboarding and may revoke any key; every later key is made by the member's
own admin user. No FastAPI in here: writes take
the :class:`~backend.ports.Ports` and the :class:`~backend.ports.WriteContext`, reads a
session."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from eth_utils.address import to_checksum_address
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller, roles_of, store_key
from backend.errors import Conflict, Forbidden, Invalid, NotFound
from backend.models import ApiKey, KeystoreEntry, MemberProfile, OrgUser
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
#: The organisation user the first key belongs to.
FIRST_USER_NAME = "admin"


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
        "custody": profile.custody if profile is not None else "hosted",
        "dual_control": bool(profile.dual_control) if profile is not None else False,
    }


async def custody_of(session: AsyncSession, addresses: set[str]) -> dict[str, str]:
    """The custody of each of ``addresses`` (``hosted`` where the platform knows no profile:
    only the platform's own accounts have none)."""
    if not addresses:
        return {}
    rows = await session.execute(
        select(MemberProfile.address, MemberProfile.custody).where(
            MemberProfile.address.in_(sorted(addresses))
        )
    )
    known = {r.address: r.custody for r in rows}
    return {a: known.get(a, "hosted") for a in addresses}


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
    ports: Ports,
    write: WriteContext,
    name: str,
    roles: Sequence[str],
    kyc_expires_at: int,
    address: str | None = None,
) -> dict[str, Any]:
    """Onboard a member: ``self`` custody with its own ``address`` (no key made), otherwise
    ``hosted`` (its account and key made here); register it with its roles on chain, fund its
    gas where gas costs something (hosted only: a ``self`` member's requests are relayed), and
    make its admin user and first API key (returned once)."""
    if kyc_expires_at <= await ports.ledger.chain_time():
        raise Invalid("kyc_expires_at must be in the future", code="kyc_expiry_invalid")
    mask = roles_to_mask(Role(r) for r in roles)
    custody = "hosted" if address is None else "self"
    known: str | None = write.remembered("account")
    if known is None and address is not None:
        address = to_checksum_address(address)
        async with ports.session() as session:
            taken = (
                await session.get(mirror.Member, address) is not None
                or await session.get(MemberProfile, address) is not None
                or await session.get(KeystoreEntry, address) is not None
                or bool(await roles_of(session, address))
            )
        if taken:
            raise Conflict("this account is already a member", code="member_exists")
        await write.remember(account=address)
    elif known is None:
        account = ports.ledger.new_account()
        address = account.address
        async with ports.session() as session:
            session.add(KeystoreEntry(address=address, keyfile=account.keyfile))
            session.add(MemberProfile(address=address, name=name, created_at=now_s()))
            await session.commit()
        await write.remember(account=address)
    else:
        address = known
    if (
        custody == "hosted"
        and await ports.ledger.gas_price() > 0
        and await ports.ledger.balance(address) < GAS_ALLOWANCE_WEI // 2
    ):
        await ports.ledger.send_value(write, address, GAS_ALLOWANCE_WEI)
    mined = await ports.ledger.submit(write, calls.register_member(address, mask, kyc_expires_at))
    async with ports.session() as session:
        if custody == "self" and await session.get(MemberProfile, address) is None:
            # Only once the chain took it: a refused registration leaves nothing behind.
            session.add(
                MemberProfile(address=address, name=name, created_at=now_s(), custody="self")
            )
        if write.reorganised_rerun:
            # The write had answered: its first key was handed out and stays the member's
            # (shown once: this answer, like a replay, holds none).
            first = await _first_key(session, address)
            if first is not None:
                view = await get_member(session, address)
                return {**view, **mined.written, "api_key": None, "api_key_id": first.id}
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
        admin = (
            await session.execute(
                select(OrgUser).where(OrgUser.member == address, OrgUser.role == "admin")
            )
        ).scalar_one_or_none()
        if admin is None:
            admin = OrgUser(
                id=new_user_id(),
                member=address,
                name=FIRST_USER_NAME,
                role="admin",
                created_at=now_s(),
            )
            session.add(admin)
        key_row, full = await store_key(session, address, FIRST_KEY_LABEL, admin.id)
        await session.commit()
        view = await get_member(session, address)
    return {**view, **mined.written, "api_key": full, "api_key_id": key_row.id}


async def _first_key(session: AsyncSession, address: str) -> ApiKey | None:
    """The member's newest first key (the one onboarding handed out), revoked or not."""
    found: ApiKey | None = (
        await session.execute(
            select(ApiKey)
            .where(ApiKey.member == address, ApiKey.label == FIRST_KEY_LABEL)
            .order_by(ApiKey.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return found


def new_user_id() -> str:
    return "u_" + secrets.token_hex(8)


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
    limit = account.program_limit if account else program_limit
    outstanding = account.outstanding if account else 0
    return {
        "obligor": obligor,
        "program_limit": limit,
        "outstanding": outstanding,
        "over_limit": outstanding > limit,
        **mined.written,
    }


# -- API keys --------------------------------------------------------------------------------


def _may_see_keys(caller: Caller, address: str) -> None:
    if caller.address != address and not caller.is_operator:
        raise NotFound("no such member", code="member_not_found")


def require_member_admin(caller: Caller, address: str) -> None:
    """Only the member's own admin user manages its users, keys and settings: the operator
    made the first key at onboarding and makes no other (SPEC §1, docs/consent.md)."""
    if caller.address != address:
        if caller.is_operator:
            raise Forbidden(
                "the operator makes a member's first key only; later keys and users are the "
                "member's own admin's to make",
                code="operator_cannot_make_keys",
            )
        raise NotFound("no such member", code="member_not_found")
    if caller.org_role != "admin":
        raise Forbidden(
            "only the member's admin users manage its users, keys and settings",
            code="not_member_admin",
        )


def _key_view(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "label": row.label,
        "created_at": iso(row.created_at),
        "revoked_at": iso(row.revoked_at),
    }


async def list_keys(session: AsyncSession, caller: Caller, address: str) -> list[dict[str, Any]]:
    _may_see_keys(caller, address)
    rows = await session.execute(
        select(ApiKey).where(ApiKey.member == address).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [_key_view(r) for r in rows.scalars()]


async def rotate_key(ports: Ports, write: WriteContext, address: str, label: str) -> dict[str, Any]:
    """A new key for the member's admin user who asks (the old ones stay valid until
    revoked)."""
    require_member_admin(write.caller, address)
    async with ports.session() as session:
        if await member_view(session, address) is None:
            raise NotFound("no such member", code="member_not_found")
        row, full = await store_key(session, address, label, write.caller.user_id)
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
    """The operator may revoke any key (for security: the audit log names it); a member's
    admin any of the member's, its other users their own."""
    _may_see_keys(caller, address)
    row = (
        await session.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.member == address))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("no such API key", code="api_key_not_found")
    own_user = caller.user_id is not None and row.user_id == caller.user_id
    if caller.address == address and caller.org_role != "admin" and not own_user:
        raise Forbidden(
            "only the member's admin users revoke other users' keys", code="not_member_admin"
        )
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
