"""Amount bounds (TESTPLAN "Amount bounds", SPEC I-2, I-4, I-5): face 0, 1, max, max + 1,
2^255; splits of 0, value − 1, value, value + 1 and over the unlocked value; the program
limit, the invoice total and the exposure limit exactly reached and exceeded by one; the
financing terms (advance, sum, discount convention, term days, registration number).
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3.exceptions import MismatchedABI, Web3ValidationError

from ledger.deployment import DAY
from ledger.bindings import MAX_AMOUNT, ZERO_ADDRESS, ZERO_HASH, ClaimStatus, InvoiceStatus
from tests.support.contracts import (
    pay_ref,
    EXPLICIT_GAS,
    RATE_BPS,
    REG_NO,
    Terms,
    apply,
    days_to_maturity,
    expect_revert,
    finance,
    terms_for,
    transact_at,
)
from bench.cast import Platform

FACE = 1_000_000
PAY = keccak(b"bank-payment")


# ---- face value -----------------------------------------------------------------------------


async def test_RevertWhen_face_value_zero(platform: Platform) -> None:
    invoice_id = await platform.invoice(platform.sup1, platform.core, FACE)
    due = await platform.now() + 30 * DAY
    fn = platform.claim_ledger.functions.issuePayable(
        platform.sup1.address, 0, due, [invoice_id], ZERO_ADDRESS
    )
    await expect_revert(platform.core.transact(fn), "PayableFaceValueInvalid", faceValue=0)


async def test_issuePayable_face_value_one(platform: Platform) -> None:
    pid, root, _due = await platform.issue(platform.core, platform.sup1, 1)
    assert (await platform.suite.payable(pid)).face_value == 1
    assert (await platform.suite.claim(root)).amount == 1
    # a piece of 1 cannot be split: 1 is its whole value
    await expect_revert(
        platform.sup1.transact(
            platform.claim_ledger.functions.split(root, platform.sup2.address, 1, ZERO_HASH)
        ),
        "ClaimAmountInvalid",
        amount=1,
    )


async def test_issuePayable_face_value_uint128_max_and_settles_without_overflow(
    platform: Platform,
) -> None:
    await platform.operator.transact(
        platform.claim_ledger.functions.setProgramLimit(platform.core.address, MAX_AMOUNT)
    )
    pid, root, due = await platform.issue(platform.core, platform.sup1, MAX_AMOUNT)
    assert (await platform.suite.payable(pid)).face_value == MAX_AMOUNT
    assert (await platform.suite.obligor_account(platform.core.address)).outstanding == MAX_AMOUNT
    child = await platform.split(platform.sup1, root, platform.sup2, MAX_AMOUNT - 1)
    assert (await platform.suite.claim(root)).amount == 1
    assert (await platform.suite.claim(child)).amount == MAX_AMOUNT - 1
    # the limit is exhausted: one more unit is refused, reported in uint256 without wrapping
    await expect_revert(
        platform.issue(platform.core, platform.sup3, 1),
        "PayableLimitExceeded",
        obligor=platform.core.address,
        outstanding=MAX_AMOUNT + 1,
        programLimit=MAX_AMOUNT,
    )
    await platform.warp_to(due)
    await platform.core.transact(
        platform.claim_ledger.functions.settleClaims([root, child], [pay_ref(root), pay_ref(child)])
    )
    payable = await platform.suite.payable(pid)
    assert payable.settled_value == MAX_AMOUNT
    assert (await platform.suite.obligor_account(platform.core.address)).outstanding == 0


async def _state(platform: Platform, invoice_id: bytes) -> tuple[Any, ...]:
    return (
        await platform.claim_ledger.functions.payableCount().call(),
        await platform.claim_ledger.functions.claimCount().call(),
        await platform.suite.obligor_account(platform.core.address),
        (await platform.suite.invoice(invoice_id)).status,
    )


@pytest.mark.parametrize("face", [2**128, 2**255, 2**256 - 1])
async def test_RevertWhen_face_value_above_uint128(platform: Platform, face: int) -> None:
    """Refused by the client's ABI encoder; raw calldata that smuggles the word past it is
    refused by the contract's ABI decoder (an empty revert). Nothing changes either way."""
    await platform.operator.transact(
        platform.claim_ledger.functions.setProgramLimit(platform.core.address, MAX_AMOUNT)
    )
    invoice_id = await platform.invoice(platform.sup1, platform.core, MAX_AMOUNT)
    due = await platform.now() + 30 * DAY
    before = await _state(platform, invoice_id)
    args = (platform.sup1.address, face, due, [invoice_id], ZERO_ADDRESS)

    with pytest.raises((MismatchedABI, Web3ValidationError)):
        platform.claim_ledger.functions.issuePayable(*args)

    selector = keccak(text="issuePayable(address,uint128,uint64,bytes32[],address)")[:4]
    data = selector + encode(["address", "uint256", "uint64", "bytes32[]", "address"], list(args))
    tx = {"to": platform.claim_ledger.address, "data": data}
    await expect_revert(platform.core.sender.send(tx), "EmptyRevert")  # estimation refuses
    pending = await platform.core.sender.send({**tx, "gas": EXPLICIT_GAS})
    receipt = await pending.receipt()
    assert receipt["status"] == 0
    assert receipt["logs"] == []
    assert await _state(platform, invoice_id) == before
    assert (await platform.suite.invoice(invoice_id)).status is InvoiceStatus.CONFIRMED


