"""MemberRegistry's events: members, their roles and KYC, suspension, the platform's pause."""

from __future__ import annotations

from indexer.handlers.registry import handles
from indexer.rows import member_row, platform_state_row, role_grant_row
from indexer.unit_of_work import UnitOfWork
from ledger.codec import DecodedEvent
from ledger.roles import Role

#: Role id (0x-hex) → its bit in a member's ``roles`` mask.
ROLE_BITS: dict[str, int] = {"0x" + role.role_id.hex(): role.bit for role in Role}


@handles("MemberRegistry:MemberRegistered")
async def on_member_registered(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    account = ev.args["account"]
    roles = 0
    for role_id, bit in ROLE_BITS.items():
        if await uow.get("role_grants", (role_id, account)) is not None:
            roles |= bit
    await uow.create(
        "members", member_row(account, ev.args["kycExpiresAt"], roles, ev.block_number)
    )


@handles("MemberRegistry:MemberKycRenewed")
async def on_member_kyc_renewed(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    member = await uow.edit("members", (ev.args["account"],))
    member["kyc_expires_at"] = ev.args["kycExpiresAt"]


@handles("MemberRegistry:MemberSuspended")
async def on_member_suspended(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    member = await uow.edit("members", (ev.args["account"],))
    member["status"] = "suspended"
    member["suspension_reason"] = ev.args["reasonHash"]


@handles("MemberRegistry:MemberReinstated")
async def on_member_reinstated(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    member = await uow.edit("members", (ev.args["account"],))
    member["status"] = "active"
    member["suspension_reason"] = None


async def _set_role_bit(uow: UnitOfWork, role: str, account: str, granted: bool) -> None:
    bit = ROLE_BITS.get(role)
    if bit is None or await uow.get("members", (account,)) is None:
        return
    member = await uow.edit("members", (account,))
    member["roles"] = member["roles"] | bit if granted else member["roles"] & ~bit


@handles("MemberRegistry:RoleGranted")
async def on_role_granted(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    role, account = ev.args["role"], ev.args["account"]
    await uow.upsert("role_grants", role_grant_row(role, account, ev.block_number))
    await _set_role_bit(uow, role, account, True)


@handles("MemberRegistry:RoleRevoked")
async def on_role_revoked(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    role, account = ev.args["role"], ev.args["account"]
    await uow.remove("role_grants", (role, account))
    await _set_role_bit(uow, role, account, False)


@handles("MemberRegistry:Paused")
async def on_paused(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await uow.upsert("platform_state", platform_state_row("paused", "true"))


@handles("MemberRegistry:Unpaused")
async def on_unpaused(uow: UnitOfWork, ev: DecodedEvent, t: int) -> None:
    await uow.upsert("platform_state", platform_state_row("paused", "false"))
