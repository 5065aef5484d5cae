// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TierflowBase} from "../utils/TierflowBase.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IMemberRegistry} from "../../src/interfaces/IMemberRegistry.sol";

/// @notice The overdue clock (SPEC §2, issue 9): it runs from the due date and stands still
/// while the platform is paused or any piece of the payable is frozen; the payable may be marked
/// Overdue once it has run longer than the grace period. Before the fix `markOverdue` accepted
/// due date + grace + 1 whatever had been frozen or paused: the first tests here failed then.
contract OverdueClockTest is TierflowBase {
    uint128 internal constant FACE = 1_000_000;
    uint64 internal constant TERM = 30 days;
    bytes32 internal constant COURT = keccak256("court order");

    uint256 internal pid;
    uint256 internal root;
    uint64 internal due;

    function setUp() public override {
        super.setUp();
        (pid, root) = _issue(coreA, supplier1, FACE, TERM, address(0));
        due = uint64(START) + TERM;
    }

    // ------------------------------------------------------------------ helpers

    function _freeze(uint256 claimId, uint256 at) internal {
        vm.warp(at);
        vm.prank(admin);
        ledger.freezeClaim(claimId, COURT);
    }

    function _unfreeze(uint256 claimId, uint256 at) internal {
        vm.warp(at);
        vm.prank(admin);
        ledger.unfreezeClaim(claimId);
    }

    function _pause(uint256 at) internal {
        vm.warp(at);
        vm.prank(admin);
        members.pause();
    }

    function _unpause(uint256 at) internal {
        vm.warp(at);
        vm.prank(admin);
        members.unpause();
    }

    /// @dev markOverdue is refused at `deadline` (naming it) and accepted one second later.
    function _overdueExactlyAfter(uint256 payableId, uint256 deadline) internal {
        vm.warp(deadline);
        assertEq(ledger.overdueFrom(payableId), deadline, "overdueFrom");
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.PayableNotOverdueYet.selector, payableId, deadline));
        ledger.markOverdue(payableId);
        vm.warp(deadline + 1);
        ledger.markOverdue(payableId);
        assertEq(uint256(ledger.getPayable(payableId).status), uint256(IClaimLedger.PayableStatus.Overdue), "overdue");
    }

    // ------------------------------------------------------------------ freezes

    function test_freezeDuringGrace_extendsTheDeadlineByItsLength() public {
        _freeze(root, due + 1 days);
        _unfreeze(root, due + 3 days);
        assertEq(ledger.payableClock(pid).frozenSeconds, 2 days, "frozen seconds");
        vm.warp(due + GRACE + 1); // accepted before the fix
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.PayableNotOverdueYet.selector, pid, uint256(due) + GRACE + 2 days)
        );
        ledger.markOverdue(pid);
        _overdueExactlyAfter(pid, due + GRACE + 2 days);
    }

    function test_freezeInProgress_stopsTheClockUntilLifted() public {
        _freeze(root, due + 1 days);
        vm.warp(due + GRACE + 90 days);
        // the deadline moves with the clock standing still: always 6 days (grace − 1 day) ahead
        assertEq(ledger.overdueFrom(pid), block.timestamp + GRACE - 1 days, "moving deadline");
        vm.expectRevert(
            abi.encodeWithSelector(
                IClaimLedger.PayableNotOverdueYet.selector, pid, block.timestamp + GRACE - 1 days
            )
        );
        ledger.markOverdue(pid);
        _unfreeze(root, due + GRACE + 90 days);
        _overdueExactlyAfter(pid, due + GRACE + GRACE + 89 days); // frozen GRACE + 89 days
    }

    function test_freezeBeforeTheDueDate_countsOnlyFromTheDueDate() public {
        _freeze(root, due - 10 days); // payment could not be due before the due date anyway
        _unfreeze(root, due + 1 days);
        assertEq(ledger.payableClock(pid).frozenSeconds, 1 days, "only after the due date");
        _overdueExactlyAfter(pid, due + GRACE + 1 days);
    }

    function test_freezeLiftedBeforeTheDueDate_changesNothing() public {
        _freeze(root, due - 10 days);
        _unfreeze(root, due - 1 days);
        _overdueExactlyAfter(pid, due + GRACE);
    }

    function test_freezeAfterTheClockRanOut_doesNotShieldTheObligor() public {
        _freeze(root, due + GRACE + 5 days); // already overdue, merely not marked yet
        vm.warp(due + GRACE + 30 days);
        assertEq(ledger.overdueFrom(pid), uint256(due) + GRACE + 25 days, "clock stopped at the freeze");
        ledger.markOverdue(pid);
        assertEq(uint256(ledger.getPayable(pid).status), uint256(IClaimLedger.PayableStatus.Overdue), "overdue");
    }

    function test_overlappingFreezesOfTwoPieces_stopTheClockWhileEitherLasts() public {
        vm.prank(supplier1);
        uint256 child = ledger.split(root, supplier2, 1_000, bytes32(0));
        _freeze(root, due + 1 days);
        _freeze(child, due + 2 days);
        _unfreeze(root, due + 3 days);
        assertEq(ledger.payableClock(pid).frozenPieces, 1, "one still frozen");
        assertEq(ledger.payableClock(pid).frozenSeconds, 0, "the clock still stands");
        _unfreeze(child, due + 5 days);
        assertEq(ledger.payableClock(pid).frozenSeconds, 4 days, "union of both freezes");
        _freeze(child, due + 6 days); // a second freeze adds its own length
        _unfreeze(child, due + 6 days + 12 hours);
        _overdueExactlyAfter(pid, due + GRACE + 4 days + 12 hours);
    }

    function test_freezesOfAnotherPayable_doNotStopThisClock() public {
        (uint256 other, uint256 otherRoot) = _issue(coreA, supplier2, FACE, TERM, address(0));
        _freeze(otherRoot, due + 1 days);
        _overdueExactlyAfter(pid, due + GRACE);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.PayableNotOverdueYet.selector, other, block.timestamp + GRACE - 1 days)
        );
        ledger.markOverdue(other);
    }

    // ------------------------------------------------------------------ pauses

    function test_pauseDuringGrace_extendsTheDeadlineByItsLength() public {
        _pause(due + 1 days);
        _unpause(due + 3 days);
        assertEq(members.pausedSeconds(due, uint64(block.timestamp)), 2 days, "paused seconds");
        vm.warp(due + GRACE + 1); // accepted before the fix
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.PayableNotOverdueYet.selector, pid, uint256(due) + GRACE + 2 days)
        );
        ledger.markOverdue(pid);
        _overdueExactlyAfter(pid, due + GRACE + 2 days);
    }

    function test_pauseBeforeTheDueDate_countsOnlyFromTheDueDate() public {
        _pause(due - 2 days);
        _unpause(due + 1 days);
        _overdueExactlyAfter(pid, due + GRACE + 1 days);
    }

    function test_pauseInProgress_movesTheDeadline() public {
        _pause(due + GRACE - 1 days);
        vm.warp(due + GRACE + 10 days);
        assertEq(ledger.overdueFrom(pid), uint256(due) + GRACE + 11 days, "grows while paused");
        _unpause(due + GRACE + 10 days);
        _overdueExactlyAfter(pid, due + GRACE + 11 days);
    }

    function test_pauseAndFreezeTogether_areCountedOnce() public {
        _freeze(root, due + 1 days);
        _pause(due + 2 days);
        _unfreeze(root, due + 3 days); // the operator may lift a freeze while paused
        _unpause(due + 4 days);
        assertEq(ledger.payableClock(pid).frozenSeconds, 1 days, "frozen and not paused");
        _pause(due + 5 days);
        _freeze(root, due + 6 days);
        _unpause(due + 7 days);
        _unfreeze(root, due + 8 days);
        // stood still over [1, 4] and [5, 8] days after the due date
        _overdueExactlyAfter(pid, due + GRACE + 6 days);
    }

    function test_pausedSeconds_readsThePauseLog() public {
        uint64 t0 = uint64(START);
        _pause(t0 + 100);
        _unpause(t0 + 150);
        _pause(t0 + 200);
        _unpause(t0 + 200); // a pause lifted in the same second lasted no time
        _pause(t0 + 300);
        vm.warp(t0 + 400); // still paused: counted up to now
        assertEq(members.pausedSeconds(t0, t0 + 400), 150, "all");
        assertEq(members.pausedSeconds(t0 + 120, t0 + 320), 50, "inside two pauses");
        assertEq(members.pausedSeconds(t0 + 150, t0 + 300), 0, "between pauses");
        assertEq(members.pausedSeconds(t0 + 350, t0 + 10_000), 50, "capped at now");
        assertEq(members.pausedSeconds(t0 + 300, t0 + 100), 0, "empty range");
        assertEq(members.pausedSeconds(0, t0 + 100), 0, "before any pause");
    }

    // ------------------------------------------------------------------ suspension

    /// @dev Three payables past due date + grace, one frozen during its grace: the obligor is
    /// not suspended until the third's extended deadline has passed too.
    function test_threeOverdue_suspensionWaitsForTheExtendedDeadline() public {
        (uint256 p2,) = _issue(coreA, supplier2, FACE, TERM, address(0));
        (uint256 p3, uint256 r3) = _issue(coreA, supplier3, FACE, TERM, address(0));
        _freeze(r3, due + 1 days);
        _unfreeze(r3, due + 11 days);
        vm.warp(due + GRACE + 1);
        ledger.markOverdue(pid);
        ledger.markOverdue(p2);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.PayableNotOverdueYet.selector, p3, uint256(due) + GRACE + 10 days)
        );
        ledger.markOverdue(p3);
        assertEq(uint256(members.member(coreA).status), uint256(IMemberRegistry.MemberStatus.Active), "active");
        _overdueExactlyAfter(p3, due + GRACE + 10 days);
        assertEq(uint256(members.member(coreA).status), uint256(IMemberRegistry.MemberStatus.Suspended), "three");
    }

    /// @dev Three payables fall overdue together; the third is marked 200 days later. Keyed on
    /// marking times (before the fix) the slow marking dodged the rule.
    function test_threeOverdue_slowMarkingDoesNotDodgeTheWindow() public {
        (uint256 p2,) = _issue(coreA, supplier2, FACE, TERM, address(0));
        (uint256 p3,) = _issue(coreA, supplier3, FACE, TERM, address(0));
        vm.warp(due + GRACE + 1);
        ledger.markOverdue(pid);
        ledger.markOverdue(p2);
        vm.warp(due + GRACE + 200 days);
        vm.expectEmit(true, true, false, true, address(ledger));
        emit IClaimLedger.PayableOverdue(p3, coreA, FACE, uint64(due + GRACE));
        ledger.markOverdue(p3);
        assertEq(uint256(members.member(coreA).status), uint256(IMemberRegistry.MemberStatus.Suspended), "three");
        IClaimLedger.ObligorAccount memory a = ledger.obligorAccount(coreA);
        assertEq(a.previousOverdueAt, due + GRACE, "previous");
        assertEq(a.lastOverdueAt, due + GRACE, "last");
    }

    /// @dev Three payables fall overdue 100 days apart (200 days from first to third) and are
    /// marked in one go, in any order. Keyed on marking times (before the fix) they suspended.
    function test_threeOverdue_batchedMarkingDoesNotTriggerTheWindow() public {
        (uint256 p2,) = _issue(coreA, supplier2, FACE, TERM + 100 days, address(0));
        (uint256 p3,) = _issue(coreA, supplier3, FACE, TERM + 200 days, address(0));
        (uint256 p4,) = _issue(coreA, supplier1, FACE, TERM + 150 days, address(0));
        vm.warp(due + 200 days + GRACE + 1);
        ledger.markOverdue(p3);
        ledger.markOverdue(pid);
        ledger.markOverdue(p2);
        assertEq(uint256(members.member(coreA).status), uint256(IMemberRegistry.MemberStatus.Active), "active");
        IClaimLedger.ObligorAccount memory a = ledger.obligorAccount(coreA);
        assertEq(a.previousOverdueAt, due + 100 days + GRACE, "the two latest: previous");
        assertEq(a.lastOverdueAt, due + 200 days + GRACE, "the two latest: last");
        // A fourth that fell overdue between the two latest makes three within the window.
        vm.warp(due + 200 days + GRACE + 2);
        ledger.markOverdue(p4);
        assertEq(uint256(members.member(coreA).status), uint256(IMemberRegistry.MemberStatus.Suspended), "three");
    }

    // ------------------------------------------------------------------ fuzz

    /// @dev One freeze and one pause anywhere around the due date: the deadline is due date +
    /// grace + the seconds of their union at or after the due date.
    function testFuzz_freezeAndPause_deadlineExtendsByTheirUnionAfterDue(
        uint32 freezeAt,
        uint32 freezeFor,
        uint32 pauseAt,
        uint32 pauseFor
    ) public {
        uint256 lo = due - 5 days;
        uint256 fa = lo + freezeAt % 20 days;
        uint256 fb = fa + freezeFor % 10 days;
        uint256 pa = lo + pauseAt % 20 days;
        uint256 pb = pa + pauseFor % 10 days;
        // replay the four actions in time order (a tie: freeze before pause, start before end)
        uint256[4] memory at = [fa, pa, fb, pb];
        uint8[4] memory order = [0, 1, 2, 3];
        for (uint256 i = 1; i < 4; ++i) {
            for (uint256 j = i; j > 0 && at[order[j]] < at[order[j - 1]]; --j) {
                (order[j], order[j - 1]) = (order[j - 1], order[j]);
            }
        }
        for (uint256 i; i < 4; ++i) {
            uint8 k = order[i];
            if (k == 0) _freeze(root, at[k]);
            else if (k == 1) _pause(at[k]);
            else if (k == 2) _unfreeze(root, at[k]);
            else _unpause(at[k]);
        }
        uint256 stood = _overlap(fa, fb) + _overlap(pa, pb) - _overlapBoth(fa, fb, pa, pb);
        uint256 deadline = due + GRACE + stood;
        vm.warp(deadline > block.timestamp ? deadline : block.timestamp);
        assertEq(ledger.overdueFrom(pid), deadline, "deadline");
    }

    function _overlap(uint256 a, uint256 b) private view returns (uint256) {
        a = a > due ? a : due;
        return b > a ? b - a : 0;
    }

    function _overlapBoth(uint256 a, uint256 b, uint256 c, uint256 d) private view returns (uint256) {
        return _overlap(a > c ? a : c, b < d ? b : d);
    }
}
