// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TierflowBase} from "../utils/TierflowBase.sol";
import {IInvoiceRegistry} from "../../src/interfaces/IInvoiceRegistry.sol";
import {IMemberRegistry} from "../../src/interfaces/IMemberRegistry.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @notice Member and invoice registry edges the ledger depends on.
contract RegistriesTest is TierflowBase {
    function test_registerMember_grantsRolesFromMask() public view {
        assertEq(members.rolesOf(traderBank), R_SUPPLIER | R_FINANCIER, "supplier + financier");
        assertEq(members.rolesOf(admin), R_OPERATOR, "admin is an operator");
        assertTrue(members.isActive(coreA), "active");
    }

    function test_RevertWhen_registerMemberWithOperatorBit() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberRolesInvalid.selector, R_OPERATOR | R_SUPPLIER));
        members.registerMember(outsider, R_OPERATOR | R_SUPPLIER, uint64(START + 1 days));
    }

    function test_RevertWhen_registerMemberByNonOperator() public {
        bytes32 operatorRole = members.OPERATOR_ROLE(); // read before the prank: a call consumes it
        vm.prank(coreA);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, coreA, operatorRole)
        );
        members.registerMember(outsider, R_SUPPLIER, uint64(START + 1 days));
    }

    function test_RevertWhen_kycExpiredBlocksIssue() public {
        vm.prank(admin);
        members.registerMember(outsider, R_CORE, uint64(START + 1 days));
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = _invoice(supplier1, outsider, 100);
        vm.prank(admin);
        ledger.setProgramLimit(outsider, 1_000);
        vm.warp(START + 1 days);
        vm.prank(outsider);
        vm.expectRevert(
            abi.encodeWithSelector(IMemberRegistry.MemberKycExpired.selector, outsider, uint64(START + 1 days))
        );
        ledger.issuePayable(supplier1, 100, uint64(START + 30 days), ids, address(0));
    }

    function test_RevertWhen_invoiceFingerprintReused() public {
        bytes32 id = _invoice(supplier1, coreA, 100);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IInvoiceRegistry.InvoiceAlreadyRegistered.selector, id));
        invoices.registerInvoice(id, coreA, 100, uint64(START), keccak256("another document"));
    }

    function test_RevertWhen_invoiceDocumentReusedAfterVoid() public {
        bytes32 doc = keccak256("doc");
        vm.startPrank(supplier1);
        invoices.registerInvoice(keccak256("a"), coreA, 100, uint64(START), doc);
        invoices.voidInvoice(keccak256("a"));
        vm.expectRevert(abi.encodeWithSelector(IInvoiceRegistry.InvoiceDocumentAlreadyRegistered.selector, doc));
        invoices.registerInvoice(keccak256("b"), coreA, 100, uint64(START), doc);
        vm.stopPrank();
    }

    function test_RevertWhen_confirmByNonBuyer() public {
        vm.prank(supplier1);
        invoices.registerInvoice(keccak256("a"), coreA, 100, uint64(START), keccak256("doc"));
        vm.prank(coreB);
        vm.expectRevert(abi.encodeWithSelector(IInvoiceRegistry.InvoiceNotBuyer.selector, keccak256("a"), coreB));
        invoices.confirmInvoice(keccak256("a"));
    }

    function test_RevertWhen_useForPayableByNonLedger() public {
        bytes32[] memory ids = new bytes32[](0);
        vm.prank(coreA);
        vm.expectRevert(abi.encodeWithSelector(IInvoiceRegistry.InvoiceCallerNotLedger.selector, coreA));
        invoices.useForPayable(ids, supplier1, coreA, 1);
    }
}
