"""Time rules (SPEC I-7 and §2): nothing moves at or after the due date except settlement;
settlement from the due date on; overdue only after due date + grace; due date ≤ issue +
term cap; financing applications expire; KYC expiry stops new business until renewed.

Every boundary call is mined in a block with an exact timestamp (``transact_at``, explicit
gas), so "at due − 1 s" means the executing block's ``block.timestamp`` is due − 1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ledger.deployment import DAY
from ledger.bindings import ZERO_ADDRESS, ZERO_HASH, ClaimStatus, FinancingStatus, PayableStatus
from tests.support.contracts import (
    pay_ref,
    GRACE,
    LONG_TERM,
    TERM_CAP,
    EventDecoder,
    apply,
    expect_revert,
    terms_for,
    transact_at,
)
from bench.cast import Platform

FACE = 1_000_000

Move = Callable[[Platform, int, int], Awaitable[Any]]


async def _split(p: Platform, root: int, ts: int) -> Any:
    return await transact_at(
        p, p.sup1, p.claim_ledger.functions.split(root, p.sup2.address, 1_000, ZERO_HASH), ts
    )


async def _transfer(p: Platform, root: int, ts: int) -> Any:
    return await transact_at(
        p, p.sup1, p.claim_ledger.functions.transferClaim(root, p.sup2.address, ZERO_HASH), ts
    )


async def _erc721_transfer(p: Platform, root: int, ts: int) -> Any:
    fn = p.claim_ledger.get_function_by_signature("transferFrom(address,address,uint256)")
    return await transact_at(p, p.sup1, fn(p.sup1.address, p.sup2.address, root), ts)


async def _apply(p: Platform, root: int, ts: int) -> Any:
    # the application must expire strictly between now and the due date: the latest is ts + 1
    fn = p.desk.functions.applyForFinancing(root, p.bank.address, 1_000, ts + 1, 0, False)
    return await transact_at(p, p.sup1, fn, ts)


MOVES: dict[str, Move] = {
    "split": _split,
    "transferClaim": _transfer,
    "erc721.transferFrom": _erc721_transfer,
    "applyForFinancing": _apply,
}


@pytest.mark.parametrize("move", ["split", "transferClaim", "erc721.transferFrom"])
async def test_move_succeeds_one_second_before_due(platform: Platform, move: str) -> None:
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    receipt = await MOVES[move](platform, root, due - 1)
    assert receipt["status"] == 1


async def test_apply_succeeds_two_seconds_before_due(platform: Platform) -> None:
    """An application must expire strictly between now and the due date, so due − 2 s is the
    last second at which one can be made (expiring at due − 1 s)."""
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    await _apply(platform, root, due - 2)
    claim = await platform.suite.claim(root)
    assert (claim.locked_amount, claim.status) == (1_000, ClaimStatus.LOCKED)


async def test_RevertWhen_apply_one_second_before_due_leaves_no_valid_expiry(
    platform: Platform,
) -> None:
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    fn = platform.desk.functions.applyForFinancing(
        root, platform.bank.address, 1_000, due - 1, 0, False
    )
    await expect_revert(
        transact_at(platform, platform.sup1, fn, due - 1),
        "FinancingExpiryInvalid",
        expiresAt=due - 1,
        dueDate=due,
    )


async def test_approve_succeeds_at_the_last_second_before_expiry(platform: Platform) -> None:
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    await _apply(platform, root, due - 3)  # expires at due − 2
    fid = int(await platform.desk.functions.financingCount().call())
    terms = await terms_for(platform, fid, at=due - 3)
    assert terms.term_days == 1
    await transact_at(
        platform,
        platform.bank,
        platform.desk.functions.approveFinancing(fid, terms.tuple()),
        due - 3,
    )
    assert (await platform.suite.financing(fid)).status is FinancingStatus.APPROVED


@pytest.mark.parametrize("move", list(MOVES))
@pytest.mark.parametrize("offset", [0, 1, 30 * DAY])
async def test_RevertWhen_move_at_or_after_due(platform: Platform, move: str, offset: int) -> None:
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    await expect_revert(
        MOVES[move](platform, root, due + offset), "ClaimPastDueDate", claimId=root, dueDate=due
    )
    claim = await platform.suite.claim(root)
    assert (claim.holder, claim.amount, claim.locked_amount) == (platform.sup1.address, FACE, 0)


async def test_RevertWhen_cancel_at_due(platform: Platform) -> None:
    pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    await expect_revert(
        transact_at(
            platform, platform.sup1, platform.claim_ledger.functions.cancelPayable(pid), due
        ),
        "ClaimPastDueDate",
        claimId=root,
        dueDate=due,
    )


async def test_settleClaim_reverts_before_due_and_succeeds_exactly_at_due(
    platform: Platform,
) -> None:
    pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    child = await platform.split(platform.sup1, root, platform.sup2, 1_000)
    claim_ledger = platform.claim_ledger.functions
    await expect_revert(
        transact_at(
            platform, platform.core, claim_ledger.settleClaim(root, pay_ref(root)), due - 1
        ),
        "PayableNotDue",
        payableId=pid,
        dueDate=due,
    )
    await expect_revert(
        transact_at(
            platform,
            platform.core,
            claim_ledger.settleClaims([root, child], [pay_ref(root), pay_ref(child)]),
            due - 1,
        ),
        "PayableNotDue",
        payableId=pid,
        dueDate=due,
    )
    await transact_at(platform, platform.core, claim_ledger.settleClaim(root, pay_ref(root)), due)
    assert (await platform.suite.claim(root)).status is ClaimStatus.SETTLED
    # and later on, too
    await transact_at(
        platform, platform.core, claim_ledger.settleClaim(child, pay_ref(child)), due + 400 * DAY
    )
    assert (await platform.suite.payable(pid)).status is PayableStatus.SETTLED


async def test_settle_allowed_after_overdue(platform: Platform) -> None:
    pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    claim_ledger = platform.claim_ledger.functions
    await transact_at(platform, platform.sup3, claim_ledger.markOverdue(pid), due + GRACE + 1)
    assert (await platform.suite.payable(pid)).status is PayableStatus.OVERDUE
    await platform.core.transact(claim_ledger.settleClaim(root, pay_ref(root)))
    assert (await platform.suite.payable(pid)).status is PayableStatus.SETTLED


async def test_markOverdue_reverts_at_due_plus_grace_and_succeeds_one_second_later(
    platform: Platform,
) -> None:
    pid, _root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=10 * DAY)
    mark = platform.claim_ledger.functions.markOverdue(pid)
    await expect_revert(
        transact_at(platform, platform.outsider, mark, due + GRACE),
        "PayableNotOverdueYet",
        payableId=pid,
        overdueFrom=due + GRACE,
    )
    await transact_at(platform, platform.outsider, mark, due + GRACE + 1)
    payable = await platform.suite.payable(pid)
    assert payable.status is PayableStatus.OVERDUE
    await expect_revert(
        platform.outsider.transact(mark),
        "PayableStatusInvalid",
        payableId=pid,
        status=PayableStatus.OVERDUE,
    )


async def _issue_at(platform: Platform, ts: int, due: int) -> Any:
    invoice_id = await platform.invoice(platform.sup1, platform.core, FACE)
    fn = platform.claim_ledger.functions.issuePayable(
        platform.sup1.address, FACE, due, [invoice_id], ZERO_ADDRESS
    )
    return await transact_at(platform, platform.core, fn, ts)


@pytest.mark.parametrize("due_offset", [1, TERM_CAP])
async def test_issuePayable_accepts_due_within_term_cap(
    platform: Platform, due_offset: int
) -> None:
    ts = await platform.now() + 100
    await _issue_at(platform, ts, ts + due_offset)
    payable = await platform.suite.payable(
        int(await platform.claim_ledger.functions.payableCount().call())
    )
    assert (payable.issued_at, payable.due_date) == (ts, ts + due_offset)


@pytest.mark.parametrize("due_offset", [-1, 0, TERM_CAP + 1, 10 * TERM_CAP])
async def test_RevertWhen_issue_due_date_out_of_range(platform: Platform, due_offset: int) -> None:
    ts = await platform.now() + 100
    await expect_revert(
        _issue_at(platform, ts, ts + due_offset),
        "PayableDueDateInvalid",
        dueDate=ts + due_offset,
        latestDueDate=ts + TERM_CAP,
    )
    assert await platform.claim_ledger.functions.payableCount().call() == 0


@pytest.mark.parametrize(
    ("term", "long_term"),
    [(LONG_TERM - 1, False), (LONG_TERM, False), (LONG_TERM + 1, True), (TERM_CAP, True)],
)
async def test_issuePayable_flags_long_term_above_180_days(
    platform: Platform, term: int, long_term: bool
) -> None:
    ts = await platform.now() + 100
    receipt = await _issue_at(platform, ts, ts + term)
    event = EventDecoder(platform).one(receipt, "PayableIssued")
    assert event["longTerm"] is long_term
    assert event["dueDate"] == ts + term


async def _pending(platform: Platform, expires_in: int = DAY) -> tuple[int, int, int]:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    fid = await apply(platform, platform.sup1, root, platform.bank, 10_000, expires_in=expires_in)
    return fid, root, (await platform.suite.financing(fid)).expires_at


async def test_RevertWhen_approve_at_expiry(platform: Platform) -> None:
    fid, _root, expires = await _pending(platform)
    terms = await terms_for(platform, fid, at=expires)
    await expect_revert(
        transact_at(
            platform,
            platform.bank,
            platform.desk.functions.approveFinancing(fid, terms.tuple()),
            expires,
        ),
        "FinancingHasExpired",
        financingId=fid,
        expiresAt=expires,
    )


async def test_approve_one_second_before_expiry(platform: Platform) -> None:
    fid, _root, expires = await _pending(platform)
    terms = await terms_for(platform, fid, at=expires - 1)
    fn = platform.desk.functions.approveFinancing(fid, terms.tuple())
    await transact_at(platform, platform.bank, fn, expires - 1)
    assert (await platform.suite.financing(fid)).status is FinancingStatus.APPROVED


async def test_expireFinancing_reverts_before_expiry_and_unlocks_at_expiry(
    platform: Platform,
) -> None:
    fid, root, expires = await _pending(platform)
    expire = platform.desk.functions.expireFinancing(fid)
    await expect_revert(
        transact_at(platform, platform.outsider, expire, expires - 1),
        "FinancingNotExpired",
        financingId=fid,
        expiresAt=expires,
    )
    assert (await platform.suite.claim(root)).locked_amount == 10_000
    await transact_at(platform, platform.outsider, expire, expires)
    assert (await platform.suite.financing(fid)).status is FinancingStatus.EXPIRED
    claim = await platform.suite.claim(root)
    assert (claim.locked_amount, claim.status) == (0, ClaimStatus.ACTIVE)


@pytest.mark.parametrize("expiry", ["now", "due", "after_due"])
async def test_RevertWhen_application_expiry_out_of_range(platform: Platform, expiry: str) -> None:
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE)
    ts = await platform.now() + 50
    expires = {"now": ts, "due": due, "after_due": due + DAY}[expiry]
    fn = platform.desk.functions.applyForFinancing(
        root, platform.bank.address, 1_000, expires, 0, False
    )
    await expect_revert(
        transact_at(platform, platform.sup1, fn, ts),
        "FinancingExpiryInvalid",
        expiresAt=expires,
        dueDate=due,
    )


async def test_kyc_expiry_blocks_new_business_until_renewed(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE, due_in=100 * DAY)
    sup2_piece = await platform.split(platform.sup1, root, platform.sup2, 10_000)
    members, claim_ledger = platform.members.functions, platform.claim_ledger.functions
    kyc = await platform.now() + DAY
    await platform.operator.transact(members.renewKyc(platform.sup1.address, kyc))

    # one second before expiry the supplier still does business
    await transact_at(
        platform,
        platform.sup1,
        claim_ledger.split(root, platform.sup3.address, 1, ZERO_HASH),
        kyc - 1,
    )
    assert await members.isActive(platform.sup1.address).call() is True

    await platform.warp_to(kyc)
    assert await members.isActive(platform.sup1.address).call() is False
    expired = {"account": platform.sup1.address, "kycExpiresAt": kyc}
    sup1 = platform.sup1
    await expect_revert(
        sup1.transact(claim_ledger.split(root, platform.sup3.address, 1, ZERO_HASH)),
        "MemberKycExpired",
        **expired,
    )
    await expect_revert(
        sup1.transact(claim_ledger.transferClaim(root, platform.sup3.address, ZERO_HASH)),
        "MemberKycExpired",
        **expired,
    )
    expires = await platform.now() + DAY
    await expect_revert(
        sup1.transact(
            platform.desk.functions.applyForFinancing(
                root, platform.bank.address, 1, expires, 0, False
            )
        ),
        "MemberKycExpired",
        **expired,
    )
    now = await platform.now()
    await expect_revert(
        sup1.transact(
            platform.invoices.functions.registerInvoice(
                platform.unique("inv"), platform.core.address, 1, now - 1, platform.unique("doc")
            )
        ),
        "MemberKycExpired",
        **expired,
    )
    # nor can it receive a piece
    await expect_revert(
        platform.sup2.transact(claim_ledger.split(sup2_piece, sup1.address, 1, ZERO_HASH)),
        "MemberKycExpired",
        **expired,
    )

    await platform.operator.transact(members.renewKyc(sup1.address, now + 365 * DAY))
    await sup1.transact(claim_ledger.split(root, platform.sup3.address, 1, ZERO_HASH))
    await platform.sup2.transact(claim_ledger.split(sup2_piece, sup1.address, 1, ZERO_HASH))


async def test_RevertWhen_obligor_kyc_expired_issues(platform: Platform) -> None:
    invoice_id = await platform.invoice(platform.sup1, platform.core, FACE)
    kyc = await platform.now() + DAY
    await platform.operator.transact(
        platform.members.functions.renewKyc(platform.core.address, kyc)
    )
    await platform.warp_to(kyc)
    fn = platform.claim_ledger.functions.issuePayable(
        platform.sup1.address, FACE, kyc + 30 * DAY, [invoice_id], ZERO_ADDRESS
    )
    await expect_revert(
        platform.core.transact(fn),
        "MemberKycExpired",
        account=platform.core.address,
        kycExpiresAt=kyc,
    )
    await expect_revert(
        platform.operator.transact(platform.members.functions.renewKyc(platform.core.address, kyc)),
        "MemberKycExpiryInvalid",
        kycExpiresAt=kyc,
    )
    await platform.operator.transact(
        platform.members.functions.renewKyc(platform.core.address, kyc + 365 * DAY)
    )
    await platform.core.transact(fn)
