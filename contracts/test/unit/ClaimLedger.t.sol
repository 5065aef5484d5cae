// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TierflowBase} from "../utils/TierflowBase.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IInvoiceRegistry} from "../../src/interfaces/IInvoiceRegistry.sol";
import {IMemberRegistry} from "../../src/interfaces/IMemberRegistry.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @notice Lifecycle edges of payables and claim pieces. The exhaustive role and boundary
/// matrices live in the Python suite; these pin the edges the invariant suite relies on.
contract ClaimLedgerTest is TierflowBase {
    uint128 internal constant FACE = 1_000_000;
    uint64 internal constant TERM = 90 days;

    uint256 internal pid;
    uint256 internal root;
    uint64 internal due;

    function setUp() public override {
        super.setUp();
        (pid, root) = _issue(coreA, supplier1, FACE, TERM, agent);
        due = uint64(START) + TERM;
    }

    // ------------------------------------------------------------------ issue

    function test_issuePayable_mintsRootToSupplier() public view {
        IClaimLedger.Payable memory p = ledger.getPayable(pid);
        assertEq(uint256(p.status), uint256(IClaimLedger.PayableStatus.Issued), "status");
        assertEq(p.faceValue, FACE, "face");
        assertEq(p.rootClaimId, root, "root id");
        IClaimLedger.ClaimView memory c = _claim(root);
        assertEq(c.holder, supplier1, "holder");
        assertEq(c.value, FACE, "value");
        assertEq(c.parentId, 0, "root has no parent");
        assertEq(ledger.obligorAccount(coreA).outstanding, FACE, "outstanding booked");
        assertEq(ledger.ownerOf(root), supplier1, "erc721 owner");
        assertEq(ledger.slotOf(root), pid, "slot is the payable");
    }

    function test_RevertWhen_issueExceedsProgramLimit() public {
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = _invoice(supplier1, coreB, CORE_B_LIMIT + 1);
        vm.prank(coreB);
        vm.expectRevert(
            abi.encodeWithSelector(
                IClaimLedger.PayableLimitExceeded.selector, coreB, uint256(CORE_B_LIMIT) + 1, CORE_B_LIMIT
            )
        );
        ledger.issuePayable(supplier1, CORE_B_LIMIT + 1, uint64(START) + TERM, ids, address(0));
    }

    function test_issuePayable_atTermCap() public {
        (uint256 p2,) = _issue(coreA, supplier2, 10, TERM_CAP, address(0));
        assertEq(ledger.getPayable(p2).dueDate, START + TERM_CAP, "due at cap");
    }

    function test_RevertWhen_issueBeyondTermCap() public {
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = _invoice(supplier1, coreA, 10);
        uint64 late = uint64(START) + TERM_CAP + 1;
        vm.prank(coreA);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.PayableDueDateInvalid.selector, late, uint64(START) + TERM_CAP)
        );
        ledger.issuePayable(supplier1, 10, late, ids, address(0));
    }

    function test_RevertWhen_issueFaceAboveInvoices() public {
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = _invoice(supplier1, coreA, 99);
        vm.prank(coreA);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.PayableInvoicesInsufficient.selector, 99, 100));
        ledger.issuePayable(supplier1, 100, uint64(START) + TERM, ids, address(0));
    }

    function test_RevertWhen_invoiceReusedForSecondPayable() public {
        bytes32[] memory ids = ledger.payableInvoices(pid);
        vm.prank(coreA);
        vm.expectRevert(
            abi.encodeWithSelector(
                IInvoiceRegistry.InvoiceStatusInvalid.selector, ids[0], IInvoiceRegistry.InvoiceStatus.Used
            )
        );
        ledger.issuePayable(supplier1, 1, uint64(START) + TERM, ids, address(0));
    }

    // ------------------------------------------------------------------ split and transfer

    function test_split_movesValueToChild() public {
        vm.prank(supplier1);
        uint256 child = ledger.split(root, supplier2, 300_000, bytes32(0));
        IClaimLedger.ClaimView memory c = _claim(child);
        assertEq(c.holder, supplier2, "child holder");
        assertEq(c.value, 300_000, "child value");
        assertEq(c.parentId, root, "lineage");
        assertEq(c.depth, 1, "depth");
        assertEq(_claim(root).value, FACE - 300_000, "parent keeps the rest");
    }

    function test_split_atDueMinusOneSecond() public {
        vm.warp(due - 1);
        vm.prank(supplier1);
        ledger.split(root, supplier2, 1, bytes32(0));
        assertEq(_claim(root).value, FACE - 1, "moved at due - 1");
    }

    function test_RevertWhen_splitAtDueDate() public {
        vm.warp(due);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimPastDueDate.selector, root, due));
        ledger.split(root, supplier2, 1, bytes32(0));
    }

    function test_RevertWhen_splitWholeValue() public {
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimAmountInvalid.selector, uint256(FACE)));
        ledger.split(root, supplier2, FACE, bytes32(0));
    }

    function test_RevertWhen_splitMoreThanValue() public {
        vm.prank(supplier1);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.ClaimAmountExceedsAvailable.selector, root, uint256(FACE) + 1, FACE)
        );
        ledger.split(root, supplier2, uint256(FACE) + 1, bytes32(0));
    }

    function test_RevertWhen_splitZero() public {
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimAmountInvalid.selector, 0));
        ledger.split(root, supplier2, 0, bytes32(0));
    }

    function test_RevertWhen_splitByObligor() public {
        vm.prank(coreA);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, coreA));
        ledger.split(root, supplier2, 1, bytes32(0));
    }

    function test_RevertWhen_splitByOperator() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, admin));
        ledger.split(root, supplier2, 1, bytes32(0));
    }

    function test_RevertWhen_splitToNonMember() public {
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberNotRegistered.selector, outsider));
        ledger.split(root, outsider, 1, bytes32(0));
    }

    function test_RevertWhen_splitToAuditor() public {
        bytes32 supplierRole = members.SUPPLIER_ROLE(); // read before the prank: a call consumes it
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberRoleMissing.selector, auditor, supplierRole));
        ledger.split(root, auditor, 1, bytes32(0));
    }

    function test_RevertWhen_splitWhilePaused() public {
        vm.prank(admin);
        members.pause();
        vm.prank(supplier1);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        ledger.split(root, supplier2, 1, bytes32(0));
        assertEq(_claim(root).value, FACE, "views still answer while paused");
    }

    function test_split_citesTradeInvoice() public {
        bytes32 inv = _invoice(supplier2, supplier1, 500);
        vm.prank(supplier1);
        uint256 child = ledger.split(root, supplier2, 500, inv);
        assertEq(uint256(invoices.invoice(inv).status), uint256(IInvoiceRegistry.InvoiceStatus.Used), "used");
        assertEq(_claim(child).value, 500, "child");
    }

    function test_transferClaim_changesHolder() public {
        vm.prank(supplier1);
        ledger.transferClaim(root, supplier2, bytes32(0));
        assertEq(_claim(root).holder, supplier2, "holder");
        assertEq(ledger.balanceOf(supplier1), 0, "old holder count");
        assertEq(ledger.balanceOf(supplier2), 1, "new holder count");
    }

    function test_RevertWhen_mergeValueIntoAnotherPiece() public {
        vm.expectRevert(IClaimLedger.ClaimMergeUnsupported.selector);
        ledger.transferFrom(root, uint256(2), uint256(1));
    }

    // ------------------------------------------------------------------ freeze

    function test_RevertWhen_splitFrozenPiece() public {
        vm.prank(admin);
        ledger.freezeClaim(root, keccak256("court order 1"));
        assertEq(uint256(_claim(root).status), uint256(IClaimLedger.ClaimStatus.Frozen), "frozen");
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimIsFrozen.selector, root));
        ledger.split(root, supplier2, 1, bytes32(0));
    }

    function test_unfreezeClaim_restoresActive() public {
        vm.startPrank(admin);
        ledger.freezeClaim(root, keccak256("court order 1"));
        ledger.unfreezeClaim(root);
        vm.stopPrank();
        assertEq(uint256(_claim(root).status), uint256(IClaimLedger.ClaimStatus.Active), "active");
    }

    // ------------------------------------------------------------------ cancel

    function test_cancelPayable_releasesLimitAndInvoices() public {
        bytes32[] memory ids = ledger.payableInvoices(pid);
        vm.prank(supplier1);
        ledger.cancelPayable(pid);
        assertEq(uint256(ledger.getPayable(pid).status), uint256(IClaimLedger.PayableStatus.Cancelled), "status");
        assertEq(uint256(_claim(root).status), uint256(IClaimLedger.ClaimStatus.Cancelled), "root cancelled");
        assertEq(ledger.obligorAccount(coreA).outstanding, 0, "limit released");
        assertEq(uint256(invoices.invoice(ids[0]).status), uint256(IInvoiceRegistry.InvoiceStatus.Confirmed), "released");
        assertEq(ledger.balanceOf(supplier1), 0, "burnt");
    }

    function test_RevertWhen_cancelAfterSplit() public {
        vm.startPrank(supplier1);
        ledger.split(root, supplier2, 1, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.PayableNotCancellable.selector, pid));
        ledger.cancelPayable(pid);
        vm.stopPrank();
    }

    function test_RevertWhen_cancelByObligor() public {
        vm.prank(coreA);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, coreA));
        ledger.cancelPayable(pid);
    }

    function test_RevertWhen_cancelTwice() public {
        vm.prank(supplier1);
        ledger.cancelPayable(pid);
        vm.prank(supplier1);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.PayableStatusInvalid.selector, pid, IClaimLedger.PayableStatus.Cancelled)
        );
        ledger.cancelPayable(pid);
    }

    // ------------------------------------------------------------------ settlement

    function test_RevertWhen_settleBeforeDue() public {
        vm.warp(due - 1);
        vm.prank(coreA);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.PayableNotDue.selector, pid, due));
        ledger.settleClaim(root, keccak256("pay"));
    }

    function test_settleClaim_lastPieceSettlesPayable() public {
        vm.prank(supplier1);
        uint256 child = ledger.split(root, supplier2, 400_000, bytes32(0));
        vm.warp(due);
        vm.prank(coreA);
        ledger.settleClaim(child, keccak256("pay-1"));
        assertEq(uint256(ledger.getPayable(pid).status), uint256(IClaimLedger.PayableStatus.Issued), "partly paid");
        vm.prank(agent); // the payable's clearing agent records the rest
        ledger.settleClaim(root, keccak256("pay-2"));
        IClaimLedger.Payable memory p = ledger.getPayable(pid);
        assertEq(uint256(p.status), uint256(IClaimLedger.PayableStatus.Settled), "settled");
        assertEq(p.settledValue, FACE, "all paid");
        assertEq(ledger.obligorAccount(coreA).outstanding, 0, "outstanding cleared");
    }

    function test_RevertWhen_settleTwice() public {
        vm.warp(due);
        vm.startPrank(coreA);
        ledger.settleClaim(root, keccak256("pay"));
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.ClaimNotLive.selector, root, IClaimLedger.ClaimStatus.Settled)
        );
        ledger.settleClaim(root, keccak256("pay"));
        vm.stopPrank();
    }

    function test_RevertWhen_settleByHolder() public {
        vm.warp(due);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.PayableNotSettler.selector, pid, supplier1));
        ledger.settleClaim(root, keccak256("pay"));
    }

    function test_RevertWhen_settleBatchTooLong() public {
        uint256 n = ledger.MAX_SETTLEMENT_BATCH() + 1;
        vm.prank(coreA);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.SettlementBatchInvalid.selector, n, n - 1));
        ledger.settleClaims(new uint256[](n), new bytes32[](n));
    }

    function test_RevertWhen_transferSettledPiece() public {
        vm.warp(due);
        vm.prank(coreA);
        ledger.settleClaim(root, keccak256("pay"));
        vm.prank(supplier1);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.ClaimNotLive.selector, root, IClaimLedger.ClaimStatus.Settled)
        );
        ledger.transferClaim(root, supplier2, bytes32(0));
    }

    // ------------------------------------------------------------------ overdue

    function test_RevertWhen_markOverdueWithinGrace() public {
        vm.warp(due + GRACE);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.PayableNotOverdueYet.selector, pid, uint256(due) + GRACE));
        ledger.markOverdue(pid);
    }

    function test_markOverdue_thirdInWindowSuspendsObligor() public {
        (uint256 p2,) = _issue(coreA, supplier2, 10, TERM, address(0));
        (uint256 p3,) = _issue(coreA, supplier3, 10, TERM, address(0));
        vm.warp(due + GRACE + 1);
        ledger.markOverdue(pid);
        ledger.markOverdue(p2);
        assertEq(uint256(members.member(coreA).status), uint256(IMemberRegistry.MemberStatus.Active), "two: active");
        ledger.markOverdue(p3);
        assertEq(uint256(members.member(coreA).status), uint256(IMemberRegistry.MemberStatus.Suspended), "three");
        // The suspended obligor still pays what it owes.
        vm.prank(coreA);
        ledger.settleClaim(root, keccak256("late pay"));
        assertEq(uint256(ledger.getPayable(pid).status), uint256(IClaimLedger.PayableStatus.Settled), "paid late");
    }
}
