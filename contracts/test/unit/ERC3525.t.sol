// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {TierflowBase} from "../utils/TierflowBase.sol";
import {ReceiverMock, PlainContract} from "../mocks/Receivers.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IERC3525} from "../../src/interfaces/IERC3525.sol";
import {IERC3525Metadata} from "../../src/interfaces/IERC3525Metadata.sol";
import {IMemberRegistry} from "../../src/interfaces/IMemberRegistry.sol";

/// @notice The standards' behaviour for every interface ClaimLedger claims (ERC-165, ERC-721,
/// ERC-721 metadata, ERC-3525, ERC-3525 metadata), after the cases of the ERC-3525 reference
/// implementation's tests (solv-finance/erc-3525 test/ERC3525.behavior.js, ERC721.behavior.js)
/// where they apply, and the platform's documented deviations (docs/erc3525.md).
contract ERC3525Test is TierflowBase {
    uint128 internal constant FACE = 1_000_000;
    uint64 internal constant TERM = 90 days;

    uint256 internal pid;
    uint256 internal root;
    ReceiverMock internal receiver;
    PlainContract internal plain;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);
    event TransferValue(uint256 indexed _fromTokenId, uint256 indexed _toTokenId, uint256 _value);
    event ApprovalValue(uint256 indexed _tokenId, address indexed _operator, uint256 _value);
    event SlotChanged(uint256 indexed _tokenId, uint256 indexed _oldSlot, uint256 indexed _newSlot);

    function setUp() public override {
        super.setUp();
        (pid, root) = _issue(coreA, supplier1, FACE, TERM, address(0));
        receiver = new ReceiverMock();
        plain = new PlainContract();
        vm.startPrank(admin);
        uint64 kyc = uint64(START + 10 * 365 days);
        members.registerMember(address(receiver), R_SUPPLIER, kyc);
        members.registerMember(address(plain), R_SUPPLIER, kyc);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ ERC-165

    function test_supportsInterface_claimsExactlyWhatItImplements() public view {
        assertTrue(ledger.supportsInterface(0x01ffc9a7), "ERC-165");
        assertTrue(ledger.supportsInterface(0x80ac58cd), "ERC-721");
        assertTrue(ledger.supportsInterface(0x5b5e139f), "ERC-721 metadata");
        assertTrue(ledger.supportsInterface(0xd5358140), "ERC-3525");
        assertTrue(ledger.supportsInterface(0xe1600902), "ERC-3525 metadata");
        assertEq(type(IERC3525).interfaceId, bytes4(0xd5358140), "our IERC3525 id is the EIP's");
        assertEq(type(IERC3525Metadata).interfaceId, bytes4(0xe1600902), "our metadata id is the EIP's");
        assertTrue(!ledger.supportsInterface(0x780e9d63), "not ERC-721 enumerable (nothing enumerated, I-9)");
        assertTrue(!ledger.supportsInterface(0x3b1d4ba4), "not ERC-3525 slot-enumerable");
        assertTrue(!ledger.supportsInterface(0xffffffff), "ERC-165: 0xffffffff is never supported");
    }

    // ------------------------------------------------------------------ ERC-721 / 3525 views

    function test_views_answerForLivePiecesAndRevertForUnknownOnes() public {
        assertEq(ledger.valueDecimals(), 2, "valueDecimals from the deployment (CNY)");
        assertEq(ledger.balanceOf(supplier1), 1, "pieces held");
        assertEq(ledger.balanceOf(root), FACE, "value");
        assertEq(ledger.slotOf(root), pid, "slot");
        assertEq(ledger.ownerOf(root), supplier1, "owner");
        assertEq(ledger.getApproved(root), address(0), "no approval yet");
        assertEq(ledger.allowance(root, supplier2), 0, "no allowance yet");
        uint256 unknown = root + 1_000;
        bytes memory notFound = abi.encodeWithSelector(IClaimLedger.ClaimNotFound.selector, unknown);
        vm.expectRevert(notFound);
        ledger.ownerOf(unknown);
        vm.expectRevert(notFound);
        ledger.balanceOf(unknown);
        vm.expectRevert(notFound);
        ledger.slotOf(unknown);
        vm.expectRevert(notFound);
        ledger.getApproved(unknown);
        vm.expectRevert(notFound);
        ledger.allowance(unknown, supplier2);
        vm.expectRevert(notFound);
        ledger.tokenURI(unknown);
        vm.expectRevert(IClaimLedger.ClaimOwnerZero.selector);
        ledger.balanceOf(address(0));
    }

    // ------------------------------------------------------------------ ERC-3525 approve / allowance

    function test_approveValue_byOwnerSetsAllowanceAndEmits() public {
        vm.expectEmit(true, true, false, true, address(ledger));
        emit ApprovalValue(root, supplier2, 5_000);
        vm.prank(supplier1);
        ledger.approve(root, supplier2, 5_000);
        assertEq(ledger.allowance(root, supplier2), 5_000, "allowance");
        // approving again replaces it
        vm.prank(supplier1);
        ledger.approve(root, supplier2, 7);
        assertEq(ledger.allowance(root, supplier2), 7, "replaced");
    }

    function test_approveValue_byApprovedForAllOperatorOrApprovedAddress() public {
        vm.prank(supplier1);
        ledger.setApprovalForAll(bank, true);
        vm.prank(bank);
        ledger.approve(root, supplier2, 10);
        assertEq(ledger.allowance(root, supplier2), 10, "operator for all may approve value");
        vm.prank(supplier1);
        ledger.approve(factor, root);
        vm.prank(factor);
        ledger.approve(root, supplier3, 11);
        assertEq(ledger.allowance(root, supplier3), 11, "the approved address may approve value");
    }

    function test_RevertWhen_approveValueByOthersOrToZeroOrOwner() public {
        vm.prank(supplier2);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, supplier2));
        ledger.approve(root, supplier2, 1);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimOperatorInvalid.selector, address(0)));
        ledger.approve(root, address(0), 1);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimOperatorInvalid.selector, supplier1));
        ledger.approve(root, supplier1, 1);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotFound.selector, root + 99));
        ledger.approve(root + 99, supplier2, 1);
    }

    function test_RevertWhen_approvingWhilePaused() public {
        vm.prank(admin);
        members.pause();
        vm.prank(supplier1);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        ledger.approve(root, supplier2, 1);
        vm.prank(supplier1);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        ledger.approve(supplier2, root);
        vm.prank(supplier1);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        ledger.setApprovalForAll(supplier2, true);
    }

    // ------------------------------------------------------------------ ERC-3525 transferFrom(id, to, v)

    function test_transferValueToAddress_byOwnerMintsANewTokenInTheSlot() public {
        vm.expectEmit(true, true, true, true, address(ledger));
        emit Transfer(address(0), supplier2, root + 1);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit SlotChanged(root + 1, 0, pid);
        vm.expectEmit(true, true, false, true, address(ledger));
        emit TransferValue(root, root + 1, 300);
        vm.prank(supplier1);
        uint256 child = ledger.transferFrom(root, supplier2, 300);
        assertEq(child, root + 1, "new token id");
        assertEq(ledger.ownerOf(child), supplier2, "new owner");
        assertEq(ledger.slotOf(child), pid, "same slot");
        assertEq(ledger.balanceOf(child), 300, "value moved");
        assertEq(ledger.balanceOf(root), FACE - 300, "value left");
    }

    function test_transferValueToAddress_byAllowanceSpendsIt() public {
        vm.prank(supplier1);
        ledger.approve(root, bank, 1_000);
        vm.expectEmit(true, true, false, true, address(ledger));
        emit ApprovalValue(root, bank, 400);
        vm.prank(bank);
        uint256 child = ledger.transferFrom(root, supplier2, 600);
        assertEq(ledger.ownerOf(child), supplier2, "recipient holds the new piece");
        assertEq(ledger.allowance(root, bank), 400, "allowance spent");
        IClaimLedger.ClaimView memory c = ledger.claim(child);
        assertEq(c.parentId, root, "lineage kept");
        vm.prank(bank);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.ClaimAllowanceExceeded.selector, root, bank, 400, 401)
        );
        ledger.transferFrom(root, supplier2, 401);
    }

    function test_transferValueToAddress_unlimitedAllowanceIsNotSpent() public {
        vm.prank(supplier1);
        ledger.approve(root, bank, type(uint256).max);
        vm.prank(bank);
        ledger.transferFrom(root, supplier2, 600);
        assertEq(ledger.allowance(root, bank), type(uint256).max, "unlimited stays");
    }

    function test_transferValueToAddress_byOperatorsOfTheToken() public {
        vm.prank(supplier1);
        ledger.setApprovalForAll(bank, true);
        vm.prank(bank);
        ledger.transferFrom(root, supplier2, 10);
        vm.prank(supplier1);
        ledger.approve(factor, root);
        vm.prank(factor);
        ledger.transferFrom(root, supplier3, 10);
        assertEq(ledger.balanceOf(root), FACE - 20, "both moved value");
    }

    function test_RevertWhen_transferValueWithoutApprovalOrByNonMemberOperator() public {
        vm.prank(supplier2);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, supplier2));
        ledger.transferFrom(root, supplier3, 1);
        // an operator must be an active member (the outsider is not registered)
        vm.prank(supplier1);
        ledger.approve(root, outsider, 100);
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberNotRegistered.selector, outsider));
        ledger.transferFrom(root, supplier3, 1);
    }

    /// @dev Approval is the holder's consent to the operator acting, not a waiver of the rules:
    /// frozen pieces, non-member recipients and locked value stay refused.
    function test_RevertWhen_operatorMovesWhatTheHolderCouldNot() public {
        vm.prank(supplier1);
        ledger.approve(root, bank, type(uint256).max);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberNotRegistered.selector, outsider));
        ledger.transferFrom(root, outsider, 1);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberRoleMissing.selector, coreB, _supplierRole()));
        ledger.transferFrom(root, coreB, 1);
        vm.prank(admin);
        ledger.freezeClaim(root, keccak256("court"));
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimIsFrozen.selector, root));
        ledger.transferFrom(root, supplier2, 1);
    }

    function test_RevertWhen_operatorUsesThePlatformsOwnEntryPoints() public {
        vm.prank(supplier1);
        ledger.setApprovalForAll(bank, true);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, bank));
        ledger.split(root, supplier2, 1, bytes32(0));
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, bank));
        ledger.transferClaim(root, supplier2, bytes32(0));
    }

    function test_transferValueToAddress_wholeValuePassesThePieceItself() public {
        uint256 child = _split(root, supplier2, 500);
        vm.prank(supplier2);
        uint256 got = ledger.transferFrom(child, supplier3, 500);
        assertEq(got, child, "the piece itself, not a zero-value leftover (I-1)");
        assertEq(ledger.ownerOf(child), supplier3, "passed whole");
        assertEq(ledger.balanceOf(child), 500, "value unchanged");
    }

    function test_RevertWhen_transferZeroValueOrMore() public {
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimAmountInvalid.selector, 0));
        ledger.transferFrom(root, supplier2, 0);
        vm.prank(supplier1);
        vm.expectRevert(
            abi.encodeWithSelector(IClaimLedger.ClaimAmountExceedsAvailable.selector, root, FACE + 1, FACE)
        );
        ledger.transferFrom(root, supplier2, FACE + 1);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimRecipientInvalid.selector, address(0)));
        ledger.transferFrom(root, address(0), 1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotFound.selector, 0));
        ledger.transferFrom(0, supplier2, 1);
    }

    function test_RevertWhen_transferValueBetweenTokens() public {
        uint256 child = _split(root, supplier2, 500);
        vm.prank(supplier1);
        vm.expectRevert(IClaimLedger.ClaimMergeUnsupported.selector);
        ledger.transferFrom(root, child, 1);
    }

    // ------------------------------------------------------------------ ERC-3525 receiver

    function test_receiver_isToldOfValueItReceives() public {
        vm.prank(supplier1);
        uint256 child = ledger.transferFrom(root, address(receiver), 250);
        assertEq(receiver.calls3525(), 1, "called once");
        assertEq(receiver.lastOperator(), supplier1, "operator");
        assertEq(receiver.lastFrom(), root, "from token");
        assertEq(receiver.lastTo(), child, "to token");
        assertEq(receiver.lastValue(), 250, "value");
        // the platform's own split is a value transfer too
        vm.prank(supplier1);
        ledger.split(root, address(receiver), 5, bytes32(0));
        assertEq(receiver.calls3525(), 2, "split tells it too");
    }

    function test_RevertWhen_receiverRefusesValue() public {
        receiver.setMode(ReceiverMock.Mode.WrongAnswer);
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimReceiverRejected.selector, address(receiver)));
        ledger.transferFrom(root, address(receiver), 250);
        receiver.setMode(ReceiverMock.Mode.Revert);
        vm.prank(supplier1);
        vm.expectRevert(ReceiverMock.ReceiverMockRefused.selector);
        ledger.transferFrom(root, address(receiver), 250);
        assertEq(ledger.balanceOf(root), FACE, "nothing moved");
    }

    function test_receiver_contractWithoutTheInterfaceIsNotCalled() public {
        vm.prank(supplier1);
        uint256 child = ledger.transferFrom(root, address(plain), 250);
        assertEq(ledger.ownerOf(child), address(plain), "a contract that declares nothing receives");
    }

    // ------------------------------------------------------------------ ERC-721

    function test_erc721Approve_letsTheApprovedMoveThePieceAndClearsOnTransfer() public {
        vm.expectEmit(true, true, true, true, address(ledger));
        emit Approval(supplier1, bank, root);
        vm.prank(supplier1);
        ledger.approve(bank, root);
        assertEq(ledger.getApproved(root), bank, "approved");
        vm.prank(supplier1);
        ledger.approve(root, factor, 5);
        vm.prank(bank);
        ledger.transferFrom(supplier1, supplier2, root);
        assertEq(ledger.ownerOf(root), supplier2, "moved by the approved address");
        assertEq(ledger.getApproved(root), address(0), "approval cleared by the transfer");
        assertEq(ledger.allowance(root, factor), 0, "value allowances cleared by the transfer");
        // and they stay cleared if the piece comes back
        vm.prank(supplier2);
        ledger.transferClaim(root, supplier1, bytes32(0));
        assertEq(ledger.allowance(root, factor), 0, "an old allowance does not revive");
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, bank));
        ledger.transferFrom(supplier1, supplier2, root);
    }

    function test_setApprovalForAll_emitsAndLetsTheOperatorMoveAnyPiece() public {
        vm.expectEmit(true, true, false, true, address(ledger));
        emit ApprovalForAll(supplier1, bank, true);
        vm.prank(supplier1);
        ledger.setApprovalForAll(bank, true);
        assertTrue(ledger.isApprovedForAll(supplier1, bank), "approved for all");
        vm.prank(bank);
        ledger.approve(factor, root);
        assertEq(ledger.getApproved(root), factor, "the operator may approve an address");
        vm.prank(bank);
        ledger.safeTransferFrom(supplier1, supplier2, root);
        assertEq(ledger.ownerOf(root), supplier2, "moved");
        vm.prank(supplier1);
        ledger.setApprovalForAll(bank, false);
        assertTrue(!ledger.isApprovedForAll(supplier1, bank), "revoked");
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimOperatorInvalid.selector, supplier1));
        ledger.setApprovalForAll(supplier1, true);
    }

    function test_RevertWhen_erc721TransferFromWrongOwnerOrByNonApproved() public {
        vm.prank(supplier1);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, supplier1));
        ledger.transferFrom(supplier2, supplier3, root);
        vm.prank(supplier2);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, supplier2));
        ledger.transferFrom(supplier1, supplier3, root);
        vm.prank(supplier2);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, supplier2));
        ledger.approve(supplier2, root);
        // a value allowance is not an approval of the token
        vm.prank(supplier1);
        ledger.approve(root, bank, FACE);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.ClaimNotHolder.selector, root, bank));
        ledger.transferFrom(supplier1, supplier3, root);
    }

    function test_safeTransferFrom_callsOnERC721ReceivedAndHonoursItsAnswer() public {
        vm.prank(supplier1);
        ledger.safeTransferFrom(supplier1, address(receiver), root, "hello");
        assertEq(receiver.calls721(), 1, "called");
        assertEq(receiver.lastTo(), root, "token");
        uint256 other = _split2();
        receiver.setMode(ReceiverMock.Mode.WrongAnswer);
        vm.prank(supplier2);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(receiver)));
        ledger.safeTransferFrom(supplier2, address(receiver), other);
        vm.prank(supplier2);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(plain)));
        ledger.safeTransferFrom(supplier2, address(plain), other);
        vm.prank(supplier2);
        ledger.transferFrom(supplier2, address(plain), other);
        assertEq(ledger.ownerOf(other), address(plain), "plain transferFrom does not ask");
    }

    // ------------------------------------------------------------------ metadata

    function test_metadata_isOnChainJson() public view {
        assertEq(keccak256(bytes(ledger.name())), keccak256("Tierflow claim piece"), "name");
        assertEq(keccak256(bytes(ledger.symbol())), keccak256("TFCLAIM"), "symbol");
        assertTrue(_startsWith(ledger.tokenURI(root), "data:application/json;base64,"), "tokenURI");
        assertTrue(_startsWith(ledger.slotURI(pid), "data:application/json;base64,"), "slotURI");
        assertTrue(_startsWith(ledger.contractURI(), "data:application/json;base64,"), "contractURI");
    }

    function test_RevertWhen_slotURIOfUnknownPayable() public {
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.PayableNotFound.selector, pid + 7));
        ledger.slotURI(pid + 7);
    }

    // ------------------------------------------------------------------ helpers

    function _split(uint256 from, address to, uint256 value) internal returns (uint256) {
        vm.prank(ledger.ownerOf(from));
        return ledger.split(from, to, value, bytes32(0));
    }

    /// @dev A second payable's root, held by supplier2.
    function _split2() internal returns (uint256 r) {
        (, r) = _issue(coreA, supplier2, FACE, TERM, address(0));
    }

    function _supplierRole() internal pure returns (bytes32) {
        return keccak256("SUPPLIER_ROLE");
    }

    function _startsWith(string memory s, string memory prefix) internal pure returns (bool) {
        bytes memory a = bytes(s);
        bytes memory b = bytes(prefix);
        if (a.length < b.length) return false;
        for (uint256 i; i < b.length; ++i) {
            if (a[i] != b[i]) return false;
        }
        return true;
    }
}
