"""A payable is cancellable only while its root was never moved; money moves only to members
in good standing (suspension and KYC expiry are checked when a financing is approved and
when a buyer confirms an invoice); a clearing agent never records the payment of a piece it
holds."""

from __future__ import annotations

from eth_utils.crypto import keccak

from ledger.deployment import DAY
from ledger.roles import Role, roles_to_mask
from ledger.bindings import ZERO_HASH, ClaimStatus, FinancingStatus, PayableStatus
from tests.support.contracts import apply, approve, expect_revert, finance
from bench.cast import EXPOSURE_LIMIT, Platform


async def test_cancelPayable_RevertWhen_root_came_back_whole(platform: Platform) -> None:
    p = platform
    payable_id, root, _ = await p.issue(p.core, p.sup1, 1_000)
    await p.sup1.transact(p.claim_ledger.functions.transferClaim(root, p.sup2.address, ZERO_HASH))
    await p.sup2.transact(p.claim_ledger.functions.transferClaim(root, p.sup1.address, ZERO_HASH))
    claim = await p.suite.claim(root)
    assert (claim.holder, claim.amount) == (p.sup1.address, 1_000)  # whole and back home
    await expect_revert(
        p.sup1.transact(p.claim_ledger.functions.cancelPayable(payable_id)),
        "PayableNotCancellable",
        payableId=payable_id,
    )


async def test_cancelPayable_RevertWhen_root_was_locked_then_unlocked(platform: Platform) -> None:
    p = platform
    payable_id, root, _ = await p.issue(p.core, p.sup1, 1_000)
    fid = await apply(p, p.sup1, root, p.bank, 400)
    await p.sup1.transact(p.desk.functions.withdrawFinancing(fid))
    assert (await p.suite.claim(root)).locked_amount == 0
    await expect_revert(
        p.sup1.transact(p.claim_ledger.functions.cancelPayable(payable_id)), "PayableNotCancellable"
    )


async def test_cancelPayable_untouched_root_succeeds(platform: Platform) -> None:
    p = platform
    payable_id, _root, _ = await p.issue(p.core, p.sup1, 1_000)
    await p.sup1.transact(p.claim_ledger.functions.cancelPayable(payable_id))
    assert (await p.suite.payable(payable_id)).status is PayableStatus.CANCELLED


async def test_approveFinancing_RevertWhen_applicant_suspended(platform: Platform) -> None:
    p = platform
    _, root, _ = await p.issue(p.core, p.sup1, 1_000_000)
    fid = await apply(p, p.sup1, root, p.bank, 500_000)
    await p.operator.transact(p.members.functions.suspendMember(p.sup1.address, ZERO_HASH))
    await expect_revert(approve(p, p.bank, fid), "MemberNotActive", account=p.sup1.address)
    await p.operator.transact(p.members.functions.reinstateMember(p.sup1.address))
    await approve(p, p.bank, fid)
    assert (await p.suite.financing(fid)).status is FinancingStatus.APPROVED


async def test_approveFinancing_RevertWhen_applicant_kyc_expired(platform: Platform) -> None:
    p = platform
    now = await p.now()
    kyc = now + 2 * DAY
    await p.operator.transact(
        p.members.functions.registerMember(p.outsider.address, roles_to_mask([Role.SUPPLIER]), kyc)
    )
    _, root, _ = await p.issue(p.core, p.outsider, 1_000_000)
    fid = await apply(p, p.outsider, root, p.bank, 500_000, expires_in=10 * DAY)
    await p.warp_to(kyc)
    await expect_revert(
        approve(p, p.bank, fid), "MemberKycExpired", account=p.outsider.address, kycExpiresAt=kyc
    )


async def test_confirmInvoice_RevertWhen_buyer_kyc_expired(platform: Platform) -> None:
    p = platform
    now = await p.now()
    kyc = now + 2 * DAY
    await p.operator.transact(
        p.members.functions.registerMember(
            p.outsider.address, roles_to_mask([Role.CORE_ENTERPRISE]), kyc
        )
    )
    invoice_id = await p.invoice(p.sup1, p.outsider, 1_000, confirm=False)
    await p.warp_to(kyc)
    await expect_revert(
        p.outsider.transact(p.invoices.functions.confirmInvoice(invoice_id)),
        "MemberKycExpired",
        account=p.outsider.address,
    )


async def test_settleClaim_RevertWhen_clearing_agent_holds_the_piece(platform: Platform) -> None:
    """A bank that is financier and clearing agent financed a piece of the payable it clears:
    it cannot mark that piece paid on its own word (alone or in a batch), which would clear its
    exposure and free the obligor's program limit with no payment; the obligor records it."""
    p = platform
    await p.operator.transact(
        p.members.functions.grantRole(Role.CLEARING_AGENT.role_id, p.bank.address)
    )
    payable_id, root, due = await p.issue(p.core, p.sup1, 1_000_000, agent=p.bank)
    financed = await finance(p, p.sup1, root, p.bank, 500_000)
    assert (await p.suite.claim(financed)).holder == p.bank.address
    await p.warp_to(due)
    outstanding = (await p.suite.obligor_account(p.core.address)).outstanding
    await expect_revert(
        p.bank.transact(p.claim_ledger.functions.settleClaim(financed, keccak(b"own word"))),
        "ClaimSettlerIsHolder",
        claimId=financed,
        clearingAgent=p.bank.address,
    )
    await expect_revert(
        p.bank.transact(
            p.claim_ledger.functions.settleClaims([root, financed], [keccak(b"a"), keccak(b"b")])
        ),
        "ClaimSettlerIsHolder",
        claimId=financed,
    )
    assert await p.suite.exposure(p.bank.address, p.core.address) == (500_000, EXPOSURE_LIMIT)
    assert (await p.suite.obligor_account(p.core.address)).outstanding == outstanding
    assert (await p.suite.claim(root)).status is ClaimStatus.ACTIVE  # the batch changed nothing
    # the agent records the supplier's piece; the obligor records the bank's
    await p.bank.transact(p.claim_ledger.functions.settleClaim(root, keccak(b"paid sup1")))
    await p.core.transact(p.claim_ledger.functions.settleClaim(financed, keccak(b"paid bank")))
    assert await p.suite.exposure(p.bank.address, p.core.address) == (0, EXPOSURE_LIMIT)
    assert (await p.suite.payable(payable_id)).status is PayableStatus.SETTLED
