"""A bank payment reference pays one holder for one payable (SPEC §2, issue 9): the first
settlement citing it records that holder and payable; citing it again for more of the same
holder's pieces of the same payable is allowed (one payment may cover several pieces, across
batches), citing it for another holder or another payable reverts ``SettlementReferenceUsed``
and changes nothing."""

from __future__ import annotations

from eth_utils.crypto import keccak

from bench.cast import Platform
from ledger.bindings import ClaimStatus, SettlementReferenceView
from tests.support.contracts import expect_revert


async def test_settleClaim_RevertWhen_payment_ref_paid_another_holder(platform: Platform) -> None:
    p = platform
    payable_id, root, due = await p.issue(p.core, p.sup1, 1_000_000, agent=p.agent)
    to_sup2 = await p.split(p.sup1, root, p.sup2, 300_000)
    more_sup2 = await p.split(p.sup1, root, p.sup2, 200_000)
    last_sup2 = await p.split(p.sup1, root, p.sup2, 100_000)
    await p.warp_to(due)
    ledger = p.claim_ledger.functions
    pay = keccak(b"bank payment to sup2")
    assert await p.suite.settlement_reference(pay) == SettlementReferenceView(None, 0)

    await p.core.transact(ledger.settleClaim(to_sup2, pay))
    assert await p.suite.settlement_reference(pay) == SettlementReferenceView(
        p.sup2.address, payable_id
    )
    # the same payment covers sup2's other pieces, in a later batch by the clearing agent
    await p.agent.transact(ledger.settleClaims([more_sup2, last_sup2], [pay, pay]))
    assert (await p.suite.claim(last_sup2)).status is ClaimStatus.SETTLED

    # ... but not sup1's piece: that is another payment, to another holder
    await expect_revert(
        p.core.transact(ledger.settleClaim(root, pay)),
        "SettlementReferenceUsed",
        paymentRef=pay,
        holder=p.sup2.address,
        payableId=payable_id,
    )
    assert (await p.suite.claim(root)).status is ClaimStatus.ACTIVE
    await p.core.transact(ledger.settleClaim(root, keccak(b"bank payment to sup1")))


async def test_settleClaims_RevertWhen_one_ref_covers_two_holders(platform: Platform) -> None:
    """Within one batch too: the first piece records the holder, the second (another holder)
    reverts, and the whole batch with it (nothing recorded)."""
    p = platform
    payable_id, root, due = await p.issue(p.core, p.sup1, 1_000_000)
    to_sup2 = await p.split(p.sup1, root, p.sup2, 300_000)
    await p.warp_to(due)
    pay = keccak(b"one payment, two holders")
    await expect_revert(
        p.core.transact(p.claim_ledger.functions.settleClaims([to_sup2, root], [pay, pay])),
        "SettlementReferenceUsed",
        holder=p.sup2.address,
        payableId=payable_id,
    )
    assert await p.suite.settlement_reference(pay) == SettlementReferenceView(None, 0)
    assert (await p.suite.claim(to_sup2)).status is ClaimStatus.ACTIVE


async def test_settleClaim_RevertWhen_payment_ref_paid_another_payable(platform: Platform) -> None:
    """The same holder, another payable: a bank payment settles one payable's pieces."""
    p = platform
    first, root1, _ = await p.issue(p.core, p.sup1, 1_000)
    _second, root2, due2 = await p.issue(p.core, p.sup1, 2_000)
    await p.warp_to(due2)
    pay = keccak(b"bank payment for the first payable")
    await p.core.transact(p.claim_ledger.functions.settleClaim(root1, pay))
    await expect_revert(
        p.core.transact(p.claim_ledger.functions.settleClaim(root2, pay)),
        "SettlementReferenceUsed",
        holder=p.sup1.address,
        payableId=first,
    )
