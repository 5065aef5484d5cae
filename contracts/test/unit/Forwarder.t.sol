// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TierflowBase} from "../utils/TierflowBase.sol";
import {TierflowForwarder} from "../../src/TierflowForwarder.sol";
import {Platform} from "../../src/Platform.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IInvoiceRegistry} from "../../src/interfaces/IInvoiceRegistry.sol";
import {IMemberRegistry} from "../../src/interfaces/IMemberRegistry.sol";
import {IFinancingDesk} from "../../src/interfaces/IFinancingDesk.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";

/// @dev A contract wallet (a bank's multisig, say) that accepts one owner key's signatures.
contract OwnerWallet is IERC1271 {
    address public immutable OWNER;

    constructor(address owner) {
        OWNER = owner;
    }

    function isValidSignature(bytes32 digest, bytes calldata signature) external view returns (bytes4) {
        (bytes32 r, bytes32 s) = abi.decode(signature[:64], (bytes32, bytes32));
        address signer = ecrecover(digest, uint8(signature[64]), r, s);
        return signer == OWNER ? IERC1271.isValidSignature.selector : bytes4(0xffffffff);
    }
}

/// @dev Burns all the gas a call gives it.
contract GasBurner {
    fallback() external {
        while (true) {}
    }
}

/// @notice TierflowForwarder: members' EIP-712 requests relayed by anyone; the contracts record
/// the member as the actor; replay on another chain, deployment or action is refused; nonces
/// are unordered and spent even when the inner call reverts.
contract ForwarderTest is TierflowBase {
    uint256 internal constant ALICE_KEY = 0xA11CE;
    uint256 internal constant MALLORY_KEY = 0xBAD;
    uint128 internal constant FACE = 1_000_000;

    address internal alice; // a self-custody supplier
    address internal mallory; // a key that is not alice's
    address internal relayer = _actor("relayer");
    uint256 internal root;

    function setUp() public override {
        super.setUp();
        alice = vm.addr(ALICE_KEY);
        mallory = vm.addr(MALLORY_KEY);
        vm.prank(admin);
        members.registerMember(alice, R_SUPPLIER, uint64(START + 100 * 365 days));
        (, root) = _issue(coreA, alice, FACE, 90 days, address(0));
    }

    // ------------------------------------------------------------------ helpers

    function _request(address to, bytes memory data, uint256 nonce)
        internal
        view
        returns (TierflowForwarder.ForwardRequestData memory req)
    {
        req = TierflowForwarder.ForwardRequestData({
            from: alice,
            to: to,
            value: 0,
            gas: 500_000,
            nonce: nonce,
            deadline: uint48(vm.getBlockTimestamp() + 15 minutes),
            data: data,
            signature: ""
        });
    }

    function _signed(TierflowForwarder.ForwardRequestData memory req, uint256 key)
        internal
        view
        returns (TierflowForwarder.ForwardRequestData memory)
    {
        return _signedAt(forwarder, req, key);
    }

    function _signedAt(TierflowForwarder fwd, TierflowForwarder.ForwardRequestData memory req, uint256 key)
        internal
        view
        returns (TierflowForwarder.ForwardRequestData memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, fwd.hashRequest(req));
        req.signature = abi.encodePacked(r, s, v);
        return req;
    }

    function _splitRequest(uint256 value, uint256 nonce)
        internal
        view
        returns (TierflowForwarder.ForwardRequestData memory)
    {
        return _signed(
            _request(address(ledger), abi.encodeCall(IClaimLedger.split, (root, supplier2, value, bytes32(0))), nonce),
            ALICE_KEY
        );
    }

    // ------------------------------------------------------------------ the actor is the signer

    function test_execute_recordsTheSignerAsActor() public {
        TierflowForwarder.ForwardRequestData memory req = _splitRequest(300_000, 7);
        assertTrue(forwarder.verify(req), "valid before execution");
        uint256 child = ledger.claimCount() + 1;
        vm.expectEmit(true, true, true, true, address(ledger));
        emit IClaimLedger.ClaimSplit(root, child, 1, alice, supplier2, 300_000, 1, bytes32(0));
        vm.expectEmit(true, true, false, true, address(forwarder));
        emit TierflowForwarder.ForwardRequestExecuted(alice, 7, true, abi.encode(child));
        vm.prank(relayer);
        forwarder.execute(req);
        assertEq(_claim(child).holder, supplier2, "the piece moved");
        assertEq(_claim(root).value, FACE - 300_000, "from alice's piece");
        assertTrue(forwarder.nonceUsed(alice, 7), "nonce spent");
        assertEq(forwarder.nonceBitmap(alice, 0), 1 << 7, "one bit of the first word");
        assertTrue(!forwarder.verify(req), "invalid once spent");
    }

    function test_execute_roleChecksUseTheSigner() public {
        // alice is a supplier, not an operator: the forwarded operator action is refused with
        // alice (not the forwarder) as the caller; the forwarder holds and confers no role.
        TierflowForwarder.ForwardRequestData memory req = _signed(
            _request(address(ledger), abi.encodeCall(IClaimLedger.setProgramLimit, (coreA, 1)), 1), ALICE_KEY
        );
        vm.expectEmit(true, true, false, true, address(forwarder));
        emit TierflowForwarder.ForwardRequestExecuted(
            alice, 1, false, abi.encodeWithSelector(IClaimLedger.LedgerCallerUnauthorized.selector, alice)
        );
        forwarder.execute(req);
        assertEq(ledger.obligorAccount(coreA).programLimit, CORE_A_LIMIT, "limit unchanged");
    }

    function test_execute_contractWalletSignsThroughERC1271() public {
        OwnerWallet wallet = new OwnerWallet(vm.addr(MALLORY_KEY));
        vm.prank(admin);
        members.registerMember(address(wallet), R_SUPPLIER, uint64(START + 365 days));
        vm.prank(alice);
        uint256 piece = ledger.split(root, address(wallet), 100_000, bytes32(0));
        TierflowForwarder.ForwardRequestData memory req = _request(
            address(ledger), abi.encodeCall(IClaimLedger.split, (piece, supplier2, 40_000, bytes32(0))), 1
        );
        req.from = address(wallet);
        req = _signed(req, MALLORY_KEY);
        assertTrue(forwarder.verify(req), "the wallet accepts its owner's signature");
        forwarder.execute(req);
        assertEq(_claim(piece).value, 60_000, "the wallet's piece was split");
    }

    // ------------------------------------------------------------------ inner reverts

    function test_execute_innerRevertIsReportedAndSpendsTheNonce() public {
        // More than the piece holds: the ledger refuses, the forwarder reports it.
        TierflowForwarder.ForwardRequestData memory req = _splitRequest(FACE + 1, 3);
        bytes memory reason = abi.encodeWithSelector(
            IClaimLedger.ClaimAmountExceedsAvailable.selector, root, uint256(FACE + 1), uint256(FACE)
        );
        vm.expectEmit(true, true, false, true, address(forwarder));
        emit TierflowForwarder.ForwardRequestExecuted(alice, 3, false, reason);
        forwarder.execute(req);
        assertTrue(forwarder.nonceUsed(alice, 3), "spent although the call reverted");
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderNonceUsed.selector, alice, 3));
        forwarder.execute(req);
    }

    function test_execute_internalHooksRefuseTheForwarder() public {
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = keccak256("x");
        TierflowForwarder.ForwardRequestData memory req = _signed(
            _request(address(invoices), abi.encodeCall(IInvoiceRegistry.releaseInvoices, (ids, 1)), 1), ALICE_KEY
        );
        vm.expectEmit(true, true, false, true, address(forwarder));
        emit TierflowForwarder.ForwardRequestExecuted(
            alice,
            1,
            false,
            abi.encodeWithSelector(IInvoiceRegistry.InvoiceCallerNotLedger.selector, address(forwarder))
        );
        forwarder.execute(req);
    }

    // ------------------------------------------------------------------ replay

    function test_RevertWhen_replayed() public {
        TierflowForwarder.ForwardRequestData memory req = _splitRequest(1_000, 11);
        forwarder.execute(req);
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderNonceUsed.selector, alice, 11));
        forwarder.execute(req);
    }

    function test_RevertWhen_replayedOnAnotherChain() public {
        TierflowForwarder.ForwardRequestData memory req = _splitRequest(1_000, 1);
        vm.chainId(4242);
        assertTrue(!forwarder.verify(req), "the domain names the chain");
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderSignatureInvalid.selector, alice));
        forwarder.execute(req);
    }

    function test_RevertWhen_replayedOnAnotherDeployment() public {
        // Another forwarder over the same contracts (as another deployment's would be): its
        // domain names another verifying contract, so alice's signature does not hold there.
        Platform memory other = Platform({
            forwarder: _createAddress(address(this), vm.getNonce(address(this))),
            members: address(members),
            invoices: address(invoices),
            ledger: address(ledger),
            desk: address(desk)
        });
        TierflowForwarder otherForwarder = new TierflowForwarder(other);
        TierflowForwarder.ForwardRequestData memory req = _splitRequest(1_000, 1);
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderSignatureInvalid.selector, alice));
        otherForwarder.execute(req);
        // And a request signed for the other forwarder is refused here.
        TierflowForwarder.ForwardRequestData memory theirs = _signedAt(
            otherForwarder,
            _request(address(ledger), abi.encodeCall(IClaimLedger.split, (root, supplier2, 1_000, bytes32(0))), 2),
            ALICE_KEY
        );
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderSignatureInvalid.selector, alice));
        forwarder.execute(theirs);
    }

    function test_RevertWhen_signatureUsedForAnotherAction() public {
        TierflowForwarder.ForwardRequestData memory req = _splitRequest(1_000, 1);
        req.data = abi.encodeCall(IClaimLedger.split, (root, supplier3, 1_000, bytes32(0)));
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderSignatureInvalid.selector, alice));
        forwarder.execute(req);
        req = _splitRequest(1_000, 1);
        req.to = address(desk);
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderSignatureInvalid.selector, alice));
        forwarder.execute(req);
        req = _splitRequest(1_000, 1);
        req.gas = 400_000;
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderSignatureInvalid.selector, alice));
        forwarder.execute(req);
    }

    // ------------------------------------------------------------------ validity

    function test_RevertWhen_expired() public {
        TierflowForwarder.ForwardRequestData memory req = _splitRequest(1_000, 1);
        vm.warp(req.deadline); // still valid at the deadline itself
        assertTrue(forwarder.verify(req), "valid at the deadline");
        vm.warp(uint256(req.deadline) + 1);
        assertTrue(!forwarder.verify(req), "invalid after");
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderRequestExpired.selector, req.deadline));
        forwarder.execute(req);
        assertTrue(!forwarder.nonceUsed(alice, 1), "an invalid request spends nothing");
    }

    function test_RevertWhen_wrongSigner() public {
        TierflowForwarder.ForwardRequestData memory req = _signed(
            _request(address(ledger), abi.encodeCall(IClaimLedger.split, (root, supplier2, 1_000, bytes32(0))), 1),
            MALLORY_KEY
        );
        assertTrue(!forwarder.verify(req), "mallory's signature is not alice's");
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderSignatureInvalid.selector, alice));
        forwarder.execute(req);
        req.signature = hex"00";
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderSignatureInvalid.selector, alice));
        forwarder.execute(req);
        assertEq(_claim(root).value, FACE, "nothing moved");
    }

    function test_RevertWhen_cancelledNonce() public {
        TierflowForwarder.ForwardRequestData memory req = _splitRequest(1_000, 5);
        vm.expectEmit(true, true, false, true, address(forwarder));
        emit TierflowForwarder.NonceCancelled(alice, 5);
        vm.prank(alice);
        forwarder.cancelNonce(5);
        assertTrue(!forwarder.verify(req), "cancelled");
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderNonceUsed.selector, alice, 5));
        forwarder.execute(req);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderNonceUsed.selector, alice, 5));
        forwarder.cancelNonce(5);
    }

    function test_noncesAreUnordered() public {
        // An abandoned request (nonce 900) never blocks later ones, in any order.
        TierflowForwarder.ForwardRequestData memory abandoned = _splitRequest(1_000, 900);
        forwarder.execute(_splitRequest(1_000, 2 ** 200));
        forwarder.execute(_splitRequest(1_000, 1));
        forwarder.execute(_splitRequest(1_000, 0));
        assertTrue(forwarder.verify(abandoned), "still valid until its deadline");
        assertEq(_claim(root).value, FACE - 3_000, "three splits");
    }

    function test_RevertWhen_targetNotPlatform() public {
        address[3] memory targets = [address(forwarder), outsider, address(0)];
        for (uint256 i; i < targets.length; ++i) {
            TierflowForwarder.ForwardRequestData memory req =
                _signed(_request(targets[i], abi.encodeCall(TierflowForwarder.cancelNonce, (1)), 1), ALICE_KEY);
            assertTrue(!forwarder.verify(req), "not a platform contract");
            vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderTargetNotPlatform.selector, targets[i]));
            forwarder.execute(req);
        }
        assertTrue(forwarder.isPlatformContract(address(members)), "members");
        assertTrue(forwarder.isPlatformContract(address(invoices)), "invoices");
        assertTrue(forwarder.isPlatformContract(address(ledger)), "ledger");
        assertTrue(forwarder.isPlatformContract(address(desk)), "desk");
    }

    function test_RevertWhen_valueSent() public {
        TierflowForwarder.ForwardRequestData memory req = _request(
            address(ledger), abi.encodeCall(IClaimLedger.split, (root, supplier2, 1_000, bytes32(0))), 1
        );
        req.value = 1;
        req = _signed(req, ALICE_KEY);
        vm.expectRevert(abi.encodeWithSelector(TierflowForwarder.ForwarderValueInvalid.selector, 1));
        forwarder.execute(req);
    }

    function test_RevertWhen_relayerStarvesTheCall() public {
        // A forwarder whose "desk" burns every unit of gas it is given, so the inner call always
        // runs out: the 63/64 check tells a call the relayer starved from one given its gas.
        GasBurner burner = new GasBurner();
        Platform memory platform = Platform({
            forwarder: _createAddress(address(this), vm.getNonce(address(this))),
            members: address(members),
            invoices: address(invoices),
            ledger: address(ledger),
            desk: address(burner)
        });
        TierflowForwarder fwd = new TierflowForwarder(platform);
        TierflowForwarder.ForwardRequestData memory req = _request(address(burner), hex"01", 1);
        req.gas = 1_000_000;
        req = _signedAt(fwd, req, ALICE_KEY);
        // 600k for the whole relay: the call gets less than the 1M signed for; enough would be
        // left to finish and spend the nonce, so the forwarder must fail the whole transaction.
        (bool ok,) = address(fwd).call{gas: 600_000}(abi.encodeCall(TierflowForwarder.execute, (req)));
        assertTrue(!ok, "starved relay fails as a whole");
        assertTrue(!fwd.nonceUsed(alice, 1), "nonce not spent");
        // Given its gas, the call runs out on its own: reported, nonce spent.
        vm.expectEmit(true, true, false, true, address(fwd));
        emit TierflowForwarder.ForwardRequestExecuted(alice, 1, false, "");
        (ok,) = address(fwd).call{gas: 1_200_000}(abi.encodeCall(TierflowForwarder.execute, (req)));
        assertTrue(ok, "relayed");
        assertTrue(fwd.nonceUsed(alice, 1), "spent");
    }

    // ------------------------------------------------------------------ fixed wiring (I-13)

    function test_RevertWhen_hooksCalledByAGrantedAccount() public {
        // No role makes an account a platform contract: the admin granting the old
        // LEDGER_ROLE to itself gains nothing.
        vm.startPrank(admin);
        members.grantRole(keccak256("LEDGER_ROLE"), admin);
        bytes32[] memory ids = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(IInvoiceRegistry.InvoiceCallerNotLedger.selector, admin));
        invoices.releaseInvoices(ids, 1);
        vm.expectRevert(abi.encodeWithSelector(IMemberRegistry.MemberCallerNotLedger.selector, admin));
        members.suspendForOverdue(coreA);
        vm.expectRevert(abi.encodeWithSelector(IClaimLedger.LedgerCallerUnauthorized.selector, admin));
        ledger.unlockFromFinancing(root, 1);
        vm.expectRevert(abi.encodeWithSelector(IFinancingDesk.FinancingCallerNotLedger.selector, admin));
        desk.releaseExposure(bank, coreA, root, 1);
        vm.stopPrank();
    }

    function test_wiringIsTheDeployment() public view {
        assertEq(members.LEDGER(), address(ledger), "members to ledger");
        assertEq(invoices.LEDGER(), address(ledger), "invoices to ledger");
        assertEq(ledger.financingDesk(), address(desk), "ledger to desk");
        assertEq(address(desk.LEDGER()), address(ledger), "desk to ledger");
        assertEq(members.trustedForwarder(), address(forwarder), "members trust the forwarder");
        assertEq(invoices.trustedForwarder(), address(forwarder), "invoices");
        assertEq(ledger.trustedForwarder(), address(forwarder), "ledger");
        assertEq(desk.trustedForwarder(), address(forwarder), "desk");
    }

    function test_RevertWhen_deployedAtAnUnpredictedAddress() public {
        Platform memory wrong = Platform({
            forwarder: address(forwarder),
            members: address(members),
            invoices: address(invoices),
            ledger: address(ledger),
            desk: address(desk)
        });
        vm.expectRevert(TierflowForwarder.ForwarderConfigInvalid.selector);
        new TierflowForwarder(wrong);
    }
}
