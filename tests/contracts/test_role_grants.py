"""Member roles go to registered members only (issue 9): ``grantRole`` of a business role or
the auditor's to an account never registered reverts ``MemberNotRegistered``; a member given
the supplier role later by ``grantRole`` gets its piece counter opened on the ledger as one
registered with it, so the first split that reaches it costs the same (docs/gas.md)."""

from __future__ import annotations

from eth_account import Account

from bench.cast import Platform
from ledger.bindings import ZERO_HASH
from ledger.deployment import DAY
from ledger.roles import Role, roles_to_mask
from tests.support.contracts import expect_revert

#: A first split to a holder whose counter was never opened writes a slot from zero (about
#: 17,000 gas more); calldata of two addresses differs by a few dozen gas at most.
SAME_GAS = 200


async def _register(p: Platform, roles: tuple[Role, ...]) -> str:
    account = Account.create().address
    kyc = await p.now() + 365 * DAY
    await p.operator.transact(
        p.members.functions.registerMember(account, roles_to_mask(roles), kyc)
    )
    return str(account)


async def test_grantRole_RevertWhen_account_is_not_a_member(platform: Platform) -> None:
    p = platform
    stranger = Account.create().address
    for role in (Role.SUPPLIER, Role.FINANCIER, Role.CORE_ENTERPRISE, Role.CLEARING_AGENT):
        await expect_revert(
            p.operator.transact(p.members.functions.grantRole(role.role_id, stranger)),
            "MemberNotRegistered",
            account=stranger,
        )
    await expect_revert(
        p.operator.transact(p.members.functions.grantRole(Role.AUDITOR.role_id, stranger)),
        "MemberNotRegistered",
    )
    assert not await p.members.functions.hasRole(Role.SUPPLIER.role_id, stranger).call()
    # a registered member may be given another business role
    agent = await _register(p, (Role.CLEARING_AGENT,))
    await p.operator.transact(p.members.functions.grantRole(Role.FINANCIER.role_id, agent))
    assert await p.members.functions.hasRole(Role.FINANCIER.role_id, agent).call()


async def test_granted_supplier_gets_its_piece_counter_opened(platform: Platform) -> None:
    p = platform
    registered = await _register(p, (Role.SUPPLIER,))
    granted = await _register(p, (Role.CLEARING_AGENT,))
    await p.operator.transact(p.members.functions.grantRole(Role.SUPPLIER.role_id, granted))
    _, root, _ = await p.issue(p.core, p.sup1, 1_000_000)
    await p.split(p.sup1, root, p.sup2, 1_000)  # warm the payable's and sup1's slots
    gas = {}
    for name, to in (("registered", registered), ("granted", granted)):
        r = await p.sup1.transact(p.claim_ledger.functions.split(root, to, 1_000, ZERO_HASH))
        gas[name] = int(r["gasUsed"])
    assert abs(gas["granted"] - gas["registered"]) < SAME_GAS, gas
    assert await p.claim_ledger.functions.balanceOf(granted).call() == 1
