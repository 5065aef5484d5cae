"""Holder-only control (SPEC I-6): only the holder splits, transfers or applies for financing.

Non-holders include the obligor, the operator, financiers and other suppliers. The ERC-721
and ERC-3525 entry points obey the same rule; approvals (which would let someone else move a
piece) are disabled, merging pieces is refused, and ERC-165 reports the interfaces.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.crypto import keccak

from ledger.roles import Role
from ledger.bindings import ZERO_ADDRESS, ZERO_HASH, ClaimStatus
from tests.support.contracts import apply, expect_revert, finance
from bench.cast import Platform

FACE = 1_000_000
#: Active members that do not hold the root piece (sup1 does), the obligor included.
NON_HOLDER_MEMBERS = ("sup2", "core", "core2", "bank", "agent", "auditor")
#: Accounts that are not members at all: the operator (admin, not a member) and an outsider.
NON_MEMBERS = ("operator", "outsider")


def _erc(platform: Platform, signature: str) -> Any:
    return platform.claim_ledger.get_function_by_signature(signature)


@pytest.mark.parametrize("who", NON_HOLDER_MEMBERS + NON_MEMBERS)
async def test_RevertWhen_non_holder_splits(platform: Platform, who: str) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    caller = platform.actors[who]
    to = platform.sup3.address
    await expect_revert(
        caller.transact(platform.claim_ledger.functions.split(root, to, 1_000, ZERO_HASH)),
        "ClaimNotHolder",
        claimId=root,
        caller=caller.address,
    )
    # the ERC-3525 value transfer is the same split
    await expect_revert(
        caller.transact(_erc(platform, "transferFrom(uint256,address,uint256)")(root, to, 1_000)),
        "ClaimNotHolder",
        claimId=root,
        caller=caller.address,
    )
    assert (await platform.suite.claim(root)).amount == FACE


@pytest.mark.parametrize("who", NON_HOLDER_MEMBERS + NON_MEMBERS)
async def test_RevertWhen_non_holder_transfers(platform: Platform, who: str) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    caller = platform.actors[who]
    to = platform.sup3.address
    await expect_revert(
        caller.transact(platform.claim_ledger.functions.transferClaim(root, to, ZERO_HASH)),
        "ClaimNotHolder",
        claimId=root,
        caller=caller.address,
    )
    # ERC-721 transferFrom naming the real holder as `from`, as an approved operator would
    for sig, extra in (
        ("transferFrom(address,address,uint256)", ()),
        ("safeTransferFrom(address,address,uint256)", ()),
        ("safeTransferFrom(address,address,uint256,bytes)", (b"",)),
    ):
        fn = _erc(platform, sig)(platform.sup1.address, to, root, *extra)
        await expect_revert(
            caller.transact(fn), "ClaimNotHolder", claimId=root, caller=caller.address
        )
    assert (await platform.suite.claim(root)).holder == platform.sup1.address


@pytest.mark.parametrize("who", NON_HOLDER_MEMBERS)
async def test_RevertWhen_non_holder_member_applies(platform: Platform, who: str) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    caller = platform.actors[who]
    financier = platform.bank2 if who == "bank" else platform.bank
    expires = await platform.now() + 86_400
    await expect_revert(
        caller.transact(
            platform.desk.functions.applyForFinancing(root, financier.address, 1_000, expires, 0, False)
        ),
        "ClaimNotHolder",
        claimId=root,
        caller=caller.address,
    )
    claim = await platform.suite.claim(root)
    assert (claim.locked_amount, claim.status) == (0, ClaimStatus.ACTIVE)


@pytest.mark.parametrize("who", NON_MEMBERS)
async def test_RevertWhen_non_member_applies(platform: Platform, who: str) -> None:
    """Not even a member: refused before the holder check (the operator is no member here)."""
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    caller = platform.actors[who]
    expires = await platform.now() + 86_400
    await expect_revert(
        caller.transact(
            platform.desk.functions.applyForFinancing(root, platform.bank.address, 1_000, expires, 0, False)
        ),
        "MemberNotRegistered",
        account=caller.address,
    )


async def test_RevertWhen_operator_that_is_a_member_applies_for_a_piece_it_does_not_hold(
    platform: Platform,
) -> None:
    """An operator registered as a supplier is still no holder of someone else's piece."""
    op = platform.operator
    kyc = await platform.now() + 365 * 86_400
    await op.transact(platform.members.functions.registerMember(op.address, Role.SUPPLIER.bit, kyc))
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    expires = await platform.now() + 86_400
    await expect_revert(
        op.transact(
            platform.desk.functions.applyForFinancing(root, platform.bank.address, 1_000, expires, 0, False)
        ),
        "ClaimNotHolder",
        claimId=root,
        caller=op.address,
    )
    await expect_revert(
        op.transact(platform.claim_ledger.functions.split(root, op.address, 1_000, ZERO_HASH)),
        "ClaimNotHolder",
        claimId=root,
        caller=op.address,
    )


