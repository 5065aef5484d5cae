// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TierflowBase} from "../utils/TierflowBase.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IFinancingDesk} from "../../src/interfaces/IFinancingDesk.sol";

/// @notice Financing lifecycle edges: lock on apply, exact move on approve, unlock on
/// reject / withdraw / expiry, exposure booked and released.
contract FinancingDeskTest is TierflowBase {
    uint128 internal constant FACE = 10_000_000;
    uint64 internal constant TERM = 120 days;

    uint256 internal pid;
    uint256 internal root;
    uint64 internal expiry;

    function setUp() public override {
        super.setUp();
        (pid, root) = _issue(coreA, supplier1, FACE, TERM, address(0));
        expiry = uint64(START + 7 days);
    }

    function _apply(address financier, uint128 amount) internal returns (uint256 id) {
        vm.prank(supplier1);
        id = desk.applyForFinancing(root, financier, amount, expiry, 0, false);
    }

    /// @dev supplier1 applies to the bank for `amount` of the root piece and the bank approves at
    /// 4.5 % a year, no fees: the financing, the financed piece and the terms approved.
    function _financed(uint128 amount)
        internal
        returns (uint256 id, uint256 financedId, IFinancingDesk.Terms memory t)
    {
        id = _apply(bank, amount);
        t = _terms(root, amount, 450, 0);
        vm.prank(bank);
        financedId = desk.approveFinancing(id, t);
    }

    function test_applyForFinancing_locksValue() public {
        uint256 id = _apply(bank, 4_000_000);
        IClaimLedger.ClaimView memory c = _claim(root);
        assertEq(c.locked, 4_000_000, "locked");
        assertEq(uint256(c.status), uint256(IClaimLedger.ClaimStatus.Locked), "status");
        assertEq(uint256(desk.financing(id).status), uint256(IFinancingDesk.FinancingStatus.Applied), "applied");
    }

    function test_RevertWhen_secondApplicationExceedsUnlocked() public {
        _apply(bank, 8_000_000);
        vm.prank(supplier1);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.ClaimAmountExceedsAvailable.selector, root, 2_000_001, 2_000_000)
        );
        desk.applyForFinancing(root, factor, 2_000_001, expiry, 0, false);
    }

    function test_RevertWhen_splitLockedValue() public {
        _apply(bank, 8_000_000);
        vm.prank(supplier1);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.ClaimAmountExceedsAvailable.selector, root, 2_000_001, 2_000_000)
        );
        ledger.split(root, supplier2, 2_000_001, bytes32(0));
    }

    function test_RevertWhen_transferPieceWithLockedValue() public {
        _apply(bank, 1);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimValueLocked.selector, root, 1));
        ledger.transferClaim(root, supplier2, bytes32(0));
    }

    function test_RevertWhen_applyByNonHolder() public {
        vm.prank(supplier2);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, supplier2));
        desk.applyForFinancing(root, bank, 1, expiry, 0, false);
    }

    function test_RevertWhen_applyExpiryAtDueDate() public {
        uint64 dueDate = uint64(START) + TERM;
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingExpiryInvalid.selector, dueDate, dueDate));
        desk.applyForFinancing(root, bank, 1, dueDate, 0, false);
    }

    function test_approveFinancing_movesExactAmountToFinancier() public {
        uint256 id = _apply(bank, 4_000_000);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 1_000);
        assertEq(t.termDays, 120, "term days");
        assertEq(t.discount, 60_000, "4,000,000 x 4.5% x 120 / 360");
        vm.prank(bank);
        uint256 financed = desk.approveFinancing(id, t);
        IClaimLedger.ClaimView memory f = _claim(financed);
        assertEq(f.holder, bank, "held by its financier");
        assertEq(f.value, 4_000_000, "exact amount");
        assertTrue(f.financed, "financed flag");
        IClaimLedger.ClaimView memory r = _claim(root);
        assertEq(r.value, FACE - 4_000_000, "root keeps the rest");
        assertEq(r.locked, 0, "unlocked");
        (uint128 outstanding,) = desk.exposure(bank, coreA);
        assertEq(outstanding, 4_000_000, "exposure booked");
        IFinancingDesk.Financing memory fin = desk.financing(id);
        assertEq(fin.advance + fin.discount + fin.fees, fin.amount, "I-5");
    }

    function test_approveFinancing_wholePieceTransfers() public {
        uint256 id = _apply(bank, FACE);
        IFinancingDesk.Terms memory t = _terms(root, FACE, 300, 0);
        vm.prank(bank);
        uint256 financed = desk.approveFinancing(id, t);
        assertEq(financed, root, "same piece");
        assertEq(_claim(root).holder, bank, "moved whole");
    }

    function test_approveFinancing_termDaysOneLessAccepted() public {
        uint256 id = _apply(bank, 4_000_000);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 0);
        t.termDays -= 1;
        t.discount = uint128(desk.discountFor(4_000_000, 450, t.termDays));
        t.advance = 4_000_000 - t.discount;
        vm.prank(bank);
        desk.approveFinancing(id, t);
    }

    function test_RevertWhen_approveWithWrongDiscount() public {
        uint256 id = _apply(bank, 4_000_000);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 0);
        t.discount -= 1;
        t.advance += 1;
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingDiscountInvalid.selector, 59_999, 60_000));
        desk.approveFinancing(id, t);
    }

    function test_RevertWhen_approveWithoutRegistrationNo() public {
        uint256 id = _apply(bank, 4_000_000);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 0);
        t.registrationNo = bytes32(0);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingRegistrationRequired.selector, id));
        desk.approveFinancing(id, t);
    }

    function test_RevertWhen_approveByOtherFinancier() public {
        uint256 id = _apply(bank, 4_000_000);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 0);
        vm.prank(factor);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingNotFinancier.selector, id, factor));
        desk.approveFinancing(id, t);
    }

    function test_RevertWhen_approveBeyondExposureLimit() public {
        uint128 amount = FIN_TIGHT_LIMIT + 1;
        (, uint256 bigRoot) = _issue(coreA, supplier1, amount, TERM, address(0));
        vm.prank(supplier1);
        uint256 id = desk.applyForFinancing(bigRoot, factor, amount, expiry, 0, false);
        IFinancingDesk.Terms memory t = _terms(bigRoot, amount, 450, 0);
        vm.prank(factor);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFinancingDesk.FinancingExposureExceeded.selector, factor, coreA, uint256(amount), FIN_TIGHT_LIMIT
            )
        );
        desk.approveFinancing(id, t);
    }

    function test_RevertWhen_approveTwice() public {
        uint256 id = _apply(bank, 4_000_000);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 0);
        vm.startPrank(bank);
        desk.approveFinancing(id, t);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFinancingDesk.FinancingNotPending.selector, id, IFinancingDesk.FinancingStatus.Approved
            )
        );
        desk.approveFinancing(id, t);
        vm.stopPrank();
    }

    function test_RevertWhen_approveAtExpiry() public {
        uint256 id = _apply(bank, 4_000_000);
        vm.warp(expiry);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 0);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingHasExpired.selector, id, expiry));
        desk.approveFinancing(id, t);
    }

    function test_rejectFinancing_unlocks() public {
        uint256 id = _apply(bank, 4_000_000);
        vm.prank(bank);
        desk.rejectFinancing(id, keccak256("no"));
        assertEq(_claim(root).locked, 0, "unlocked");
        assertEq(uint256(desk.financing(id).status), uint256(IFinancingDesk.FinancingStatus.Rejected), "rejected");
    }

    function test_withdrawFinancing_unlocks() public {
        uint256 id = _apply(bank, 4_000_000);
        vm.prank(supplier1);
        desk.withdrawFinancing(id);
        assertEq(_claim(root).locked, 0, "unlocked");
    }

    function test_RevertWhen_expireBeforeExpiry() public {
        uint256 id = _apply(bank, 4_000_000);
        vm.warp(expiry - 1);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingNotExpired.selector, id, expiry));
        desk.expireFinancing(id);
    }

    function test_expireFinancing_byAnyoneAtExpiry() public {
        uint256 id = _apply(bank, 4_000_000);
        vm.warp(expiry);
        vm.prank(outsider);
        desk.expireFinancing(id);
        assertEq(_claim(root).locked, 0, "unlocked");
    }

    function test_settleClaim_financedPieceReleasesExposure() public {
        (, uint256 financed,) = _financed(4_000_000);
        vm.warp(START + TERM);
        vm.prank(coreA);
        ledger.settleClaim(financed, keccak256("pay bank"));
        (uint128 outstanding,) = desk.exposure(bank, coreA);
        assertEq(outstanding, 0, "exposure released");
    }

    function test_transferClaim_financedPieceReleasesExposure() public {
        (, uint256 financed,) = _financed(4_000_000);
        vm.prank(bank);
        ledger.transferClaim(financed, traderBank, bytes32(0));
        (uint128 outstanding,) = desk.exposure(bank, coreA);
        assertEq(outstanding, 0, "released on passing on");
        IClaimLedger.ClaimView memory c = _claim(financed);
        assertTrue(!c.financed, "no longer financed");
    }

    /// @dev Regression (found by the invariant suite's terminal-states check): settling a piece while an
    /// application still locks part of it let the later reject / withdraw / expire change the
    /// Settled piece. A lapsed application must be expired before the piece is settled.
    function test_RevertWhen_settlePieceWithPendingApplication() public {
        uint256 id = _apply(bank, 4_000_000);
        vm.warp(START + TERM);
        vm.prank(coreA);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimValueLocked.selector, root, 4_000_000));
        ledger.settleClaim(root, keccak256("pay"));
        desk.expireFinancing(id); // anyone may: every application lapses before the due date
        vm.prank(coreA);
        ledger.settleClaim(root, keccak256("pay"));
        assertEq(uint256(_claim(root).status), uint256(IClaimLedger.ClaimStatus.Settled), "settled");
        assertEq(_claim(root).locked, 0, "nothing locked on a settled piece");
    }

    // ---------------------------------------------------------------- the applicant's terms (I-12)

    function _applyCommitted(uint128 amount, uint128 minAdvance, bool recourse) internal returns (uint256 id) {
        vm.prank(supplier1);
        id = desk.applyForFinancing(root, bank, amount, expiry, minAdvance, recourse);
    }

    function test_applyForFinancing_recordsCommittedTerms() public {
        vm.expectEmit(true, true, true, true, address(desk));
        emit IFinancingDesk.FinancingApplied(1, root, supplier1, bank, 4_000_000, expiry, 3_900_000, true);
        uint256 id = _applyCommitted(4_000_000, 3_900_000, true);
        IFinancingDesk.Financing memory f = desk.financing(id);
        assertEq(f.minAdvance, 3_900_000, "min advance");
        assertTrue(f.recourse, "recourse committed");
    }

    function test_RevertWhen_applyMinAdvanceAboveAmount() public {
        vm.prank(supplier1);
        vm.expectRevert(
            abi.encodeWithSelector(IFinancingDesk.FinancingMinAdvanceInvalid.selector, 4_000_001, 4_000_000)
        );
        desk.applyForFinancing(root, bank, 4_000_000, expiry, 4_000_001, false);
    }

    /// @dev The review's reproduction: an advance of 1 fen on 100,000 yuan was accepted.
    function test_RevertWhen_approveBelowMinAdvance() public {
        uint256 id = _applyCommitted(4_000_000, 3_900_000, false);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 0);
        // 60,000 discount + 39,999 fees: advance 3,900,001 passes, one more fee fen does not
        t.fees = 40_001;
        t.advance = 4_000_000 - t.discount - t.fees;
        vm.prank(bank);
        vm.expectRevert(
            abi.encodeWithSelector(IFinancingDesk.FinancingAdvanceBelowMinimum.selector, id, 3_899_999, 3_900_000)
        );
        desk.approveFinancing(id, t);
        t.fees = 40_000;
        t.advance = 4_000_000 - t.discount - t.fees;
        vm.prank(bank);
        desk.approveFinancing(id, t);
        assertEq(desk.financing(id).advance, 3_900_000, "exactly the minimum is accepted");
    }

    function test_RevertWhen_approveWithOtherRecourse() public {
        uint256 id = _applyCommitted(4_000_000, 0, false);
        IFinancingDesk.Terms memory t = _terms(root, 4_000_000, 450, 0);
        t.recourse = true;
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingRecourseMismatch.selector, id, false));
        desk.approveFinancing(id, t);
        uint256 id2 = _applyCommitted(1_000_000, 0, true);
        IFinancingDesk.Terms memory t2 = _terms(root, 1_000_000, 450, 0);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingRecourseMismatch.selector, id2, true));
        desk.approveFinancing(id2, t2);
        t2.recourse = true;
        vm.prank(bank);
        desk.approveFinancing(id2, t2);
        assertTrue(desk.financing(id2).recourse, "with recourse, as committed");
    }

    // ---------------------------------------------------------------- one financing per reference

    function test_RevertWhen_registrationNoReused() public {
        (uint256 first,, IFinancingDesk.Terms memory t) = _financed(1_000_000);
        assertEq(desk.financingOfRegistration(t.registrationNo), first, "backs the first");
        uint256 second = _apply(bank, 1_000_000);
        IFinancingDesk.Terms memory t2 = _terms(root, 1_000_000, 450, 0);
        t2.registrationNo = t.registrationNo;
        vm.prank(bank);
        vm.expectRevert(
            abi.encodeWithSelector(IFinancingDesk.FinancingRegistrationUsed.selector, t.registrationNo, first)
        );
        desk.approveFinancing(second, t2);
    }

    function test_RevertWhen_disbursementRefReused() public {
        (uint256 first,, IFinancingDesk.Terms memory t) = _financed(1_000_000);
        uint256 second = _apply(bank, 1_000_000);
        IFinancingDesk.Terms memory t2 = _terms(root, 1_000_000, 450, 0);
        t2.disbursementRef = t.disbursementRef;
        vm.prank(bank);
        vm.expectRevert(
            abi.encodeWithSelector(IFinancingDesk.FinancingDisbursementUsed.selector, t.disbursementRef, first)
        );
        desk.approveFinancing(second, t2);
        assertEq(desk.financingOfDisbursement(t.disbursementRef), first, "still the first's");
    }

    function test_noDisbursementRefMayRepeat() public {
        for (uint256 i; i < 2; ++i) {
            uint256 id = _apply(bank, 1_000_000);
            IFinancingDesk.Terms memory t = _terms(root, 1_000_000, 450, 0);
            t.disbursementRef = bytes32(0);
            vm.prank(bank);
            desk.approveFinancing(id, t);
        }
    }

    // ---------------------------------------------------------------- over the limit

    function test_setExposureLimit_belowOutstandingSaysOverLimit() public {
        _financed(4_000_000);
        vm.expectEmit(true, true, true, true, address(desk));
        emit IFinancingDesk.ExposureLimitSet(bank, coreA, 3_000_000, 4_000_000, true);
        vm.prank(bank);
        desk.setExposureLimit(coreA, 3_000_000);
        uint256 next = _apply(bank, 1);
        IFinancingDesk.Terms memory t2 = _terms(root, 1, 0, 0);
        vm.prank(bank);
        vm.expectRevert(
            abi.encodeWithSelector(IFinancingDesk.FinancingExposureExceeded.selector, bank, coreA, 4_000_001, 3_000_000)
        );
        desk.approveFinancing(next, t2);
        vm.expectEmit(true, true, true, true, address(desk));
        emit IFinancingDesk.ExposureLimitSet(bank, coreA, 4_000_000, 4_000_000, false);
        vm.prank(bank);
        desk.setExposureLimit(coreA, 4_000_000);
    }

    function test_setProgramLimit_belowOutstandingBlocksIssueUntilBackUnder() public {
        // coreA has FACE outstanding (the payable of setUp)
        vm.expectEmit(true, true, true, true, address(ledger));
        emit IClaimLedger.ProgramLimitSet(coreA, FACE - 1, FACE, true);
        vm.prank(admin);
        ledger.setProgramLimit(coreA, FACE - 1);
        bytes32[] memory inv = new bytes32[](1);
        inv[0] = _invoice(supplier1, coreA, 1);
        vm.prank(coreA);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.PayableObligorOverLimit.selector, coreA, FACE, FACE - 1)
        );
        ledger.issuePayable(supplier1, 1, uint64(START + TERM), inv, address(0));
        // settled back under: it issues again
        vm.warp(START + TERM);
        vm.prank(coreA);
        ledger.settleClaim(root, keccak256("pay"));
        vm.prank(admin);
        ledger.setProgramLimit(coreA, FACE);
        vm.prank(coreA);
        ledger.issuePayable(supplier1, 1, uint64(START + TERM + 1 days), inv, address(0));
    }
}
