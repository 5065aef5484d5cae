// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TestBase} from "../utils/TestBase.sol";
import {AuditAnchor} from "../../src/AuditAnchor.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @notice AuditAnchor: only the anchoring account anchors, anchors are stored and read back,
/// and they never go back in sequence.
contract AuditAnchorTest is TestBase {
    address internal constant ADMIN = address(0xA0);
    address internal constant ANCHORER = address(0xA1);
    address internal constant OUTSIDER = address(0xB0);
    bytes32 internal constant HEAD1 = keccak256("head 1");
    bytes32 internal constant HEAD2 = keccak256("head 2");

    AuditAnchor internal anchors;

    function setUp() public {
        vm.warp(1_800_000_000);
        anchors = new AuditAnchor(ADMIN, ANCHORER);
    }

    function test_anchorIsStoredAndReadBack() public {
        vm.prank(ANCHORER);
        assertEq(anchors.anchor(5, HEAD1, 5), 0, "first index");
        vm.warp(1_800_000_060);
        vm.prank(ANCHORER);
        assertEq(anchors.anchor(9, HEAD2, 9), 1, "second index");
        assertEq(anchors.anchorCount(), 2, "two anchors");
        AuditAnchor.Anchor memory first = anchors.anchorAt(0);
        assertEq(first.seq, 5, "seq");
        assertEq(first.count, 5, "count");
        assertEq(first.head, HEAD1, "head");
        assertEq(first.at, 1_800_000_000, "at");
        AuditAnchor.Anchor memory last = anchors.latest();
        assertEq(last.seq, 9, "latest seq");
        assertEq(last.head, HEAD2, "latest head");
        AuditAnchor.Anchor[] memory page = anchors.anchors(1, 10);
        assertEq(page.length, 1, "page from 1");
        assertEq(page[0].head, HEAD2, "page head");
        assertEq(anchors.anchors(0, 1).length, 1, "page of one");
        assertEq(anchors.anchors(5, 10).length, 0, "past the end");
    }

    function test_anchorEmitsLogAnchored() public {
        vm.expectEmit(true, true, false, true, address(anchors));
        emit AuditAnchor.LogAnchored(0, 3, HEAD1, 3, 1_800_000_000);
        vm.prank(ANCHORER);
        anchors.anchor(3, HEAD1, 3);
    }

    function test_latestIsZeroWithoutAnchors() public view {
        AuditAnchor.Anchor memory last = anchors.latest();
        assertEq(last.seq, 0, "no anchor");
        assertEq(last.head, bytes32(0), "no head");
    }

    function test_RevertWhen_anchorGoesBack() public {
        vm.prank(ANCHORER);
        anchors.anchor(10, HEAD1, 10);
        vm.prank(ANCHORER);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AnchorNotAfterLast.selector, uint64(10), uint64(10)));
        anchors.anchor(10, HEAD2, 10);
        vm.prank(ANCHORER);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AnchorNotAfterLast.selector, uint64(4), uint64(10)));
        anchors.anchor(4, HEAD2, 4);
    }

    function test_RevertWhen_anchorIsInvalid() public {
        vm.startPrank(ANCHORER);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AnchorInvalid.selector, uint64(0), uint64(0)));
        anchors.anchor(0, HEAD1, 0);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AnchorInvalid.selector, uint64(3), uint64(4)));
        anchors.anchor(3, HEAD1, 4);
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AnchorInvalid.selector, uint64(3), uint64(3)));
        anchors.anchor(3, bytes32(0), 3);
        vm.stopPrank();
    }

    function test_RevertWhen_notTheAnchorer() public {
        bytes32 role = anchors.ANCHORER_ROLE();
        vm.prank(OUTSIDER);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, OUTSIDER, role)
        );
        anchors.anchor(1, HEAD1, 1);
        vm.prank(ADMIN); // the admin grants the role, it does not anchor itself
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, ADMIN, role));
        anchors.anchor(1, HEAD1, 1);
    }

    function test_RevertWhen_anchorAtMissing() public {
        vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AnchorNotFound.selector, uint256(0)));
        anchors.anchorAt(0);
    }

    function test_RevertWhen_zeroAddress() public {
        vm.expectRevert(AuditAnchor.ZeroAddress.selector);
        new AuditAnchor(address(0), ANCHORER);
    }

    function testFuzz_anchorsOnlyMoveForward(uint64 a, uint64 b) public {
        a = uint64(bound(a, 1, type(uint64).max));
        b = uint64(bound(b, 1, type(uint64).max));
        vm.prank(ANCHORER);
        anchors.anchor(a, HEAD1, a);
        vm.prank(ANCHORER);
        if (b <= a) {
            vm.expectRevert(abi.encodeWithSelector(AuditAnchor.AnchorNotAfterLast.selector, b, a));
        }
        anchors.anchor(b, HEAD2, b);
        assertEq(anchors.latest().seq, b > a ? b : a, "the latest is the highest");
    }
}
