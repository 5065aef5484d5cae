// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TierflowBase} from "../utils/TierflowBase.sol";
import {AdminTimelock} from "../../src/AdminTimelock.sol";
import {MemberRegistry} from "../../src/MemberRegistry.sol";
import {Platform} from "../../src/Platform.sol";
import {IMemberRegistry} from "../../src/interfaces/IMemberRegistry.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @notice An auditor holds no business role, however roles are granted; role grants are the
/// AdminTimelock's (scheduled by a proposer, executed after the delay), not the operator's.
contract AdminAndAuditorTest is TierflowBase {
    function test_RevertWhen_registeringAnAuditorWithABusinessRole() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberAuditorExclusive.selector, outsider));
        members.registerMember(outsider, R_AUDITOR | R_SUPPLIER, uint64(START + 1 days));
    }

    function test_RevertWhen_grantingABusinessRoleToAnAuditor() public {
        bytes32 supplierRole = members.SUPPLIER_ROLE();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberAuditorExclusive.selector, auditor));
        members.grantRole(supplierRole, auditor);
    }

    function test_RevertWhen_grantingTheAuditorRoleToABusinessMember() public {
        bytes32 auditorRole = members.AUDITOR_ROLE();
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberAuditorExclusive.selector, supplier1));
        members.grantRole(auditorRole, supplier1);
    }

    function test_RevertWhen_grantingAMemberRoleToANonMember() public {
        bytes32 supplierRole = members.SUPPLIER_ROLE();
        bytes32 auditorRole = members.AUDITOR_ROLE();
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberNotRegistered.selector, outsider));
        members.grantRole(supplierRole, outsider);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberNotRegistered.selector, outsider));
        members.grantRole(auditorRole, outsider);
        vm.stopPrank();
        assertEq(members.rolesOf(outsider), 0, "no role without registration");
    }

    function test_anAuditorAloneAndAnotherAuditorGrantAreFine() public {
        bytes32 auditorRole = members.AUDITOR_ROLE();
        vm.startPrank(admin);
        members.registerMember(outsider, R_AUDITOR, uint64(START + 1 days));
        members.grantRole(auditorRole, outsider); // already held: no business role involved
        vm.stopPrank();
        assertEq(members.rolesOf(outsider), R_AUDITOR, "auditor only");
    }

    function test_theTimelockGrantsRolesAndTheOperatorCannot() public {
        address proposer = _actor("proposer");
        address executor = _actor("executor");
        address operator = _actor("operator");
        address newOperator = _actor("new operator");
        address[] memory proposers = new address[](1);
        proposers[0] = proposer;
        address[] memory executors = new address[](1);
        executors[0] = executor;
        AdminTimelock timelock = new AdminTimelock(1 days, proposers, executors);
        Platform memory platform = Platform({
            forwarder: address(forwarder),
            members: _createAddress(address(this), vm.getNonce(address(this))),
            invoices: address(invoices),
            ledger: address(ledger),
            desk: address(desk)
        });
        MemberRegistry registry = new MemberRegistry(ADMIN_DELAY, address(timelock), operator, platform);
        bytes32 operatorRole = registry.OPERATOR_ROLE();
        bytes32 adminRole = registry.DEFAULT_ADMIN_ROLE();
        assertEq(registry.defaultAdmin(), address(timelock), "the timelock is the default admin");
        assertTrue(registry.hasRole(operatorRole, operator), "operator");
        assertTrue(!registry.hasRole(adminRole, operator), "the operator is no admin");

        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, operator, adminRole)
        );
        registry.grantRole(operatorRole, newOperator);

        bytes memory grant = abi.encodeCall(IAccessControl.grantRole, (operatorRole, newOperator));
        vm.prank(operator);
        vm.expectRevert(); // the operator cannot schedule either
        timelock.schedule(address(registry), 0, grant, bytes32(0), bytes32(0), 1 days);

        vm.prank(proposer);
        timelock.schedule(address(registry), 0, grant, bytes32(0), bytes32(0), 1 days);
        bytes32 id = timelock.hashOperation(address(registry), 0, grant, bytes32(0), bytes32(0));
        vm.prank(executor);
        vm.expectRevert(
            abi.encodeWithSelector(
                TimelockController.TimelockUnexpectedOperationState.selector,
                id,
                bytes32(1 << uint8(TimelockController.OperationState.Ready))
            )
        );
        timelock.execute(address(registry), 0, grant, bytes32(0), bytes32(0));

        vm.warp(block.timestamp + 1 days);
        vm.prank(executor);
        timelock.execute(address(registry), 0, grant, bytes32(0), bytes32(0));
        assertTrue(registry.hasRole(operatorRole, newOperator), "granted after the delay");
        assertTrue(timelock.isOperationDone(id), "done");
    }
}