@pytest.mark.parametrize("amount", [2**128, 2**255])
async def test_RevertWhen_invoice_or_application_amount_above_uint128(
    platform: Platform, amount: int
) -> None:
    now = await platform.now()
    with pytest.raises((MismatchedABI, Web3ValidationError)):
        platform.invoices.functions.registerInvoice(
            platform.unique("i"), platform.core.address, amount, now, platform.unique("d")
        )
    with pytest.raises((MismatchedABI, Web3ValidationError)):
        platform.desk.functions.applyForFinancing(
            1, platform.bank.address, amount, now + DAY, 0, False
        )


# ---- splits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "error"),
    [
        (None, "ClaimAmountInvalid"),  # 0
        (-1, None),  # value - 1: OK, the parent keeps 1
        (0, "ClaimAmountInvalid"),  # value: a whole piece moves by transferClaim
        (1, "ClaimAmountExceedsAvailable"),
        (2**255, "ClaimAmountExceedsAvailable"),  # split value is a uint256
    ],
    ids=["zero", "value-1", "value", "value+1", "value+2^255"],
)
async def test_split_amount_bounds(
    platform: Platform, delta: int | None, error: str | None
) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    value = 0 if delta is None else FACE + delta
    fn = platform.claim_ledger.functions.split(root, platform.sup2.address, value, ZERO_HASH)
    if error is None:
        await platform.sup1.transact(fn)
        child = int(await platform.claim_ledger.functions.claimCount().call())
        assert (await platform.suite.claim(root)).amount == 1
        assert (await platform.suite.claim(child)).amount == FACE - 1
        return
    if error == "ClaimAmountInvalid":
        await expect_revert(platform.sup1.transact(fn), error, amount=value)
    else:
        await expect_revert(
            platform.sup1.transact(fn), error, claimId=root, amount=value, available=FACE
        )
    assert (await platform.suite.claim(root)).amount == FACE


async def test_split_limited_to_unlocked_value(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, 1_000)
    fid = await apply(platform, platform.sup1, root, platform.bank, 300)
    claim_ledger = platform.claim_ledger.functions
    await expect_revert(
        platform.sup1.transact(claim_ledger.split(root, platform.sup2.address, 701, ZERO_HASH)),
        "ClaimAmountExceedsAvailable",
        claimId=root,
        amount=701,
        available=700,
    )
    await expect_revert(
        platform.sup1.transact(claim_ledger.transferClaim(root, platform.sup2.address, ZERO_HASH)),
        "ClaimValueLocked",
        claimId=root,
        locked=300,
    )
    # the whole unlocked value may go: the piece keeps exactly its locked value
    await platform.sup1.transact(claim_ledger.split(root, platform.sup2.address, 700, ZERO_HASH))
    claim = await platform.suite.claim(root)
    assert (claim.amount, claim.locked_amount, claim.status) == (300, 300, ClaimStatus.LOCKED)
    expires = await platform.now() + DAY
    await expect_revert(
        platform.sup1.transact(
            platform.desk.functions.applyForFinancing(
                root, platform.bank2.address, 1, expires, 0, False
            )
        ),
        "ClaimAmountExceedsAvailable",
        claimId=root,
        amount=1,
        available=0,
    )
    await expect_revert(
        platform.sup1.transact(
            platform.desk.functions.applyForFinancing(
                root, platform.bank2.address, 0, expires, 0, False
            )
        ),
        "FinancingAmountInvalid",
        amount=0,
    )
    # approving the application now moves the whole remaining piece to the financier
    await platform.bank.transact(
        platform.desk.functions.approveFinancing(fid, (await terms_for(platform, fid)).tuple())
    )
    claim = await platform.suite.claim(root)
    assert (claim.holder, claim.amount, claim.locked_amount, claim.status) == (
        platform.bank.address,
        300,
        0,
        ClaimStatus.FINANCED,
    )


