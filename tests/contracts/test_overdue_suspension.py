"""Overdue payables and automatic suspension; court-ordered freezes (SPEC §2 Settlement and
Member, I-7, I-8).

An obligor with three payables that fell overdue within 180 days (their ``overdueFrom`` when
marked, whenever they are marked) is suspended automatically (``MemberSuspended`` with
``automatic = true``): it can no longer issue but can still settle, until the operator
reinstates it. Two overdue payables, or three that fell overdue more than 180 days apart, do
not suspend. A frozen piece cannot be split, transferred, applied for, financed or
settled until it is unfrozen; the payable's other pieces are unaffected.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.crypto import keccak
from web3.types import TxReceipt

from ledger.deployment import DAY
from ledger.bindings import (
    ZERO_ADDRESS,
    ZERO_HASH,
    ClaimStatus,
    FinancingStatus,
    MemberStatus,
    PayableStatus,
)
from tests.support.contracts import (
    pay_ref,
    GRACE,
    OVERDUE_WINDOW,
    EventDecoder,
    apply,
    expect_revert,
    terms_for,
    transact_at,
)
from bench.cast import Platform

FACE = 1_000_000
REASON = keccak(b"court-order")
OVERDUE_REASON = keccak(b"OVERDUE_PAYABLES")


async def _payables(
    platform: Platform, count: int, spacing: int = 10 * DAY
) -> list[tuple[int, int, int]]:
    """``count`` payables of ``core`` due 10, 20, … days from now: (payable, root, due)."""
    return [
        await platform.issue(platform.core, platform.sup1, FACE, due_in=(i + 1) * spacing)
        for i in range(count)
    ]


async def _mark(platform: Platform, payable_id: int, ts: int) -> TxReceipt:
    return await transact_at(
        platform, platform.outsider, platform.claim_ledger.functions.markOverdue(payable_id), ts
    )


def _suspensions(platform: Platform, receipt: TxReceipt) -> list[dict[str, Any]]:
    return [e.args for e in EventDecoder(platform).decode(receipt) if e.name == "MemberSuspended"]


async def _issue_call(platform: Platform) -> Any:
    invoice_id = await platform.invoice(platform.sup2, platform.core, FACE)
    due = await platform.now() + 60 * DAY
    return platform.claim_ledger.functions.issuePayable(
        platform.sup2.address, FACE, due, [invoice_id], ZERO_ADDRESS
    )


async def test_three_overdue_within_180_days_suspend_the_obligor(platform: Platform) -> None:
    p = platform
    payables = await _payables(p, 4)
    issue = await _issue_call(p)  # its invoice confirmed while the obligor is still active
    marks = [due + GRACE + 1 for _pid, _root, due in payables[:3]]  # ~20 days apart in all
    for (pid, _root, _due), ts in zip(payables[:2], marks[:2], strict=True):
        receipt = await _mark(p, pid, ts)
        assert _suspensions(p, receipt) == []
        assert (await p.suite.member(p.core.address)).status is MemberStatus.ACTIVE

    receipt = await _mark(p, payables[2][0], marks[2])

    assert _suspensions(p, receipt) == [
        {"account": p.core.address, "reasonHash": OVERDUE_REASON, "automatic": True}
    ]
    assert (await p.suite.member(p.core.address)).status is MemberStatus.SUSPENDED
    account = await p.suite.obligor_account(p.core.address)
    # the times they fell overdue (due + grace), not when they were marked
    assert (account.previous_overdue_at, account.last_overdue_at) == (marks[1] - 1, marks[2] - 1)
    # it can no longer issue, nor confirm an invoice
    await expect_revert(p.core.transact(issue), "MemberNotActive", account=p.core.address)
    pending_invoice = await p.invoice(p.sup3, p.core, FACE, confirm=False)
    await expect_revert(
        p.core.transact(p.invoices.functions.confirmInvoice(pending_invoice)),
        "MemberNotActive",
        account=p.core.address,
    )
    # but it still settles what it owes, overdue or not
    for pid, root, _due in payables[:3]:
        await p.core.transact(p.claim_ledger.functions.settleClaim(root, pay_ref(root)))
        assert (await p.suite.payable(pid)).status is PayableStatus.SETTLED
    # the operator reinstates it; business resumes
    await p.operator.transact(p.members.functions.reinstateMember(p.core.address))
    assert (await p.suite.member(p.core.address)).status is MemberStatus.ACTIVE
    await p.core.transact(issue)


async def test_reinstated_obligor_is_suspended_again_by_the_next_overdue_in_window(
    platform: Platform,
) -> None:
    p = platform
    payables = await _payables(p, 4)
    ts = payables[3][2] + GRACE + 1  # all four are overdue by then
    for pid, _root, _due in payables[:3]:
        await _mark(p, pid, ts)
        ts += 1
    await p.operator.transact(p.members.functions.reinstateMember(p.core.address))
    # the 2nd, 3rd and 4th overdue payables are again three within 180 days
    receipt = await _mark(p, payables[3][0], ts)
    assert [e["automatic"] for e in _suspensions(p, receipt)] == [True]
    assert (await p.suite.member(p.core.address)).status is MemberStatus.SUSPENDED


async def test_two_overdue_payables_do_not_suspend(platform: Platform) -> None:
    p = platform
    payables = await _payables(p, 2)
    ts = payables[1][2] + GRACE + 1
    for pid, _root, _due in payables:
        assert _suspensions(p, await _mark(p, pid, ts)) == []
        ts += 1
    assert (await p.suite.member(p.core.address)).status is MemberStatus.ACTIVE
    await p.core.transact(await _issue_call(p))


async def _issue_due(platform: Platform, due: int) -> int:
    """A payable of ``core`` due at exactly ``due``; returns its id."""
    invoice_id = await platform.invoice(platform.sup1, platform.core, FACE)
    await platform.core.transact(
        platform.claim_ledger.functions.issuePayable(
            platform.sup1.address, FACE, due, [invoice_id], ZERO_ADDRESS
        )
    )
    return int(await platform.claim_ledger.functions.payableCount().call())


@pytest.mark.parametrize(
    ("third_after_first", "suspended"),
    [(OVERDUE_WINDOW, True), (OVERDUE_WINDOW + 1, False), (300 * DAY, False)],
    ids=["exactly-180-days", "180-days-and-1s", "300-days"],
)
async def test_three_overdue_suspend_only_within_180_days(
    platform: Platform, third_after_first: int, suspended: bool
) -> None:
    """The window counts when the payables fell overdue (overdueFrom), whenever marked: here
    all three are marked together, after the last fell overdue."""
    p = platform
    first_due = await p.now() + 10 * DAY
    dues = (first_due, first_due + 10 * DAY, first_due + third_after_first)
    pids = [await _issue_due(p, due) for due in dues]
    ts = dues[2] + GRACE + 1
    receipts = [await _mark(p, pid, ts + i) for i, pid in enumerate(pids)]
    expected = MemberStatus.SUSPENDED if suspended else MemberStatus.ACTIVE
    assert (await p.suite.member(p.core.address)).status is expected
    assert len(_suspensions(p, receipts[2])) == int(suspended)
    for pid in pids:
        assert (await p.suite.payable(pid)).status is PayableStatus.OVERDUE


async def test_three_overdue_marked_slowly_still_suspend(platform: Platform) -> None:
    """Three payables fall overdue within days; the third is marked 300 days later: before,
    keyed on marking times, the slow marking dodged the rule."""
    p = platform
    payables = await _payables(p, 3)
    for pid, _root, due in payables[:2]:
        await _mark(p, pid, due + GRACE + 1)
    receipt = await _mark(p, payables[2][0], payables[2][2] + GRACE + 300 * DAY)
    assert len(_suspensions(p, receipt)) == 1
    assert EventDecoder(p).one(receipt, "PayableOverdue")["overdueFrom"] == payables[2][2] + GRACE


async def test_overdue_of_an_already_suspended_obligor_is_no_second_suspension(
    platform: Platform,
) -> None:
    p = platform
    payables = await _payables(p, 3)
    issue = await _issue_call(p)
    await p.operator.transact(p.members.functions.suspendMember(p.core.address, REASON))
    await expect_revert(p.core.transact(issue), "MemberNotActive", account=p.core.address)
    ts = payables[2][2] + GRACE + 1
    for pid, _root, _due in payables:
        assert _suspensions(p, await _mark(p, pid, ts)) == []
        ts += 1
    assert (await p.suite.member(p.core.address)).status is MemberStatus.SUSPENDED
    await p.operator.transact(p.members.functions.reinstateMember(p.core.address))
    await expect_revert(
        p.operator.transact(p.members.functions.reinstateMember(p.core.address)),
        "MemberStatusInvalid",
        account=p.core.address,
        status=MemberStatus.ACTIVE,
    )


async def test_RevertWhen_marking_a_settled_or_overdue_payable(platform: Platform) -> None:
    p = platform
    (pid_a, root_a, due), (pid_b, _root_b, _due_b) = await _payables(p, 2, spacing=DAY)
    await p.warp_to(due)
    await p.core.transact(p.claim_ledger.functions.settleClaim(root_a, pay_ref(root_a)))
    ts = _due_b + GRACE + 1
    await expect_revert(
        _mark(p, pid_a, ts), "PayableStatusInvalid", payableId=pid_a, status=PayableStatus.SETTLED
    )
    await _mark(p, pid_b, ts + 1)
    await expect_revert(
        _mark(p, pid_b, ts + 2),
        "PayableStatusInvalid",
        payableId=pid_b,
        status=PayableStatus.OVERDUE,
    )
    await expect_revert(
        p.outsider.transact(p.claim_ledger.functions.markOverdue(999)),
        "PayableNotFound",
        payableId=999,
    )


# ---- freeze ---------------------------------------------------------------------------------


async def test_freeze_blocks_moves_financing_and_settlement_until_unfrozen(
    platform: Platform,
) -> None:
    p = platform
    claim_ledger, desk = p.claim_ledger.functions, p.desk.functions
    pid, root, due = await p.issue(p.core, p.sup1, FACE, due_in=30 * DAY, agent=p.agent)
    sibling = await p.split(p.sup1, root, p.sup2, 100_000)
    fid = await apply(p, p.sup1, root, p.bank, 200_000)
    terms = await terms_for(p, fid)

    receipt = await p.operator.transact(claim_ledger.freezeClaim(root, REASON))
    assert EventDecoder(p).one(receipt, "ClaimFrozen") == {"claimId": root, "reasonHash": REASON}
    claim = await p.suite.claim(root)
    assert (claim.status, claim.frozen, claim.locked_amount) == (ClaimStatus.FROZEN, True, 200_000)

    frozen = {"claimId": root}
    erc721 = p.claim_ledger.get_function_by_signature("transferFrom(address,address,uint256)")
    expires = await p.now() + DAY
    for actor, fn in (
        (p.sup1, claim_ledger.split(root, p.sup3.address, 1, ZERO_HASH)),
        (p.sup1, claim_ledger.transferClaim(root, p.sup3.address, ZERO_HASH)),
        (p.sup1, erc721(p.sup1.address, p.sup3.address, root)),
        (p.sup1, desk.applyForFinancing(root, p.bank2.address, 1_000, expires, 0, False)),
        (p.bank, desk.approveFinancing(fid, terms.tuple())),
        (p.operator, claim_ledger.freezeClaim(root, REASON)),
    ):
        await expect_revert(actor.transact(fn), "ClaimIsFrozen", **frozen)
    await expect_revert(
        p.sup1.transact(claim_ledger.cancelPayable(pid)), "PayableNotCancellable", payableId=pid
    )
    # the payable's other pieces are not frozen
    await p.sup2.transact(claim_ledger.split(sibling, p.sup3.address, 1, ZERO_HASH))

    receipt = await p.operator.transact(claim_ledger.unfreezeClaim(root))
    assert EventDecoder(p).names(receipt) == {"ClaimUnfrozen": 1}
    await expect_revert(
        p.operator.transact(claim_ledger.unfreezeClaim(root)), "ClaimNotFrozen", claimId=root
    )
    claim = await p.suite.claim(root)
    assert (claim.status, claim.frozen) == (ClaimStatus.LOCKED, False)
    await p.bank.transact(desk.approveFinancing(fid, terms.tuple()))
    assert (await p.suite.financing(fid)).status is FinancingStatus.APPROVED
    await p.sup1.transact(claim_ledger.split(root, p.sup3.address, 1, ZERO_HASH))

    # settlement: a frozen piece is not paid, singly or in a batch, until unfrozen
    await p.operator.transact(claim_ledger.freezeClaim(sibling, REASON))
    await p.warp_to(due)
    for settler in (p.core, p.agent):
        await expect_revert(
            settler.transact(claim_ledger.settleClaim(sibling, pay_ref(sibling))),
            "ClaimIsFrozen",
            claimId=sibling,
        )
        await expect_revert(
            settler.transact(
                claim_ledger.settleClaims([root, sibling], [pay_ref(root), pay_ref(sibling)])
            ),
            "ClaimIsFrozen",
            claimId=sibling,
        )
    assert (await p.suite.claim(root)).status is not ClaimStatus.SETTLED
    await p.operator.transact(claim_ledger.unfreezeClaim(sibling))
    await p.agent.transact(
        claim_ledger.settleClaims([root, sibling], [pay_ref(root), pay_ref(sibling)])
    )
    # a settled piece cannot be frozen: Settled absorbs
    await expect_revert(
        p.operator.transact(claim_ledger.freezeClaim(root, REASON)),
        "ClaimNotLive",
        claimId=root,
        status=ClaimStatus.SETTLED,
    )


# ---- the overdue clock: freezes (SPEC §2, issue 9) ------------------------------------------


async def _freeze_at(platform: Platform, claim_id: int, ts: int) -> None:
    fn = platform.claim_ledger.functions.freezeClaim(claim_id, REASON)
    await transact_at(platform, platform.operator, fn, ts)


async def _unfreeze_at(platform: Platform, claim_id: int, ts: int) -> None:
    fn = platform.claim_ledger.functions.unfreezeClaim(claim_id)
    await transact_at(platform, platform.operator, fn, ts)


async def _overdue_exactly_after(platform: Platform, payable_id: int, deadline: int) -> TxReceipt:
    """``markOverdue`` is refused at ``deadline`` (naming it) and accepted a second later."""
    await expect_revert(
        _mark(platform, payable_id, deadline),
        "PayableNotOverdueYet",
        payableId=payable_id,
        overdueFrom=deadline,
    )
    receipt = await _mark(platform, payable_id, deadline + 1)
    assert (await platform.suite.payable(payable_id)).status is PayableStatus.OVERDUE
    return receipt


async def test_a_freeze_during_grace_delays_overdue_by_its_length(platform: Platform) -> None:
    """Before the fix the payable went overdue at due date + grace + 1 whatever was frozen."""
    p = platform
    pid, root, due = await p.issue(p.core, p.sup1, FACE, due_in=10 * DAY)
    child = await p.split(p.sup1, root, p.sup2, 100_000)
    await _freeze_at(p, child, due + DAY)
    await _unfreeze_at(p, child, due + 3 * DAY)
    clock = await p.claim_ledger.functions.payableClock(pid).call()
    assert tuple(clock) == (0, due + DAY, 2 * DAY)  # no piece frozen now; since; seconds
    await expect_revert(
        _mark(p, pid, due + GRACE + 1),
        "PayableNotOverdueYet",
        payableId=pid,
        overdueFrom=due + GRACE + 2 * DAY,
    )
    assert await p.claim_ledger.functions.overdueFrom(pid).call() == due + GRACE + 2 * DAY
    receipt = await _overdue_exactly_after(p, pid, due + GRACE + 2 * DAY)
    assert EventDecoder(p).one(receipt, "PayableOverdue")["payableId"] == pid


async def test_a_freeze_in_progress_keeps_the_payable_from_going_overdue(
    platform: Platform,
) -> None:
    p = platform
    pid, root, due = await p.issue(p.core, p.sup1, FACE, due_in=10 * DAY)
    await _freeze_at(p, root, due - DAY)  # only the time from the due date on counts
    late = due + GRACE + 60 * DAY
    await expect_revert(
        _mark(p, pid, late), "PayableNotOverdueYet", payableId=pid, overdueFrom=late + GRACE
    )
    await _unfreeze_at(p, root, late + 1)
    await _overdue_exactly_after(p, pid, late + 1 + GRACE)


async def test_a_freeze_does_not_suspend_the_obligor_before_its_extended_deadline(
    platform: Platform,
) -> None:
    """Three payables past due date + grace, a piece of the third frozen during its grace:
    the third overdue (and the suspension) waits for the frozen time to pass as well."""
    p = platform
    payables = await _payables(p, 3, spacing=DAY)
    pid3, root3, due3 = payables[2]
    await _freeze_at(p, root3, due3 + DAY)
    await _unfreeze_at(p, root3, due3 + 6 * DAY)
    ts = due3 + GRACE + 1
    for pid, _root, _due in payables[:2]:
        assert _suspensions(p, await _mark(p, pid, ts)) == []
        ts += 1
    await expect_revert(
        _mark(p, pid3, ts),
        "PayableNotOverdueYet",
        payableId=pid3,
        overdueFrom=due3 + GRACE + 5 * DAY,
    )
    assert (await p.suite.member(p.core.address)).status is MemberStatus.ACTIVE
    receipt = await _overdue_exactly_after(p, pid3, due3 + GRACE + 5 * DAY)
    assert [e["automatic"] for e in _suspensions(p, receipt)] == [True]
    assert (await p.suite.member(p.core.address)).status is MemberStatus.SUSPENDED
