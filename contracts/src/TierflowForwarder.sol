// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Platform} from "./Platform.sol";

/// @title TierflowForwarder
/// @notice Relays a member's EIP-712-signed request to one of the platform's own contracts,
/// appending the member's address to the calldata (ERC-2771), so the contracts record the
/// member, not the relayer that paid the gas, as the actor (I-12).
///
/// - Domain `{name: "TierflowForwarder", version: "1", chainId, verifyingContract}`: a
///   signature is bound to this chain and this deployment; `to` and `data` bind it to one
///   action.
/// - Nonces are unordered (a bitmap per signer): any unused 256-bit nonce is valid once, so an
///   abandoned or expired request never blocks a later one; the signer may cancel a nonce.
/// - `deadline` is enforced on chain: a signature held back is useless after it.
/// - A valid request spends its nonce even when the inner call reverts (the event carries the
///   revert data), so a refused action cannot be replayed later.
/// - Signatures are checked with OpenZeppelin's SignatureChecker: EOAs and ERC-1271 wallets.
/// The request and its data struct have the shape of OpenZeppelin 5's ERC2771Forwarder;
/// unlike it, `execute` is not payable (the platform's contracts take no ether).
contract TierflowForwarder is EIP712 {
    struct ForwardRequestData {
        address from;
        address to;
        uint256 value;
        uint256 gas;
        uint256 nonce;
        uint48 deadline;
        bytes data;
        bytes signature;
    }

    bytes32 internal constant _FORWARD_REQUEST_TYPEHASH = keccak256(
        "ForwardRequest(address from,address to,uint256 value,uint256 gas,uint256 nonce,uint48 deadline,bytes data)"
    );

    /// @notice The platform contracts a request may call, fixed at deployment.
    address public immutable MEMBERS;
    address public immutable INVOICES;
    address public immutable LEDGER;
    address public immutable DESK;

    mapping(address signer => mapping(uint256 word => uint256 bits)) private _nonceBitmap;

    /// @notice A valid request was executed: its nonce is spent. `success` is the inner call's
    /// outcome and `returndata` its return (or revert) data.
    event ForwardRequestExecuted(address indexed signer, uint256 indexed nonce, bool success, bytes returndata);
    /// @notice The signer cancelled an unused nonce; a request signed with it can never execute.
    event NonceCancelled(address indexed signer, uint256 indexed nonce);

    error ForwarderConfigInvalid();
    error ForwarderTargetNotPlatform(address to);
    error ForwarderRequestExpired(uint48 deadline);
    error ForwarderSignatureInvalid(address from);
    error ForwarderNonceUsed(address from, uint256 nonce);
    /// @dev The platform's contracts hold no ether: a request carries none (and `execute` is
    /// not payable, so no ether can be stuck here).
    error ForwarderValueInvalid(uint256 requestValue);

    constructor(Platform memory platform) EIP712("TierflowForwarder", "1") {
        if (
            platform.forwarder != address(this) || platform.members == address(0)
                || platform.invoices == address(0) || platform.ledger == address(0) || platform.desk == address(0)
        ) revert ForwarderConfigInvalid();
        MEMBERS = platform.members;
        INVOICES = platform.invoices;
        LEDGER = platform.ledger;
        DESK = platform.desk;
    }

    // ------------------------------------------------------------------ relaying

    /// @notice Executes a valid request. Reverts (custom error) only when the request is
    /// invalid: non-platform target, value, expired, nonce used or cancelled, bad signature.
    /// A valid request spends its nonce and emits {ForwardRequestExecuted} whether or not the
    /// inner call succeeded.
    function execute(ForwardRequestData calldata request) external {
        if (request.value != 0) revert ForwarderValueInvalid(request.value);
        if (!isPlatformContract(request.to)) revert ForwarderTargetNotPlatform(request.to);
        // slither-disable-next-line timestamp -- the deadline is a wall-clock bound by design
        if (block.timestamp > request.deadline) revert ForwarderRequestExpired(request.deadline);
        if (!SignatureChecker.isValidSignatureNow(request.from, _hash(request), request.signature)) {
            revert ForwarderSignatureInvalid(request.from);
        }
        // Spent before the call, so the inner call cannot re-enter with the same request.
        _useNonce(request.from, request.nonce);

        uint256 reqGas = request.gas;
        address to = request.to;
        bytes memory data = abi.encodePacked(request.data, request.from);
        bool success;
        uint256 gasLeft;
        assembly ("memory-safe") {
            success := call(reqGas, to, 0, add(data, 0x20), mload(data), 0, 0)
            gasLeft := gas()
        }
        _checkForwardedGas(gasLeft, reqGas);
        uint256 size;
        assembly ("memory-safe") {
            size := returndatasize()
        }
        bytes memory returndata = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(returndata, 0x20), 0, mload(returndata))
        }
        emit ForwardRequestExecuted(request.from, request.nonce, success, returndata);
    }

    /// @notice Marks an unused nonce of the caller as used: a request signed with it never runs.
    function cancelNonce(uint256 nonce) external {
        _useNonce(msg.sender, nonce);
        emit NonceCancelled(msg.sender, nonce);
    }

    // ------------------------------------------------------------------ views

    /// @notice Whether `execute(request)` would run it now (target, deadline, nonce, signature).
    function verify(ForwardRequestData calldata request) external view returns (bool) {
        return request.value == 0 && isPlatformContract(request.to) && block.timestamp <= request.deadline
            && !nonceUsed(request.from, request.nonce)
            && SignatureChecker.isValidSignatureNow(request.from, _hash(request), request.signature);
    }

    /// @notice The EIP-712 digest the signer signs for `request` (its signature is ignored).
    function hashRequest(ForwardRequestData calldata request) external view returns (bytes32) {
        return _hash(request);
    }

    /// @notice Whether `nonce` of `signer` was used or cancelled.
    function nonceUsed(address signer, uint256 nonce) public view returns (bool) {
        return _nonceBitmap[signer][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    /// @notice 256 nonces of `signer` at once: bit `i` is nonce `word * 256 + i`.
    function nonceBitmap(address signer, uint256 word) external view returns (uint256) {
        return _nonceBitmap[signer][word];
    }

    /// @notice Whether a request may call `target`: only the platform's own business contracts.
    function isPlatformContract(address target) public view returns (bool) {
        return target == MEMBERS || target == INVOICES || target == LEDGER || target == DESK;
    }

    // ------------------------------------------------------------------ internals

    function _hash(ForwardRequestData calldata request) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _FORWARD_REQUEST_TYPEHASH,
                    request.from,
                    request.to,
                    request.value,
                    request.gas,
                    request.nonce,
                    request.deadline,
                    keccak256(request.data)
                )
            )
        );
    }

    function _useNonce(address signer, uint256 nonce) private {
        uint256 bit = 1 << (nonce & 0xff);
        mapping(uint256 => uint256) storage words = _nonceBitmap[signer];
        uint256 bits = words[nonce >> 8];
        if (bits & bit != 0) revert ForwarderNonceUsed(signer, nonce);
        words[nonce >> 8] = bits | bit;
    }

    /// @dev The 63/64 rule, as OpenZeppelin's ERC2771Forwarder checks it: if the relayer gave
    /// the call less than `reqGas`, the inner call ran out of gas with at most reqGas / 63 left
    /// here; then consume all gas so the whole transaction fails instead of spending the nonce
    /// on a call the relayer starved.
    function _checkForwardedGas(uint256 gasLeft, uint256 reqGas) private pure {
        if (gasLeft < reqGas / 63) {
            assembly ("memory-safe") {
                invalid()
            }
        }
    }
}