# ---- program limit --------------------------------------------------------------------------


async def test_program_limit_exactly_reached_then_exceeded_by_one(platform: Platform) -> None:
    limit = 5_000_000
    core = platform.core.address
    await platform.operator.transact(platform.claim_ledger.functions.setProgramLimit(core, limit))
    await platform.issue(platform.core, platform.sup1, 3_000_000)
    pid2, _root2, _ = await platform.issue(platform.core, platform.sup2, 2_000_000)
    assert (await platform.suite.obligor_account(core)).outstanding == limit
    await expect_revert(
        platform.issue(platform.core, platform.sup3, 1),
        "PayableLimitExceeded",
        obligor=core,
        outstanding=limit + 1,
        programLimit=limit,
    )
    # cancelling a payable gives its face value back to the limit
    await platform.sup2.transact(platform.claim_ledger.functions.cancelPayable(pid2))
    assert (await platform.suite.obligor_account(core)).outstanding == 3_000_000
    await platform.issue(platform.core, platform.sup3, 2_000_000)
    # another obligor's limit is its own
    await platform.issue(platform.core2, platform.sup3, 2_000_000)


async def test_RevertWhen_single_payable_exceeds_program_limit_by_one(platform: Platform) -> None:
    limit = 5_000_000
    core = platform.core.address
    await platform.operator.transact(platform.claim_ledger.functions.setProgramLimit(core, limit))
    await expect_revert(
        platform.issue(platform.core, platform.sup1, limit + 1),
        "PayableLimitExceeded",
        obligor=core,
        outstanding=limit + 1,
        programLimit=limit,
    )
    await platform.issue(platform.core, platform.sup1, limit)


async def test_settlement_frees_the_program_limit(platform: Platform) -> None:
    core = platform.core.address
    await platform.operator.transact(platform.claim_ledger.functions.setProgramLimit(core, FACE))
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=DAY)
    child = await platform.split(platform.sup1, root, platform.sup2, 400_000)
    await platform.warp_to(due)
    await platform.core.transact(platform.claim_ledger.functions.settleClaim(child, pay_ref(child)))
    assert (await platform.suite.obligor_account(core)).outstanding == FACE - 400_000
    await platform.issue(platform.core, platform.sup3, 400_000)
    await expect_revert(
        platform.issue(platform.core, platform.sup3, 1),
        "PayableLimitExceeded",
        obligor=core,
        outstanding=FACE + 1,
        programLimit=FACE,
    )


