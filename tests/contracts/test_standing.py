"""A payable is cancellable only while its root was never moved; money moves only to members
in good standing (suspension and KYC expiry are checked when a financing is approved and
when a buyer confirms an invoice)."""

from __future__ import annotations

from ledger.deployment import DAY
from ledger.roles import Role, roles_to_mask
from ledger.bindings import ZERO_HASH, FinancingStatus, PayableStatus
from tests.support.contracts import apply, approve, expect_revert
from bench.cast import Platform


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
