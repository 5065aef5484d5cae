"""Races (SPEC I-4 no double financing, I-1 conservation): conflicting transactions mined in
the same block. Mining is switched off, both transactions are broadcast with explicit gas
(estimating the second against the current state would pass and hide the race), one block
is mined, then mining is switched back on. Exactly one wins; the loser is a mined, failed
transaction with the specific error, no logs and no effect.
"""

from __future__ import annotations

from typing import Any

from eth_utils.crypto import keccak
from web3.types import TxReceipt

from ledger.deployment import DAY
from ledger.errors import ContractRevert
from ledger.reverts import revert_for_failed_transaction
from ledger.bindings import ClaimStatus, FinancingStatus
from tests.support.contracts import apply, send_in_one_block, terms_for
from bench.cast import Platform

FACE = 1_000_000


async def _one_winner(platform: Platform, receipts: list[TxReceipt]) -> tuple[int, ContractRevert]:
    """Index of the successful receipt, and the decoded revert of the other one."""
    statuses = [r["status"] for r in receipts]
    assert sorted(statuses) == [0, 1], f"expected exactly one success, got statuses {statuses}"
    winner, loser = statuses.index(1), statuses.index(0)
    assert receipts[loser]["logs"] == [], "a reverted transaction emitted logs"
    tx_hash = receipts[loser]["transactionHash"].to_0x_hex()
    return winner, await revert_for_failed_transaction(platform.w3, tx_hash)


async def _assert_conserved(platform: Platform, payable_id: int) -> None:
    payable = await platform.suite.payable(payable_id)
    count = int(await platform.claim_ledger.functions.claimCount().call())
    live = 0
    for claim_id in range(1, count + 1):
        claim = await platform.suite.claim(claim_id)
        if claim.payable_id == payable_id and claim.status is not ClaimStatus.SETTLED:
            assert claim.amount > 0
            live += claim.amount
    assert live + payable.settled_value == payable.face_value


async def test_two_approvals_of_one_application_in_one_block(platform: Platform) -> None:
    pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    fid = await apply(platform, platform.sup1, root, platform.bank, 400_000)
    first = await terms_for(platform, fid)
    second = await terms_for(platform, fid)  # same price, another disbursement reference
    assert first.disbursement_ref != second.disbursement_ref
    approve = platform.desk.functions.approveFinancing

    receipts = await send_in_one_block(
        platform,
        [
            (platform.bank, approve(fid, first.tuple())),
            (platform.bank, approve(fid, second.tuple())),
        ],
    )

    winner, revert = await _one_winner(platform, receipts)
    assert winner == 0  # same sender: nonce order is block order
    assert revert.name == "FinancingNotPending"
    assert revert.args == {"financingId": fid, "status": FinancingStatus.APPROVED}
    financing = await platform.suite.financing(fid)
    assert financing.disbursement_ref == first.disbursement_ref
    # the value moved once
    assert await platform.claim_ledger.functions.claimCount().call() == root + 1
    financed = await platform.suite.claim(financing.financed_claim_id or 0)
    assert (financed.holder, financed.amount, financed.financed) == (
        platform.bank.address,
        400_000,
        True,
    )
    source = await platform.suite.claim(root)
    assert (source.amount, source.locked_amount) == (FACE - 400_000, 0)
    assert await platform.suite.exposure(platform.bank.address, platform.core.address) == (
        400_000,
        10**14,
    )
    await _assert_conserved(platform, pid)


async def test_two_applications_for_the_same_unlocked_value_in_one_block(
    platform: Platform,
) -> None:
    pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    expires = await platform.now() + 7 * DAY
    apply_fn = platform.desk.functions.applyForFinancing

    receipts = await send_in_one_block(
        platform,
        [
            (platform.sup1, apply_fn(root, platform.bank.address, 600_000, expires, 0, False)),
            (platform.sup1, apply_fn(root, platform.bank2.address, 600_000, expires, 0, False)),
        ],
    )

    winner, revert = await _one_winner(platform, receipts)
    assert revert.name == "ClaimAmountExceedsAvailable"
    assert revert.args == {"claimId": root, "amount": 600_000, "available": 400_000}
    assert await platform.desk.functions.financingCount().call() == 1
    financing = await platform.suite.financing(1)
    assert financing.financier == (platform.bank, platform.bank2)[winner].address
    claim = await platform.suite.claim(root)
    assert (claim.amount, claim.locked_amount, claim.status) == (FACE, 600_000, ClaimStatus.LOCKED)
    await _assert_conserved(platform, pid)