async def test_program_limit_below_outstanding_is_over_limit_until_back_under(
    platform: Platform,
) -> None:
    """Lowering the limit below what is outstanding is allowed; the event says the obligor is
    over it and nothing is issued (its own error) until settlement brings it back under."""
    core = platform.core.address
    await platform.operator.transact(platform.claim_ledger.functions.setProgramLimit(core, FACE))
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=DAY)
    child = await platform.split(platform.sup1, root, platform.sup2, 400_000)
    lowered = await platform.operator.transact(
        platform.claim_ledger.functions.setProgramLimit(core, FACE // 2)
    )
    (event,) = platform.claim_ledger.events.ProgramLimitSet().process_receipt(lowered)
    assert (event.args.programLimit, event.args.outstanding, event.args.overLimit) == (
        FACE // 2,
        FACE,
        True,
    )
    await expect_revert(
        platform.issue(platform.core, platform.sup3, 1),
        "PayableObligorOverLimit",
        obligor=core,
        outstanding=FACE,
        programLimit=FACE // 2,
    )
    await platform.warp_to(due)
    await platform.core.transact(platform.claim_ledger.functions.settleClaim(child, pay_ref(child)))
    # 600,000 outstanding, still over 500,000: no issue
    await expect_revert(platform.issue(platform.core, platform.sup3, 1), "PayableObligorOverLimit")
    await platform.core.transact(
        platform.claim_ledger.functions.settleClaim(root, keccak(b"bank-payment-2"))
    )
    await platform.issue(platform.core, platform.sup3, FACE // 2)


# ---- invoice total --------------------------------------------------------------------------


async def _issue_with(platform: Platform, invoices: list[bytes], face: int) -> Any:
    due = await platform.now() + 30 * DAY
    return await platform.core.transact(
        platform.claim_ledger.functions.issuePayable(
            platform.sup1.address, face, due, invoices, ZERO_ADDRESS
        )
    )


async def test_invoices_summing_exactly_to_face_back_the_payable(platform: Platform) -> None:
    a = await platform.invoice(platform.sup1, platform.core, 600_000)
    b = await platform.invoice(platform.sup1, platform.core, 400_000)
    await _issue_with(platform, [a, b], 1_000_000)
    for invoice_id in (a, b):
        assert (await platform.suite.invoice(invoice_id)).status is InvoiceStatus.USED


async def test_RevertWhen_invoices_sum_to_face_minus_one(platform: Platform) -> None:
    a = await platform.invoice(platform.sup1, platform.core, 600_000)
    b = await platform.invoice(platform.sup1, platform.core, 399_999)
    await expect_revert(
        _issue_with(platform, [a, b], 1_000_000),
        "PayableInvoicesInsufficient",
        invoiceTotal=999_999,
        faceValue=1_000_000,
    )
    for invoice_id in (a, b):
        assert (await platform.suite.invoice(invoice_id)).status is InvoiceStatus.CONFIRMED
    assert (await platform.suite.obligor_account(platform.core.address)).outstanding == 0


async def test_invoice_count_bounds(platform: Platform) -> None:
    """1..MAX_INVOICES_PER_PAYABLE (20) invoices back a payable."""
    ids = [await platform.invoice(platform.sup1, platform.core, 1_000) for _ in range(21)]
    await expect_revert(_issue_with(platform, [], 1), "PayableInvoiceCountInvalid", count=0)
    await expect_revert(_issue_with(platform, ids, 1), "PayableInvoiceCountInvalid", count=21)
    await _issue_with(platform, ids[:20], 20_000)


async def test_RevertWhen_invoice_amount_zero(platform: Platform) -> None:
    now = await platform.now()
    await expect_revert(
        platform.sup1.transact(
            platform.invoices.functions.registerInvoice(
                platform.unique("i"), platform.core.address, 0, now, platform.unique("d")
            )
        ),
        "InvoiceAmountInvalid",
        amount=0,
    )


# ---- exposure limit -------------------------------------------------------------------------


async def test_exposure_limit_exactly_reached_then_exceeded_by_one(platform: Platform) -> None:
    limit = 50_000
    bank, core = platform.bank, platform.core.address
    await bank.transact(platform.desk.functions.setExposureLimit(core, limit))
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    financed = await finance(platform, platform.sup1, root, bank, limit)
    assert await platform.suite.exposure(bank.address, core) == (limit, limit)
    fid = await apply(platform, platform.sup1, root, bank, 1)
    # one unit at a non-zero rate would cost its whole value in discount (ceil): price it at 0
    terms = await terms_for(platform, fid, rate_bps=0)
    approve = platform.desk.functions.approveFinancing(fid, terms.tuple())
    await expect_revert(
        bank.transact(approve),
        "FinancingExposureExceeded",
        financier=bank.address,
        obligor=core,
        exposure=limit + 1,
        limit=limit,
    )
    # passing the financed piece on releases the exposure; then the approval fits
    await bank.transact(
        platform.claim_ledger.functions.transferClaim(financed, platform.sup2.address, ZERO_HASH)
    )
    assert await platform.suite.exposure(bank.address, core) == (0, limit)
    await bank.transact(approve)
    assert await platform.suite.exposure(bank.address, core) == (1, limit)


# ---- financing terms ------------------------------------------------------------------------


async def _application(platform: Platform, amount: int = 100_000) -> tuple[int, int]:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE, due_in=90 * DAY)
    return await apply(platform, platform.sup1, root, platform.bank, amount), root


def _with(terms: Terms, **changes: Any) -> tuple[Any, ...]:
    values = {**terms.__dict__, **changes}
    return Terms(**values).tuple()


async def test_RevertWhen_advance_is_zero(platform: Platform) -> None:
    fid, _root = await _application(platform)
    terms = await terms_for(platform, fid)
    bad = _with(terms, advance=0, fees=terms.fees + terms.advance)  # sum still = amount
    await expect_revert(
        platform.bank.transact(platform.desk.functions.approveFinancing(fid, bad)),
        "FinancingTermsInvalid",
        advance=0,
        discount=terms.discount,
        fees=terms.fees + terms.advance,
        amount=100_000,
    )


@pytest.mark.parametrize("delta", [-1, 1, 2**127])
async def test_RevertWhen_advance_discount_fees_do_not_sum_to_amount(
    platform: Platform, delta: int
) -> None:
    fid, _root = await _application(platform)
    terms = await terms_for(platform, fid, fees=1_000)
    fees = terms.fees + delta
    bad = _with(terms, fees=fees)
    await expect_revert(
        platform.bank.transact(platform.desk.functions.approveFinancing(fid, bad)),
        "FinancingTermsInvalid",
        advance=terms.advance,
        discount=terms.discount,
        fees=fees,
        amount=100_000,
    )


@pytest.mark.parametrize("delta", [-1, 1])
async def test_RevertWhen_discount_off_convention(platform: Platform, delta: int) -> None:
    fid, _root = await _application(platform)
    terms = await terms_for(platform, fid)
    bad = _with(terms, discount=terms.discount + delta, advance=terms.advance - delta)
    await expect_revert(
        platform.bank.transact(platform.desk.functions.approveFinancing(fid, bad)),
        "FinancingDiscountInvalid",
        discount=terms.discount + delta,
        expected=terms.discount,
    )


@pytest.mark.parametrize(
    ("day_delta", "ok"), [(+1, False), (0, True), (-1, True), (-2, False), (-30, False)]
)
async def test_term_days_within_one_day_of_maturity(
    platform: Platform, day_delta: int, ok: bool
) -> None:
    fid, root = await _application(platform)
    due = (await platform.suite.claim(root)).due_date
    at = await platform.now() + 3_600
    dtm = days_to_maturity(due, at)
    terms = await terms_for(platform, fid, at=at, term_days=dtm + day_delta)
    fn = platform.desk.functions.approveFinancing(fid, terms.tuple())
    if ok:
        await transact_at(platform, platform.bank, fn, at)
        financing = await platform.suite.financing(fid)
        assert (financing.advance, financing.discount) == (terms.advance, terms.discount)
    else:
        await expect_revert(
            transact_at(platform, platform.bank, fn, at),
            "FinancingTermDaysInvalid",
            termDays=dtm + day_delta,
            daysToMaturity=dtm,
        )


async def test_RevertWhen_registration_number_missing(platform: Platform) -> None:
    fid, _root = await _application(platform)
    terms = await terms_for(platform, fid, registration_no=ZERO_HASH)
    await expect_revert(
        platform.bank.transact(platform.desk.functions.approveFinancing(fid, terms.tuple())),
        "FinancingRegistrationRequired",
        financingId=fid,
    )
    # with it, the same terms pass
    await platform.bank.transact(
        platform.desk.functions.approveFinancing(fid, _with(terms, registration_no=REG_NO))
    )


async def test_terms_with_fees_and_zero_rate_are_accepted(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE, due_in=90 * DAY)
    fid = await apply(platform, platform.sup1, root, platform.bank, 100_000, recourse=True)
    terms = await terms_for(platform, fid, rate_bps=0, fees=2_500)
    assert terms.discount == 0
    await platform.bank.transact(platform.desk.functions.approveFinancing(fid, terms.tuple()))
    financing = await platform.suite.financing(fid)
    assert (financing.advance, financing.discount, financing.fees, financing.recourse) == (
        97_500,
        0,
        2_500,
        True,
    )


async def test_discount_convention_rounds_up_by_less_than_one_unit(platform: Platform) -> None:
    """discountFor = ceil(amount × bps × days / 3 600 000), against an exact reference."""
    rng = random.Random(20240601)
    cases = [(1, 1, 1), (MAX_AMOUNT, 10_000, 366), (3_600_000, 1, 1), (100_000, RATE_BPS, 90)]
    cases += [
        (rng.randrange(1, 10**12), rng.randrange(0, 5_000), rng.randrange(0, 366))
        for _ in range(20)
    ]
    for amount, bps, days in cases:
        exact = amount * bps * days
        expected = -(-exact // 3_600_000)
        got = await platform.suite.discount_for(amount, bps, days)
        assert got == expected, (amount, bps, days)
        assert 0 <= got * 3_600_000 - exact < 3_600_000
    assert math.ceil(100_000 * 600 * 90 / 3_600_000) == 1_500


# ---- settlement batches ---------------------------------------------------------------------


async def test_settlement_batch_and_reference_bounds(platform: Platform) -> None:
    _pid, root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=DAY)
    await platform.warp_to(due)
    settle = platform.claim_ledger.functions.settleClaims
    for ids, refs in (([], []), ([root] * 101, [PAY] * 101), ([root], [PAY, PAY])):
        await expect_revert(
            platform.core.transact(settle(ids, refs)),
            "SettlementBatchInvalid",
            length=len(ids),
            maxLength=100,
        )
    await expect_revert(
        platform.core.transact(platform.claim_ledger.functions.settleClaim(root, ZERO_HASH)),
        "SettlementReferenceInvalid",
    )
    # the same piece twice in one batch: all or nothing
    await expect_revert(
        platform.core.transact(settle([root, root], [PAY, PAY])),
        "ClaimNotLive",
        claimId=root,
        status=ClaimStatus.SETTLED,
    )
    assert (await platform.suite.claim(root)).status is ClaimStatus.ACTIVE


# ---- the applicant's committed terms (SPEC §2, I-12) ----------------------------------------


async def test_RevertWhen_advance_below_committed_min_advance(platform: Platform) -> None:
    """The review's reproduction was an advance of 1 fen on 100,000 yuan: refused now."""
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE, due_in=90 * DAY)
    fid = await apply(platform, platform.sup1, root, platform.bank, 100_000, min_advance=98_000)
    assert (await platform.suite.financing(fid)).min_advance == 98_000
    terms = await terms_for(platform, fid)  # 4.5 % over 90 days: ~1,125 discount
    one_fen = _with(terms, advance=1, fees=100_000 - 1 - terms.discount)
    await expect_revert(
        platform.bank.transact(platform.desk.functions.approveFinancing(fid, one_fen)),
        "FinancingAdvanceBelowMinimum",
        financingId=fid,
        advance=1,
        minAdvance=98_000,
    )
    await platform.bank.transact(platform.desk.functions.approveFinancing(fid, terms.tuple()))


