// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TestBase} from "./TestBase.sol";
import {MemberRegistry} from "../../src/MemberRegistry.sol";
import {InvoiceRegistry} from "../../src/InvoiceRegistry.sol";
import {ClaimLedger} from "../../src/ClaimLedger.sol";
import {FinancingDesk} from "../../src/FinancingDesk.sol";
import {TierflowForwarder} from "../../src/TierflowForwarder.sol";
import {Platform} from "../../src/Platform.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IFinancingDesk} from "../../src/interfaces/IFinancingDesk.sol";
import {Roles} from "../../src/Roles.sol";

/// @title TierflowBase
/// @notice Deploys and wires the whole suite the way a deployment does, registers a cast of
/// members and sets their limits. Unit tests and the invariant suite both start here.
abstract contract TierflowBase is TestBase {
    // Deployment parameters (SPEC §2: 365-day term cap, long-term flag above 180 days).
    uint48 internal constant ADMIN_DELAY = 2 days;
    uint64 internal constant TERM_CAP = 365 days;
    uint64 internal constant LONG_TERM = 180 days;
    uint64 internal constant GRACE = 7 days;
    uint256 internal constant START = 1_700_000_000; // 2023-11-14, a realistic clock

    // Role bits (Roles.BIT_*), repeated here so a test reads like the registry's API.
    uint256 internal constant R_OPERATOR = 1;
    uint256 internal constant R_CORE = 2;
    uint256 internal constant R_SUPPLIER = 4;
    uint256 internal constant R_FINANCIER = 8;
    uint256 internal constant R_AGENT = 16;
    uint256 internal constant R_AUDITOR = 32;

    uint128 internal constant CORE_A_LIMIT = 1e15; // ten trillion yuan in fen: effectively open
    uint128 internal constant CORE_B_LIMIT = 50_000_000; // 500k yuan: the fuzzer hits it
    uint128 internal constant FIN_OPEN_LIMIT = type(uint128).max;
    uint128 internal constant FIN_TIGHT_LIMIT = 20_000_000;

    MemberRegistry internal members;
    InvoiceRegistry internal invoices;
    ClaimLedger internal ledger;
    FinancingDesk internal desk;
    TierflowForwarder internal forwarder;

    address internal admin = _actor("admin/operator");
    address internal coreA = _actor("coreA");
    address internal coreB = _actor("coreB");
    address internal supplier1 = _actor("supplier1");
    address internal supplier2 = _actor("supplier2");
    address internal supplier3 = _actor("supplier3");
    address internal bank = _actor("bank"); // financier with an open limit
    address internal factor = _actor("factor"); // financier with a tight limit
    address internal traderBank = _actor("traderBank"); // supplier and financier
    address internal agent = _actor("clearingAgent");
    address internal auditor = _actor("auditor");
    address internal outsider = _actor("outsider"); // never registered

    uint256 private _nonce;

    function setUp() public virtual {
        vm.warp(START);
        // The deployment's addresses are predicted (CREATE: this contract and its nonce) and
        // fixed in every constructor, as ledger/deploy.py does.
        Platform memory platform = _predictPlatform(address(this));
        forwarder = new TierflowForwarder(platform);
        members = new MemberRegistry(ADMIN_DELAY, admin, admin, platform);
        invoices = new InvoiceRegistry(platform);
        ledger = new ClaimLedger(
            platform,
            ClaimLedger.Config({
                termCap: TERM_CAP,
                longTermThreshold: LONG_TERM,
                gracePeriod: GRACE,
                tradeInvoiceRequired: false,
                valueDecimals: 2,
                currency: "CNY"
            })
        );
        desk = new FinancingDesk(platform, true);

        vm.startPrank(admin);
        uint64 kyc = uint64(START + 100 * 365 days);
        members.registerMember(coreA, R_CORE, kyc);
        members.registerMember(coreB, R_CORE, kyc);
        members.registerMember(supplier1, R_SUPPLIER, kyc);
        members.registerMember(supplier2, R_SUPPLIER, kyc);
        members.registerMember(supplier3, R_SUPPLIER, kyc);
        members.registerMember(bank, R_FINANCIER | R_AGENT, kyc);
        members.registerMember(factor, R_FINANCIER, kyc);
        members.registerMember(traderBank, R_SUPPLIER | R_FINANCIER, kyc);
        members.registerMember(agent, R_AGENT, kyc);
        members.registerMember(auditor, R_AUDITOR, kyc);
        ledger.setProgramLimit(coreA, CORE_A_LIMIT);
        ledger.setProgramLimit(coreB, CORE_B_LIMIT);
        vm.stopPrank();

        _setExposure(bank, FIN_OPEN_LIMIT);
        _setExposure(traderBank, FIN_OPEN_LIMIT);
        _setExposure(factor, FIN_TIGHT_LIMIT);
    }

    // ------------------------------------------------------------------ helpers

    uint256 internal _termsIssued;

    /// @dev The addresses the next five contracts `deployer` creates will have, in deployment
    /// order: forwarder, member registry, invoice registry, claim ledger, financing desk.
    function _predictPlatform(address deployer) internal view returns (Platform memory platform) {
        uint256 n = vm.getNonce(deployer);
        platform = Platform({
            forwarder: _createAddress(deployer, n),
            members: _createAddress(deployer, n + 1),
            invoices: _createAddress(deployer, n + 2),
            ledger: _createAddress(deployer, n + 3),
            desk: _createAddress(deployer, n + 4)
        });
    }

    /// @dev The private key of each actor (actors sign ForwardRequests in the forwarder's tests
    /// and the invariant handler's relayed calls).
    mapping(address actor => uint256) internal actorKeys;

    function _actor(string memory name) internal returns (address a) {
        // secp256k1's group order: a key is 1..n-1.
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        uint256 key = uint256(keccak256(bytes(name))) % (n - 1) + 1;
        a = vm.addr(key);
        actorKeys[a] = key;
        vm.label(a, name);
    }

    function _setExposure(address financier, uint128 limit) internal {
        vm.prank(financier);
        desk.setExposureLimit(coreA, limit);
        vm.prank(financier);
        desk.setExposureLimit(coreB, limit);
    }

    /// @dev Registers (as `seller`) and confirms (as `buyer`) a fresh invoice of `amount`.
    function _invoice(address seller, address buyer, uint128 amount) internal returns (bytes32 id) {
        ++_nonce;
        id = keccak256(abi.encode("invoice", _nonce));
        bytes32 doc = keccak256(abi.encode("document", _nonce));
        uint64 issued = uint64(vm.getBlockTimestamp());
        vm.prank(seller);
        invoices.registerInvoice(id, buyer, amount, issued, doc);
        vm.prank(buyer);
        invoices.confirmInvoice(id);
    }

    /// @dev Issues a payable of `face` from `core` to `supplier` due `term` seconds from now,
    /// backed by one fresh invoice of the same amount.
    function _issue(address core, address supplier, uint128 face, uint64 term, address clearing)
        internal
        returns (uint256 payableId, uint256 rootId)
    {
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = _invoice(supplier, core, face);
        uint64 due = uint64(vm.getBlockTimestamp()) + term;
        vm.prank(core);
        (payableId, rootId) = ledger.issuePayable(supplier, face, due, ids, clearing);
    }

    function _claim(uint256 id) internal view returns (IClaimLedger.ClaimView memory) {
        return ledger.claim(id);
    }

    /// @dev Terms a financier would quote now: termDays = ceil((due − now) / 1 day).
    /// Each call gives a fresh registration number and disbursement reference (each backs one
    /// financing only).
    function _terms(uint256 claimId, uint128 amount, uint32 rateBps, uint128 fees)
        internal
        returns (IFinancingDesk.Terms memory t)
    {
        ++_termsIssued;
        uint256 due = ledger.claim(claimId).dueDate;
        uint256 nowTs = vm.getBlockTimestamp();
        uint256 termDays = (due - nowTs + 1 days - 1) / 1 days;
        uint128 discount = uint128(desk.discountFor(amount, rateBps, termDays));
        t = IFinancingDesk.Terms({
            advance: amount - discount - fees,
            discount: discount,
            fees: fees,
            annualRateBps: rateBps,
            termDays: uint16(termDays),
            recourse: false,
            registrationNo: keccak256(abi.encode("ZDW-2024-", _termsIssued)),
            disbursementRef: keccak256(abi.encode("BANK-REF-", _termsIssued))
        });
    }
}