async def test_application_and_split_of_the_same_value_in_one_block(platform: Platform) -> None:
    pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    expires = await platform.now() + 7 * DAY
    receipts = await send_in_one_block(
        platform,
        [
            (
                platform.sup1,
                platform.desk.functions.applyForFinancing(
                    root, platform.bank.address, 600_000, expires, 0, False
                ),
            ),
            (
                platform.sup1,
                platform.claim_ledger.functions.split(root, platform.sup2.address, 600_000, b"\0" * 32),
            ),
        ],
    )
    winner, revert = await _one_winner(platform, receipts)
    assert winner == 0
    assert revert.name == "ClaimAmountExceedsAvailable"
    assert revert.args == {"claimId": root, "amount": 600_000, "available": 400_000}
    assert await platform.claim_ledger.functions.claimCount().call() == root
    await _assert_conserved(platform, pid)


async def test_approval_and_withdrawal_in_one_block(platform: Platform) -> None:
    pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    fid = await apply(platform, platform.sup1, root, platform.bank, 400_000)
    terms = await terms_for(platform, fid)
    receipts = await send_in_one_block(
        platform,
        [
            (platform.bank, platform.desk.functions.approveFinancing(fid, terms.tuple())),
            (platform.sup1, platform.desk.functions.withdrawFinancing(fid)),
        ],
    )
    winner, revert = await _one_winner(platform, receipts)
    financing = await platform.suite.financing(fid)
    claim = await platform.suite.claim(root)
    assert revert.name == "FinancingNotPending"
    if winner == 0:
        assert financing.status is FinancingStatus.APPROVED
        assert revert.args["status"] == FinancingStatus.APPROVED
        assert (claim.amount, claim.locked_amount) == (FACE - 400_000, 0)
    else:
        assert financing.status is FinancingStatus.WITHDRAWN
        assert revert.args["status"] == FinancingStatus.WITHDRAWN
        assert (claim.amount, claim.locked_amount) == (FACE, 0)
    await _assert_conserved(platform, pid)


async def test_two_approvals_that_together_exceed_exposure_in_one_block(
    platform: Platform,
) -> None:
    bank, core = platform.bank, platform.core.address
    await bank.transact(platform.desk.functions.setExposureLimit(core, 500_000))
    pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    fid1 = await apply(platform, platform.sup1, root, bank, 300_000)
    fid2 = await apply(platform, platform.sup1, root, bank, 300_000)
    terms1, terms2 = await terms_for(platform, fid1), await terms_for(platform, fid2)
    approve = platform.desk.functions.approveFinancing
    receipts = await send_in_one_block(
        platform, [(bank, approve(fid1, terms1.tuple())), (bank, approve(fid2, terms2.tuple()))]
    )
    winner, revert = await _one_winner(platform, receipts)
    assert winner == 0
    assert revert.name == "FinancingExposureExceeded"
    assert revert.args == {
        "financier": bank.address,
        "obligor": core,
        "exposure": 600_000,
        "limit": 500_000,
    }
    assert await platform.suite.exposure(bank.address, core) == (300_000, 500_000)
    assert (await platform.suite.financing(fid2)).status is FinancingStatus.APPLIED
    await _assert_conserved(platform, pid)


async def test_two_settlements_of_one_piece_in_one_block(platform: Platform) -> None:
    pid, root, due = await platform.issue(
        platform.core, platform.sup1, FACE, due_in=DAY, agent=platform.agent
    )
    child = await platform.split(platform.sup1, root, platform.sup2, 100_000)
    await platform.warp_to(due)
    settle = platform.claim_ledger.functions.settleClaim
    receipts = await send_in_one_block(
        platform,
        [
            (platform.core, settle(child, keccak(b"payment-by-core"))),
            (platform.agent, settle(child, keccak(b"payment-by-agent"))),
        ],
    )
    _winner, revert = await _one_winner(platform, receipts)
    assert revert.name == "ClaimNotLive"
    assert revert.args == {"claimId": child, "status": ClaimStatus.SETTLED}
    payable = await platform.suite.payable(pid)
    assert payable.settled_value == 100_000  # recorded once
    account: Any = await platform.suite.obligor_account(platform.core.address)
    assert account.outstanding == FACE - 100_000
    await _assert_conserved(platform, pid)