async def test_RevertWhen_min_advance_above_amount(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    await expect_revert(
        apply(platform, platform.sup1, root, platform.bank, 1_000, min_advance=1_001),
        "FinancingMinAdvanceInvalid",
        minAdvance=1_001,
        amount=1_000,
    )


async def test_RevertWhen_recourse_is_not_the_committed_one(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    fid = await apply(platform, platform.sup1, root, platform.bank, 100_000, recourse=False)
    with_recourse = await terms_for(platform, fid, recourse=True)
    await expect_revert(
        platform.bank.transact(
            platform.desk.functions.approveFinancing(fid, with_recourse.tuple())
        ),
        "FinancingRecourseMismatch",
        financingId=fid,
        committed=False,
    )
    fid2 = await apply(platform, platform.sup1, root, platform.bank, 100_000, recourse=True)
    await platform.bank.transact(
        platform.desk.functions.approveFinancing(fid2, (await terms_for(platform, fid2)).tuple())
    )
    assert (await platform.suite.financing(fid2)).recourse is True


async def test_RevertWhen_registration_or_disbursement_reused(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    first = await apply(platform, platform.sup1, root, platform.bank, 100_000)
    used = await terms_for(platform, first)
    await platform.bank.transact(platform.desk.functions.approveFinancing(first, used.tuple()))
    second = await apply(platform, platform.sup1, root, platform.bank, 100_000)
    fresh = await terms_for(platform, second)
    await expect_revert(
        platform.bank.transact(
            platform.desk.functions.approveFinancing(
                second, _with(fresh, registration_no=used.registration_no)
            )
        ),
        "FinancingRegistrationUsed",
        financingId=first,
    )
    await expect_revert(
        platform.bank.transact(
            platform.desk.functions.approveFinancing(
                second, _with(fresh, disbursement_ref=used.disbursement_ref)
            )
        ),
        "FinancingDisbursementUsed",
        financingId=first,
    )
    await platform.bank.transact(platform.desk.functions.approveFinancing(second, fresh.tuple()))
