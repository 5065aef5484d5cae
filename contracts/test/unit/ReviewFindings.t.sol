// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TierflowBase} from "../utils/TierflowBase.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IFinancingDesk} from "../../src/interfaces/IFinancingDesk.sol";
import {IInvoiceRegistry} from "../../src/interfaces/IInvoiceRegistry.sol";
import {IMemberRegistry} from "../../src/interfaces/IMemberRegistry.sol";

/// @notice Review findings (issue 9): invoice release and the settler's standing. Each test
/// reproduces a finding that the contracts accepted before the fix.
contract ReviewFindingsTest is TierflowBase {
    uint128 internal constant FACE = 1_000_000;
    bytes32 internal constant PAY = keccak256("bank-payment-1");

    // ------------------------------------------------------------------ releaseInvoices

    function test_RevertWhen_releaseVoidedInvoice() public {
        bytes32 id = _invoice(supplier1, coreA, FACE);
        vm.prank(supplier1);
        invoices.voidInvoice(id);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = id;
        vm.prank(address(ledger)); // even the ledger itself cannot revive a voided invoice
        vm.expectRevert(abi.encodeWithSelector(IInvoiceRegistry.InvoiceNotUsedByPayable.selector, id, 1));
        invoices.releaseInvoices(ids, 1);
    }

    function test_RevertWhen_releaseInvoiceOfAnotherPayable() public {
        (uint256 p1,) = _issue(coreA, supplier1, FACE, 30 days, address(0));
        (uint256 p2,) = _issue(coreA, supplier1, FACE, 30 days, address(0));
        bytes32[] memory ofP1 = ledger.payableInvoices(p1);
        vm.prank(address(ledger));
        vm.expectRevert(abi.encodeWithSelector(IInvoiceRegistry.InvoiceNotUsedByPayable.selector, ofP1[0], p2));
        invoices.releaseInvoices(ofP1, p2);
        assertEq(uint256(invoices.invoice(ofP1[0]).status), uint256(IInvoiceRegistry.InvoiceStatus.Used), "still used");
    }

    function test_RevertWhen_releaseInvoiceUsedByTransfer() public {
        (, uint256 root) = _issue(coreA, supplier1, FACE, 30 days, address(0));
        bytes32 trade = _invoice(supplier2, supplier1, FACE);
        vm.prank(supplier1);
        ledger.split(root, supplier2, 1_000, trade);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = trade;
        vm.prank(address(ledger));
        vm.expectRevert(abi.encodeWithSelector(IInvoiceRegistry.InvoiceNotUsedByPayable.selector, trade, 0));
        invoices.releaseInvoices(ids, 0);
    }

    function test_cancelPayable_releasesOnlyItsOwnInvoices() public {
        (uint256 pid,) = _issue(coreA, supplier1, FACE, 30 days, address(0));
        bytes32 id = ledger.payableInvoices(pid)[0];
        assertEq(invoices.invoice(id).payableId, pid, "backs the payable");
        vm.prank(supplier1);
        ledger.cancelPayable(pid);
        IInvoiceRegistry.Invoice memory inv = invoices.invoice(id);
        assertEq(uint256(inv.status), uint256(IInvoiceRegistry.InvoiceStatus.Confirmed), "confirmed again");
        assertEq(inv.payableId, 0, "backs nothing");
        // ... and backs exactly one new payable.
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = id;
        vm.prank(coreA);
        ledger.issuePayable(supplier1, FACE, uint64(START + 30 days), ids, address(0));
        vm.prank(coreA);
        vm.expectRevert(
            abi.encodeWithSelector(
                IInvoiceRegistry.InvoiceStatusInvalid.selector, id, IInvoiceRegistry.InvoiceStatus.Used
            )
        );
        ledger.issuePayable(supplier1, FACE, uint64(START + 30 days), ids, address(0));
    }

    // ------------------------------------------------------------------ the settler

    function test_RevertWhen_suspendedClearingAgentSettles() public {
        (uint256 pid, uint256 root) = _issue(coreA, supplier1, FACE, 30 days, agent);
        vm.warp(START + 30 days);
        vm.prank(admin);
        members.suspendMember(agent, keccak256("fraud"));
        vm.prank(agent);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberNotActive.selector, agent));
        ledger.settleClaim(root, PAY);
        // The obligor still pays its debt.
        vm.prank(coreA);
        ledger.settleClaim(root, PAY);
        assertEq(uint256(ledger.getPayable(pid).status), uint256(IClaimLedger.PayableStatus.Settled), "settled");
    }

    function test_RevertWhen_clearingAgentLostItsRoleSettles() public {
        (, uint256 root) = _issue(coreA, supplier1, FACE, 30 days, agent);
        vm.warp(START + 30 days);
        bytes32 role = members.CLEARING_AGENT_ROLE();
        vm.prank(admin);
        members.revokeRole(role, agent);
        vm.prank(agent);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberRoleMissing.selector, agent, role));
        ledger.settleClaim(root, PAY);
    }

    function test_RevertWhen_supplierNamedClearingAgent() public {
        address both = _actor("supplierAndAgent");
        vm.prank(admin);
        members.registerMember(both, R_SUPPLIER | R_AGENT, uint64(START + 365 days));
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = _invoice(both, coreA, FACE);
        vm.prank(coreA);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.PayableClearingAgentInvalid.selector, both));
        ledger.issuePayable(both, FACE, uint64(START + 30 days), ids, both);
    }

    /// @dev `bank` is financier and clearing agent: it finances 500,000 of the payable it clears.
    function _bankHoldsFinancedPiece() internal returns (uint256 pid, uint256 root, uint256 financed) {
        (pid, root) = _issue(coreA, supplier1, FACE, 30 days, bank);
        vm.prank(supplier1);
        uint256 id = desk.applyForFinancing(root, bank, 500_000, uint64(START + 7 days), 0, false);
        IFinancingDesk.Terms memory t = _terms(root, 500_000, 450, 0);
        vm.prank(bank);
        financed = desk.approveFinancing(id, t);
        assertEq(_claim(financed).holder, bank, "the agent holds the piece");
    }

    function test_RevertWhen_clearingAgentSettlesPieceItHolds() public {
        (uint256 pid,, uint256 financed) = _bankHoldsFinancedPiece();
        vm.warp(START + 30 days);
        uint128 outstandingBefore = ledger.obligorAccount(coreA).outstanding;
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimSettlerIsHolder.selector, financed, bank));
        ledger.settleClaim(financed, PAY);
        // Nothing cleared on the agent's own word: its exposure and the obligor's limit stay used.
        (uint128 exposureNow,) = desk.exposure(bank, coreA);
        assertEq(exposureNow, 500_000, "exposure kept");
        assertEq(ledger.obligorAccount(coreA).outstanding, outstandingBefore, "limit kept");
        // The obligor records it (it pays the bank).
        vm.prank(coreA);
        ledger.settleClaim(financed, PAY);
        (exposureNow,) = desk.exposure(bank, coreA);
        assertEq(exposureNow, 0, "exposure released by the obligor's settlement");
        assertEq(uint256(ledger.getPayable(pid).status), uint256(IClaimLedger.PayableStatus.Issued), "rest unpaid");
    }

    function test_RevertWhen_clearingAgentBatchIncludesPieceItHolds() public {
        (uint256 pid, uint256 root, uint256 financed) = _bankHoldsFinancedPiece();
        vm.warp(START + 30 days);
        uint256[] memory ids = new uint256[](2);
        ids[0] = root; // supplier1's: the agent may record it
        ids[1] = financed; // its own: refused, and the whole batch with it
        bytes32[] memory refs = new bytes32[](2);
        refs[0] = PAY;
        refs[1] = keccak256("bank-payment-2");
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimSettlerIsHolder.selector, financed, bank));
        ledger.settleClaims(ids, refs);
        assertEq(uint256(_claim(root).status), uint256(IClaimLedger.ClaimStatus.Active), "all or nothing");
        // The agent still records the pieces others hold.
        vm.prank(bank);
        ledger.settleClaim(root, PAY);
        assertEq(ledger.getPayable(pid).settledValue, FACE - 500_000, "supplier's piece settled");
    }
}