async def test_former_holder_loses_control_after_transfer_and_financing(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    await platform.sup1.transact(
        platform.claim_ledger.functions.transferClaim(root, platform.sup2.address, ZERO_HASH)
    )
    await expect_revert(
        platform.sup1.transact(
            platform.claim_ledger.functions.split(root, platform.sup3.address, 1, ZERO_HASH)
        ),
        "ClaimNotHolder",
        claimId=root,
        caller=platform.sup1.address,
    )
    financed = await finance(platform, platform.sup2, root, platform.bank, 400_000)
    for who in ("sup1", "sup2"):
        actor = platform.actors[who]
        await expect_revert(
            actor.transact(
                platform.claim_ledger.functions.transferClaim(financed, platform.sup3.address, ZERO_HASH)
            ),
            "ClaimNotHolder",
            claimId=financed,
            caller=actor.address,
        )
    # the financier now holds and controls the financed piece
    await platform.bank.transact(
        platform.claim_ledger.functions.split(financed, platform.sup3.address, 1, ZERO_HASH)
    )


async def test_RevertWhen_erc721_transfer_names_wrong_from(platform: Platform) -> None:
    """The holder itself calling with a `from` that is not the holder is refused."""
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    holder, to = platform.sup1, platform.sup3.address
    for wrong_from in (platform.sup2.address, platform.core.address, ZERO_ADDRESS):
        for sig, extra in (
            ("transferFrom(address,address,uint256)", ()),
            ("safeTransferFrom(address,address,uint256)", ()),
            ("safeTransferFrom(address,address,uint256,bytes)", (b"data",)),
        ):
            fn = _erc(platform, sig)(wrong_from, to, root, *extra)
            await expect_revert(
                holder.transact(fn), "ClaimNotHolder", claimId=root, caller=holder.address
            )
    assert (await platform.suite.claim(root)).holder == holder.address


async def test_erc721_transfer_with_right_from_moves_the_whole_piece(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    await platform.sup1.transact(
        _erc(platform, "safeTransferFrom(address,address,uint256)")(
            platform.sup1.address, platform.sup2.address, root
        )
    )
    assert await platform.claim_ledger.functions.ownerOf(root).call() == platform.sup2.address
    await platform.sup2.transact(
        _erc(platform, "transferFrom(address,address,uint256)")(
            platform.sup2.address, platform.sup3.address, root
        )
    )
    assert (await platform.suite.claim(root)).holder == platform.sup3.address


async def test_approvals_are_the_holders_consent_and_the_rules_still_apply(
    platform: Platform,
) -> None:
    """An operator the holder approved moves value through the standard entry points only,
    must be an active member, and every platform rule is still checked (docs/erc3525.md)."""
    p = platform
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    claim_ledger = p.claim_ledger.functions
    value_transfer = _erc(p, "transferFrom(uint256,address,uint256)")
    await p.sup1.transact(_erc(p, "approve(uint256,address,uint256)")(root, p.bank.address, 1_000))
    assert await claim_ledger.allowance(root, p.bank.address).call() == 1_000
    # the platform's own split stays holder-only
    await expect_revert(
        p.bank.transact(claim_ledger.split(root, p.sup2.address, 10, ZERO_HASH)),
        "ClaimNotHolder",
        claimId=root,
        caller=p.bank.address,
    )
    # the recipient rules are the holder's: a core enterprise may not receive a piece
    await expect_revert(
        p.bank.transact(value_transfer(root, p.core.address, 10)), "MemberRoleMissing"
    )
    await p.bank.transact(value_transfer(root, p.sup2.address, 600))
    assert await claim_ledger.allowance(root, p.bank.address).call() == 400
    await expect_revert(
        p.bank.transact(value_transfer(root, p.sup2.address, 401)),
        "ClaimAllowanceExceeded",
        allowance=400,
        value=401,
    )
    # a non-member operator moves nothing, even when approved
    await p.sup1.transact(claim_ledger.setApprovalForAll(p.outsider.address, True))
    await expect_revert(
        p.outsider.transact(
            _erc(p, "transferFrom(address,address,uint256)")(p.sup1.address, p.sup2.address, root)
        ),
        "MemberNotRegistered",
    )


async def test_RevertWhen_merging_pieces(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    child = await platform.split(platform.sup1, root, platform.sup2, 1_000)
    merge = _erc(platform, "transferFrom(uint256,uint256,uint256)")
    for caller, args in ((platform.sup1, (root, child, 10)), (platform.sup2, (child, root, 10))):
        await expect_revert(caller.transact(merge(*args)), "ClaimMergeUnsupported")
    assert (await platform.suite.claim(root)).amount == FACE - 1_000
    assert (await platform.suite.claim(child)).amount == 1_000


async def test_RevertWhen_non_party_cancels_withdraws_approves_or_settles(
    platform: Platform,
) -> None:
    pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, agent=platform.agent)
    # only the root's holder cancels — not the obligor
    await expect_revert(
        platform.core.transact(platform.claim_ledger.functions.cancelPayable(pid)),
        "ClaimNotHolder",
        claimId=root,
        caller=platform.core.address,
    )
    fid = await apply(platform, platform.sup1, root, platform.bank, 1_000)
    await expect_revert(
        platform.sup2.transact(platform.desk.functions.withdrawFinancing(fid)),
        "FinancingNotApplicant",
        financingId=fid,
        caller=platform.sup2.address,
    )
    await expect_revert(
        platform.bank2.transact(platform.desk.functions.rejectFinancing(fid, keccak(b"no"))),
        "FinancingNotFinancier",
        financingId=fid,
        caller=platform.bank2.address,
    )
    await platform.sup1.transact(platform.desk.functions.withdrawFinancing(fid))
    await platform.warp_to(due)
    # another obligor, or a clearing agent the payable does not name, cannot settle
    for other in (platform.core2, platform.sup1, platform.bank):
        await expect_revert(
            other.transact(platform.claim_ledger.functions.settleClaim(root, keccak(b"pay"))),
            "PayableNotSettler",
            payableId=pid,
            caller=other.address,
        )
    await platform.agent.transact(platform.claim_ledger.functions.settleClaim(root, keccak(b"pay")))


async def test_RevertWhen_root_was_passed_on_and_its_holder_cancels(platform: Platform) -> None:
    pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    await platform.sup1.transact(
        platform.claim_ledger.functions.transferClaim(root, platform.sup2.address, ZERO_HASH)
    )
    await expect_revert(
        platform.sup1.transact(platform.claim_ledger.functions.cancelPayable(pid)),
        "ClaimNotHolder",
        claimId=root,
        caller=platform.sup1.address,
    )
    # the new holder is not the supplier the payable was issued to
    await expect_revert(
        platform.sup2.transact(platform.claim_ledger.functions.cancelPayable(pid)),
        "PayableNotCancellable",
        payableId=pid,
    )


@pytest.mark.parametrize(
    ("interface_id", "supported"),
    [
        ("0xd5358140", True),  # ERC-3525
        ("0x80ac58cd", True),  # ERC-721
        ("0x01ffc9a7", True),  # ERC-165
        ("0xffffffff", False),  # ERC-165: must be false
        ("0x5b5e139f", True),  # ERC-721 metadata
        ("0xe1600902", True),  # ERC-3525 metadata
        ("0x780e9d63", False),  # ERC-721 enumerable: nothing is enumerated on chain (I-9)
    ],
)
async def test_supportsInterface_reports(
    platform: Platform, interface_id: str, supported: bool
) -> None:
    answer = await platform.claim_ledger.functions.supportsInterface(
        bytes.fromhex(interface_id[2:])
    ).call()
    assert answer is supported


def test_erc3525_interface_id_is_the_xor_of_its_selectors() -> None:
    """0xd5358140 is what IERC3525 (without its ERC-721 base) hashes to."""
    selectors = [
        "valueDecimals()",
        "balanceOf(uint256)",
        "slotOf(uint256)",
        "approve(uint256,address,uint256)",
        "allowance(uint256,address)",
        "transferFrom(uint256,uint256,uint256)",
        "transferFrom(uint256,address,uint256)",
    ]
    interface_id = 0
    for sig in selectors:
        interface_id ^= int.from_bytes(keccak(text=sig)[:4], "big")
    assert interface_id == 0xD5358140
