// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {Vm} from "../utils/TestBase.sol";
import {MemberRegistry} from "../../src/MemberRegistry.sol";
import {InvoiceRegistry} from "../../src/InvoiceRegistry.sol";
import {ClaimLedger} from "../../src/ClaimLedger.sol";
import {FinancingDesk} from "../../src/FinancingDesk.sol";
import {TierflowForwarder} from "../../src/TierflowForwarder.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IFinancingDesk} from "../../src/interfaces/IFinancingDesk.sol";
import {IMemberRegistry} from "../../src/interfaces/IMemberRegistry.sol";

/// @title Handler
/// @notice The only contract the invariant fuzzer calls. Each entry point turns random seeds
/// into a plausible business action by a real member (mostly valid, so the fuzzer reaches deep
/// states; one call in eight is left unchecked on purpose to exercise the revert paths), then
/// records what it observed in ghost variables for the invariants in TierflowInvariants.t.sol:
///
/// - every payable, claim piece and financing id the system created (so the invariants can
///   iterate all of them; the invariant suite checks the lists are complete);
/// - a snapshot (hash of the full view) of every payable and piece when it became Settled or
///   Cancelled, to prove terminal states absorb;
/// - violation counters for facts only visible at the moment of a call: the financed piece is
///   held by its financier at approval, outstanding ≤ program limit at issue, nothing succeeds
///   while paused, a failed settlement batch changes nothing.
contract Handler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant MAX_WARP = 30 days;
    uint256 internal constant MAX_BATCH = 5;
    uint256 internal constant PAUSE_STEPS = 3;

    MemberRegistry public immutable members;
    InvoiceRegistry public immutable invoices;
    ClaimLedger public immutable ledger;
    FinancingDesk public immutable desk;
    address public immutable operator;

    address[] internal _cores;
    address[] internal _suppliers; // may register invoices and receive pieces
    address[] internal _financiers;
    address[] internal _holders; // every member that may hold a piece (suppliers ∪ financiers)
    address[] internal _everyone; // holders plus members who may not hold, and a stranger
    address internal _agent;

    // ---------------------------------------------------------------- ghosts
    uint256 public ghostTime;
    bool public ghostPaused;
    uint256 internal _pausedSteps;
    uint256 internal _nonce;

    uint256[] internal _payableIds;
    uint256[] internal _claimIds;
    bytes32[] internal _invoiceIds; // every invoice the handler registered
    mapping(uint256 claimId => bool) internal _knownClaim;

    mapping(uint256 claimId => bytes32) public claimSnapshot;
    mapping(uint256 payableId => bytes32) public payableSnapshot;

    uint256 public approvalHolderViolations; // financed piece not held by its financier after approve
    uint256 public issueLimitViolations; // outstanding > program limit right after an issue
    uint256 public approvalExposureViolations; // exposure > its limit right after an approval
    uint256 public pausedSuccesses; // a business mutator succeeded while paused
    uint256 public batchAtomicityViolations; // a reverted batch left a piece settled
    uint256 public relayViolations; // an invalid or replayed ForwardRequest ran, or moved something
    uint256 public paymentRefViolations; // a payment reference paid a second holder or payable
    bytes32 internal _lastPaymentRef; // the reference of the last single settlement

    /// @dev Members' private keys, for requests relayed through the forwarder (set by the test).
    mapping(address member => uint256) internal _keys;
    uint256 internal _relayNonce;

    mapping(bytes32 op => uint256) public calls;
    mapping(bytes32 op => uint256) public successes;
    uint256 public totalCalls; // handler entry points called in this run
    uint256 public businessSuccesses; // business calls that succeeded (approvals aside)

    constructor(
        MemberRegistry members_,
        InvoiceRegistry invoices_,
        ClaimLedger ledger_,
        FinancingDesk desk_,
        address operator_,
        address[] memory cores_,
        address[] memory suppliers_,
        address[] memory financiers_,
        address[] memory others_,
        address agent_
    ) {
        members = members_;
        invoices = invoices_;
        ledger = ledger_;
        desk = desk_;
        operator = operator_;
        _cores = cores_;
        _suppliers = suppliers_;
        _financiers = financiers_;
        _agent = agent_;
        for (uint256 i; i < suppliers_.length; ++i) _addHolder(suppliers_[i]);
        for (uint256 i; i < financiers_.length; ++i) _addHolder(financiers_[i]);
        for (uint256 i; i < _holders.length; ++i) _everyone.push(_holders[i]);
        for (uint256 i; i < cores_.length; ++i) _everyone.push(cores_[i]);
        for (uint256 i; i < others_.length; ++i) _everyone.push(others_[i]);
        ghostTime = vm.getBlockTimestamp();
    }

    /// @dev Every entry point runs at the handler's clock (the fuzzer may not carry block time
    /// from one call to the next) and counts itself.
    modifier step(bytes32 op) {
        vm.warp(ghostTime);
        ++calls[op];
        ++totalCalls;
        _;
        // A pause lasts a few calls (each of which must fail), then the operator resumes.
        if (ghostPaused && ++_pausedSteps > PAUSE_STEPS) {
            vm.prank(operator);
            members.unpause();
            ghostPaused = false;
        }
    }

    // ================================================================== payables

    /// @notice A core enterprise issues a payable to a supplier against 1–3 fresh invoices that
    /// the supplier registers and the core confirms inside this call.
    function issue(uint256 coreSeed, uint256 supplierSeed, uint256 faceSeed, uint256 termSeed, uint256 extraSeed)
        external
        step("issue")
    {
        address core = _cores[coreSeed % _cores.length];
        address supplier = _suppliers[supplierSeed % _suppliers.length];
        // Three faces in four fit a small program limit; the rest probe the limit.
        uint128 face = uint128(_bound(faceSeed, 1, faceSeed % 4 == 0 ? 1e10 : 1e7));
        // Terms from a day to the cap; warpToBoundary visits the exact second edges.
        uint64 term = uint64(_bound(termSeed, 1 days, termSeed % 2 == 0 ? 60 days : ledger.TERM_CAP()));
        bytes32[] memory ids = _freshInvoices(supplier, core, face, extraSeed);
        if (ids.length == 0) return; // the core cannot confirm (suspended): nothing to issue against
        address clearing = extraSeed % 3 == 0 ? address(0) : (extraSeed % 3 == 1 ? _agent : _financiers[0]);
        uint64 due = uint64(ghostTime) + term;

        vm.prank(core);
        try ledger.issuePayable(supplier, face, due, ids, clearing) returns (uint256 pid, uint256 rootId) {
            _succeeded("issue");
            _payableIds.push(pid);
            _recordClaim(rootId);
            IClaimLedger.ObligorAccount memory a = ledger.obligorAccount(core);
            if (a.outstanding > a.programLimit) ++issueLimitViolations;
        } catch {}
    }

    /// @notice The holder of an untouched root declines its payable.
    function cancel(uint256 payableSeed) external step("cancel") {
        (uint256 pid, bool found) = _findPayable(payableSeed, IClaimLedger.PayableStatus.Issued);
        if (!found) return;
        uint256 rootId = ledger.getPayable(pid).rootClaimId;
        address holder = ledger.claim(rootId).holder;
        vm.prank(holder);
        try ledger.cancelPayable(pid) {
            _succeeded("cancel");
            _snapshotClaim(rootId);
            _snapshotPayableIfTerminal(pid);
        } catch {}
    }

    /// @notice Anyone marks a payable overdue once due date + grace has passed.
    function markOverdue(uint256 payableSeed, uint256 callerSeed) external step("markOverdue") {
        (uint256 pid, bool found) = _findPayable(payableSeed, IClaimLedger.PayableStatus.Issued);
        if (!found) return;
        vm.prank(_everyone[callerSeed % _everyone.length]);
        try ledger.markOverdue(pid) {
            _succeeded("markOverdue");
        } catch {}
    }

    /// @notice The operator moves a core's program limit (up or down): outstanding may then
    /// exceed it, which is why the limit is checked at issue time.
    function setProgramLimit(uint256 coreSeed, uint256 limitSeed) external step("setProgramLimit") {
        address core = _cores[coreSeed % _cores.length];
        uint128 limit = uint128(_bound(limitSeed, 1e6, limitSeed % 2 == 0 ? 1e8 : 1e15));
        vm.prank(operator);
        ledger.setProgramLimit(core, limit);
        _succeededAlways("setProgramLimit");
    }

    /// @notice The operator reinstates a suspended member (a core suspended for overdue
    /// payables, or anyone `suspend` suspended), the first one found from the seed.
    function reinstate(uint256 memberSeed) external step("reinstate") {
        uint256 n = _everyone.length;
        for (uint256 k; k < n; ++k) {
            address m = _everyone[(memberSeed % n + k) % n];
            if (members.member(m).status != IMemberRegistry.MemberStatus.Suspended) continue;
            vm.prank(operator);
            members.reinstateMember(m);
            _succeededAlways("reinstate");
            return;
        }
    }

    // ================================================================== members

    /// @notice The operator suspends an active member (core, holder, agent or auditor): it
    /// can do no business until reinstated.
    function suspend(uint256 memberSeed) external step("suspend") {
        address m = _everyone[memberSeed % _everyone.length];
        if (members.member(m).status != IMemberRegistry.MemberStatus.Active) return;
        vm.prank(operator);
        members.suspendMember(m, keccak256("compliance review"));
        _succeededAlways("suspend");
    }

    /// @notice The operator sets a member's KYC to lapse within ten days; once the clock passes
    /// it, the member can do no new business until `renewKyc`.
    function shortenKyc(uint256 memberSeed, uint256 secondsSeed) external step("shortenKyc") {
        address m = _everyone[memberSeed % _everyone.length];
        if (members.member(m).status == IMemberRegistry.MemberStatus.None) return;
        vm.prank(operator);
        members.renewKyc(m, uint64(ghostTime + _bound(secondsSeed, 1, 10 days)));
        _succeededAlways("shortenKyc");
    }

    /// @notice The operator renews, for years, the KYC of a member whose KYC lapses within a
    /// month (the first one found from the seed).
    function renewKyc(uint256 memberSeed) external step("renewKyc") {
        uint256 n = _everyone.length;
        for (uint256 k; k < n; ++k) {
            address m = _everyone[(memberSeed % n + k) % n];
            IMemberRegistry.Member memory r = members.member(m);
            if (r.status == IMemberRegistry.MemberStatus.None || r.kycExpiresAt > ghostTime + 30 days) continue;
            vm.prank(operator);
            members.renewKyc(m, uint64(ghostTime + 10 * 365 days));
            _succeededAlways("renewKyc");
            return;
        }
    }

    /// @notice The seller (or, half the time, the operator) voids one of the invoices the
    /// handler registered: only an unused one may be voided, so most of the used ones revert.
    function voidInvoice(uint256 invoiceSeed, bool byOperator) external step("voidInvoice") {
        uint256 n = _invoiceIds.length;
        if (n == 0) return;
        bytes32 id = _invoiceIds[invoiceSeed % n];
        vm.prank(byOperator ? operator : invoices.invoice(id).seller);
        try invoices.voidInvoice(id) {
            _succeeded("voidInvoice");
        } catch {}
    }

    /// @notice A financier moves its exposure limit on a core, sometimes below what it has
    /// outstanding (then it approves nothing more there until back under).
    function setExposureLimit(uint256 finSeed, uint256 coreSeed, uint256 limitSeed) external step("setExposureLimit") {
        address financier = _financiers[finSeed % _financiers.length];
        address core = _cores[coreSeed % _cores.length];
        uint128 limit = uint128(_bound(limitSeed, 0, limitSeed % 2 == 0 ? 5e7 : 1e15));
        vm.prank(financier);
        try desk.setExposureLimit(core, limit) {
            _succeeded("setExposureLimit");
        } catch {}
    }

    /// @notice The test gives the handler each member's key (never a fuzzed entry point).
    function setKey(address member, uint256 key) external {
        _keys[member] = key;
    }

    // ================================================================== pieces

    /// @notice The holder splits part of a piece to another member, sometimes citing a trade
    /// invoice from the recipient.
    function split(uint256 claimSeed, uint256 toSeed, uint256 valueSeed, bool withInvoice) external step("split") {
        (bool found, uint256 id, IClaimLedger.ClaimView memory c, address to) = _move(claimSeed, toSeed);
        if (!found) return;
        uint256 value = _unchecked(claimSeed) ? valueSeed : _splitValue(c, valueSeed);
        bytes32 inv;
        if (withInvoice && _isSupplier(to) && value <= type(uint128).max) {
            inv = _freshInvoice(to, c.holder, uint128(value));
        }
        vm.prank(c.holder);
        try ledger.split(id, to, value, inv) returns (uint256 child) {
            _succeeded("split");
            _recordClaim(child);
        } catch {}
    }

    /// @notice The holder passes a whole piece on.
    function transferWhole(uint256 claimSeed, uint256 toSeed) external step("transferWhole") {
        (bool found, uint256 id, IClaimLedger.ClaimView memory c, address to) = _move(claimSeed, toSeed);
        if (!found) return;
        vm.prank(c.holder);
        try ledger.transferClaim(id, to, bytes32(0)) {
            _succeeded("transferWhole");
        } catch {}
    }

    /// @notice A holder moves a piece by signing a ForwardRequest that anyone (here the
    /// handler) relays through the TierflowForwarder: a split or a whole transfer, valid
    /// (then relayed a second time: the replay must be refused), or signed by another member's
    /// key, or past its deadline (both refused with nothing moved).
    function relayedMove(uint256 claimSeed, uint256 toSeed, uint256 valueSeed, uint256 modeSeed)
        external
        step("relayedMove")
    {
        (bool found, uint256 id, IClaimLedger.ClaimView memory c, address to) = _move(claimSeed, toSeed);
        if (!found || _keys[c.holder] == 0) return;
        bytes memory data = valueSeed % 4 == 0
            ? abi.encodeCall(ledger.transferClaim, (id, to, bytes32(0)))
            : abi.encodeCall(ledger.split, (id, to, _splitValue(c, valueSeed), bytes32(0)));
        uint256 mode = modeSeed % 8; // 0-5 valid, 6 signed by another key, 7 expired
        _relayAndCheck(id, _signedRequest(c.holder, to, data, mode), mode);
    }

    /// @dev A move's piece (found from `claimSeed`), its view and a recipient (from `toSeed`):
    /// what a direct and a relayed split or whole transfer start from.
    function _move(uint256 claimSeed, uint256 toSeed)
        internal
        view
        returns (bool found, uint256 id, IClaimLedger.ClaimView memory c, address to)
    {
        (id, found) = _findMovable(claimSeed);
        if (!found) return (false, 0, c, address(0));
        c = ledger.claim(id);
        to = _recipient(toSeed, c.holder);
    }

    /// @dev A split's value from `seed`: 1 up to what is unlocked, less than the whole piece
    /// (the whole piece moves by transferClaim).
    function _splitValue(IClaimLedger.ClaimView memory c, uint256 seed) internal pure returns (uint256) {
        uint256 maxValue = c.value - c.locked;
        if (maxValue == c.value) maxValue = c.value - 1;
        return _bound(seed, 1, maxValue == 0 ? 1 : maxValue);
    }

    function _signedRequest(address holder, address to, bytes memory data, uint256 mode)
        internal
        returns (TierflowForwarder.ForwardRequestData memory request)
    {
        TierflowForwarder forwarder = TierflowForwarder(ledger.trustedForwarder());
        request = TierflowForwarder.ForwardRequestData({
            from: holder,
            to: address(ledger),
            value: 0,
            gas: 2_000_000,
            nonce: ++_relayNonce,
            deadline: uint48(mode == 7 ? ghostTime - 1 : ghostTime + 1 hours),
            data: data,
            signature: ""
        });
        uint256 key = _keys[holder];
        if (mode == 6) key = _keys[to] == 0 || _keys[to] == key ? key + 1 : _keys[to];
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, forwarder.hashRequest(request));
        request.signature = abi.encodePacked(r, s, v);
    }

    function _relayAndCheck(uint256 id, TierflowForwarder.ForwardRequestData memory request, uint256 mode)
        internal
    {
        TierflowForwarder forwarder = TierflowForwarder(ledger.trustedForwarder());
        uint256 countBefore = ledger.claimCount();
        bytes32 before = claimHash(id);
        try forwarder.execute(request) {
            if (mode >= 6) ++relayViolations; // an invalid request ran
        } catch {
            if (mode < 6) ++relayViolations; // a valid request runs (its inner call may fail)
        }
        bytes32 afterFirst = claimHash(id);
        uint256 countAfter = ledger.claimCount();
        if (mode >= 6 && (afterFirst != before || countAfter != countBefore)) ++relayViolations;
        for (uint256 child = countBefore + 1; child <= countAfter; ++child) _recordClaim(child);
        if (afterFirst != before) _succeeded("relayedMove");
        if (mode >= 6) return;
        try forwarder.execute(request) {
            ++relayViolations; // a replay ran
        } catch {}
        if (claimHash(id) != afterFirst || ledger.claimCount() != countAfter) ++relayViolations;
    }

    /// @notice ERC-3525 `transferFrom(id, to, value)` by the holder or by an operator it
    /// approved (a value allowance or an operator for all): part of a piece, or all of it (the
    /// piece itself passes, I-1). The operator is a member that may not hold pieces (the
    /// clearing agent) or, unchecked, anyone.
    function transferValue(uint256 claimSeed, uint256 toSeed, uint256 valueSeed, uint256 modeSeed)
        external
        step("transferValue")
    {
        (uint256 id, bool found) = _findMovable(claimSeed);
        if (!found) return;
        IClaimLedger.ClaimView memory c = ledger.claim(id);
        address to = _recipient(toSeed, c.holder);
        uint256 available = c.value - c.locked;
        uint256 value = valueSeed % 4 == 0 ? c.value : _bound(valueSeed, 1, available == 0 ? 1 : available);
        if (_unchecked(claimSeed)) value = valueSeed;
        address caller = _authorise(id, c.holder, value, modeSeed);
        vm.prank(caller);
        try ledger.transferFrom(id, to, value) returns (uint256 got) {
            _succeeded("transferValue");
            _recordClaim(got);
        } catch {}
    }

    /// @notice ERC-721 `transferFrom` / `safeTransferFrom(holder, to, id)` by the holder, the
    /// piece's approved address or an operator for all the holder's pieces.
    function transfer721(uint256 claimSeed, uint256 toSeed, uint256 modeSeed, bool safe) external step("transfer721") {
        (uint256 id, bool found) = _findMovable(claimSeed);
        if (!found) return;
        address holder = ledger.claim(id).holder;
        address to = _recipient(toSeed, holder);
        address caller = _authorise(id, holder, type(uint256).max, modeSeed);
        vm.prank(caller);
        if (safe) {
            try ledger.safeTransferFrom(holder, to, id) {
                _succeeded("transfer721");
            } catch {}
        } else {
            try ledger.transferFrom(holder, to, id) {
                _succeeded("transfer721");
            } catch {}
        }
    }

    /// @notice The operator freezes a live piece (court order).
    function freeze(uint256 claimSeed) external step("freeze") {
        (uint256 id, bool found) = _findLive(claimSeed, false);
        if (!found) return;
        vm.prank(operator);
        try ledger.freezeClaim(id, keccak256(abi.encode("court order", id))) {
            _succeededAlways("freeze");
        } catch {}
    }

    /// @notice The operator lifts a freeze.
    function unfreeze(uint256 claimSeed) external step("unfreeze") {
        (uint256 id, bool found) = _findLive(claimSeed, true);
        if (!found) return;
        vm.prank(operator);
        try ledger.unfreezeClaim(id) {
            _succeededAlways("unfreeze");
        } catch {}
    }

    // ================================================================== financing

    /// @notice The holder applies to a financier for part (or all) of a piece's unlocked value.
    function applyFinancing(uint256 claimSeed, uint256 finSeed, uint256 amountSeed, uint256 expirySeed)
        external
        step("apply")
    {
        _apply(claimSeed, finSeed, amountSeed, expirySeed);
    }

    function _apply(uint256 claimSeed, uint256 finSeed, uint256 amountSeed, uint256 expirySeed)
        internal
        returns (uint256)
    {
        (uint256 id, bool found) = _findMovable(claimSeed);
        if (!found) return 0;
        IClaimLedger.ClaimView memory c = ledger.claim(id);
        address financier = _financiers[finSeed % _financiers.length];
        if (financier == c.holder) financier = _financiers[(finSeed % _financiers.length + 1) % _financiers.length];
        uint256 available = c.value - c.locked;
        uint256 amount = amountSeed % 5 == 0 ? available : _bound(amountSeed, 1, available == 0 ? 1 : available);
        if (_unchecked(claimSeed)) amount = amountSeed;
        // Half the applications stay open until the last second before the due date.
        uint64 expiresAt = c.dueDate > ghostTime + 1
            ? uint64(expirySeed % 2 == 0 ? c.dueDate - 1 : _bound(expirySeed, ghostTime + 1, c.dueDate - 1))
            : uint64(ghostTime + 1);
        vm.prank(c.holder);
        return _tryApply(id, financier, uint128(amount), expiresAt, expirySeed % 3 == 0);
    }

    /// @dev The applicant commits to no minimum advance and to the recourse its seed picks.
    function _tryApply(uint256 id, address financier, uint128 amount, uint64 expiresAt, bool recourse)
        internal
        returns (uint256)
    {
        try desk.applyForFinancing(id, financier, amount, expiresAt, 0, recourse) returns (uint256 fid) {
            _succeeded("apply");
            return fid;
        } catch {}
        return 0;
    }

    /// @notice Apply and approve back to back, as under a financier's auto-approval policy.
    function applyAndApprove(uint256 claimSeed, uint256 finSeed, uint256 amountSeed, uint256 rateSeed)
        external
        step("applyAndApprove")
    {
        uint256 fid = _apply(claimSeed, finSeed, amountSeed, rateSeed);
        if (fid != 0) _approve(fid, rateSeed, amountSeed, false);
    }

    /// @notice The named financier approves with terms priced by the market convention.
    function approve(uint256 finSeed, uint256 rateSeed, uint256 feeSeed, bool dayLess) external step("approve") {
        (uint256 fid, bool found) = _findApplied(finSeed);
        if (found) _approve(fid, rateSeed, feeSeed, dayLess);
    }

    function _approve(uint256 fid, uint256 rateSeed, uint256 feeSeed, bool dayLess) internal {
        IFinancingDesk.Financing memory f = desk.financing(fid);
        IFinancingDesk.Terms memory t = _price(f, rateSeed, feeSeed, dayLess);
        vm.prank(f.financier);
        try desk.approveFinancing(fid, t) returns (uint256 financedId) {
            _succeeded("approve");
            _recordClaim(financedId);
            // The financed piece must be the financier's, financed, and exactly the amount.
            IClaimLedger.ClaimView memory c = ledger.claim(financedId);
            if (c.holder != f.financier || !c.financed || c.value != f.amount) ++approvalHolderViolations;
            (uint128 outstanding, uint128 limit) = desk.exposure(f.financier, ledger.getPayable(c.payableId).obligor);
            if (outstanding > limit) ++approvalExposureViolations;
        } catch {}
    }

    /// @notice The financier declines.
    function reject(uint256 finSeed) external step("reject") {
        (uint256 fid, bool found) = _findApplied(finSeed);
        if (!found) return;
        vm.prank(desk.financing(fid).financier);
        try desk.rejectFinancing(fid, keccak256("declined")) {
            _succeeded("reject");
        } catch {}
    }

    /// @notice The applicant withdraws.
    function withdraw(uint256 finSeed) external step("withdraw") {
        (uint256 fid, bool found) = _findApplied(finSeed);
        if (!found) return;
        vm.prank(desk.financing(fid).applicant);
        try desk.withdrawFinancing(fid) {
            _succeeded("withdraw");
        } catch {}
    }

    /// @notice Anyone expires a lapsed application; the clock moves to its expiry when that is
    /// close, so expiries actually happen.
    function expire(uint256 finSeed, uint256 callerSeed) external step("expire") {
        (uint256 fid, bool found) = _findApplied(finSeed);
        if (!found) return;
        uint256 expiresAt = desk.financing(fid).expiresAt;
        if (expiresAt > ghostTime && expiresAt - ghostTime <= MAX_WARP) _warpTo(expiresAt);
        vm.prank(_everyone[callerSeed % _everyone.length]);
        try desk.expireFinancing(fid) {
            _succeeded("expire");
        } catch {}
    }

    // ================================================================== settlement

    /// @notice The obligor or the payable's clearing agent records the payment of one piece,
    /// citing the one bank payment to its holder for the payable (shared by the holder's
    /// pieces, so a reference is cited again legitimately). With `citeLast` it cites the last
    /// single settlement's reference instead: that must fail for another holder or payable.
    function settle(uint256 claimSeed, bool byAgent, bool citeLast) external step("settle") {
        (uint256 id, bool found) = _findSettleable(claimSeed);
        if (!found) return;
        IClaimLedger.ClaimView memory c = ledger.claim(id);
        uint256 pid = c.payableId;
        address settler = _settler(pid, byAgent);
        bytes32 ref = citeLast && _lastPaymentRef != 0
            ? _lastPaymentRef
            : keccak256(abi.encode("bank ref", c.holder, pid));
        IClaimLedger.SettlementReference memory paid = ledger.settlementReference(ref);
        vm.prank(settler);
        try ledger.settleClaim(id, ref) {
            _succeeded("settle");
            if (paid.holder != address(0) && (paid.holder != c.holder || paid.payableId != pid)) {
                ++paymentRefViolations;
            }
            _lastPaymentRef = ref;
            _snapshotClaim(id);
            _snapshotPayableIfTerminal(pid);
        } catch {}
    }

    /// @notice The obligor records a batch of pieces (of any of its payables). Sometimes one
    /// already-settled piece is appended: the whole batch must then revert and change nothing.
    function settleBatch(uint256 claimSeed, uint256 countSeed, bool poison) external step("settleBatch") {
        (uint256 first, bool found) = _findSettleable(claimSeed);
        if (!found) return;
        address obligor = ledger.getPayable(ledger.claim(first).payableId).obligor;
        uint256[] memory ids = _collectSettleable(first, obligor, _bound(countSeed, 1, MAX_BATCH), poison);
        bytes32[] memory refs = new bytes32[](ids.length);
        for (uint256 i; i < ids.length; ++i) refs[i] = keccak256(abi.encode("batch ref", ids[i]));
        vm.prank(obligor);
        try ledger.settleClaims(ids, refs) {
            _succeeded("settleBatch");
            for (uint256 i; i < ids.length; ++i) {
                _snapshotClaim(ids[i]);
                _snapshotPayableIfTerminal(ledger.claim(ids[i]).payableId);
            }
        } catch {
            // All or nothing: no piece of a reverted batch may have become Settled.
            for (uint256 i; i < ids.length; ++i) {
                if (claimSnapshot[ids[i]] == 0 && ledger.claim(ids[i]).status == IClaimLedger.ClaimStatus.Settled) {
                    ++batchAtomicityViolations;
                }
            }
        }
    }

    // ================================================================== time and pause

    /// @notice Time passes (forward only).
    function warp(uint256 secondsSeed) external step("warp") {
        _warpTo(ghostTime + _bound(secondsSeed, 1, MAX_WARP));
        _succeededAlways("warp");
    }

    /// @notice Jumps to a payable's boundary: due − 1 s, the due date, or just past the grace.
    function warpToBoundary(uint256 payableSeed, uint256 modeSeed) external step("warpToBoundary") {
        if (_payableIds.length == 0) return;
        IClaimLedger.Payable memory p = ledger.getPayable(_payableIds[payableSeed % _payableIds.length]);
        uint256 mode = modeSeed % 3;
        uint256 target = mode == 0 ? p.dueDate - 1 : (mode == 1 ? p.dueDate : p.dueDate + ledger.GRACE_PERIOD() + 1);
        if (target <= ghostTime) return;
        _warpTo(target);
        _succeededAlways("warpToBoundary");
    }

    /// @notice The operator pauses the platform for the next few calls (see `step`); every
    /// business call in between must fail.
    function pause(uint256 seed) external step("pause") {
        // Pause rarely so the fuzzer still reaches deep states.
        if (ghostPaused || seed % 2 != 0) return;
        vm.prank(operator);
        members.pause();
        ghostPaused = true;
        _pausedSteps = 0;
        _succeededAlways("pause");
    }

    // ================================================================== views for the invariants

    function payableIds() external view returns (uint256[] memory) {
        return _payableIds;
    }

    function claimIds() external view returns (uint256[] memory) {
        return _claimIds;
    }

    function cores() external view returns (address[] memory) {
        return _cores;
    }

    function financiers() external view returns (address[] memory) {
        return _financiers;
    }

    function holders() external view returns (address[] memory) {
        return _holders;
    }

    function claimHash(uint256 id) public view returns (bytes32) {
        return keccak256(abi.encode(ledger.claim(id)));
    }

    function payableHash(uint256 pid) public view returns (bytes32) {
        return keccak256(abi.encode(ledger.getPayable(pid)));
    }

    // ================================================================== internals

    /// @dev Who calls a standard transfer of `value` of piece `id` (max: the whole token): the
    /// holder (mode 0), or an operator after the holder approved it (1: the token or a value
    /// allowance of `value`, 2: all its pieces). Approvals are business calls too (pause-gated).
    function _authorise(uint256 id, address holder, uint256 value, uint256 modeSeed) internal returns (address op) {
        uint256 mode = modeSeed % 3;
        if (mode == 0) return holder;
        op = _unchecked(modeSeed) ? _everyone[modeSeed % _everyone.length] : _agent;
        if (op == holder) return holder;
        vm.prank(holder);
        if (mode == 2) {
            try ledger.setApprovalForAll(op, true) {
                _succeeded("approvals");
            } catch {}
        } else if (value == type(uint256).max) {
            try ledger.approve(op, id) {
                _succeeded("approvals");
            } catch {}
        } else {
            try ledger.approve(id, op, value) {
                _succeeded("approvals");
            } catch {}
        }
    }

    function _succeeded(bytes32 op) internal {
        ++successes[op];
        if (op != "approvals") ++businessSuccesses;
        if (ghostPaused) ++pausedSuccesses;
    }

    /// @dev Operator actions that pause does not gate.
    function _succeededAlways(bytes32 op) internal {
        ++successes[op];
    }

    function _recordClaim(uint256 id) internal {
        if (id == 0 || _knownClaim[id]) return;
        _knownClaim[id] = true;
        _claimIds.push(id);
    }

    function _snapshotClaim(uint256 id) internal {
        if (claimSnapshot[id] == 0) claimSnapshot[id] = claimHash(id);
    }

    function _snapshotPayableIfTerminal(uint256 pid) internal {
        IClaimLedger.PayableStatus s = ledger.getPayable(pid).status;
        bool terminal = s == IClaimLedger.PayableStatus.Settled || s == IClaimLedger.PayableStatus.Cancelled;
        if (terminal && payableSnapshot[pid] == 0) payableSnapshot[pid] = payableHash(pid);
    }

    function _warpTo(uint256 t) internal {
        ghostTime = t;
        vm.warp(t);
    }

    /// @dev One call in eight skips the pre-checks that keep inputs valid (hashed, because the
    /// fuzzer favours small and edge values, which would otherwise all land on one side).
    function _unchecked(uint256 seed) internal pure returns (bool) {
        return uint256(keccak256(abi.encode(seed, "unchecked"))) % 8 == 0;
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (min >= max) return min;
        if (x >= min && x <= max) return x;
        return min + (x % (max - min + 1));
    }

    function _addHolder(address a) internal {
        for (uint256 i; i < _holders.length; ++i) {
            if (_holders[i] == a) return;
        }
        _holders.push(a);
    }

    function _isSupplier(address a) internal view returns (bool) {
        for (uint256 i; i < _suppliers.length; ++i) {
            if (_suppliers[i] == a) return true;
        }
        return false;
    }

    /// @dev A member other than `holder` that may receive a piece (or, unchecked, anyone).
    function _recipient(uint256 seed, address holder) internal view returns (address to) {
        if (_unchecked(seed)) return _everyone[seed % _everyone.length];
        to = _holders[seed % _holders.length];
        if (to == holder) to = _holders[(seed % _holders.length + 1) % _holders.length];
    }

    function _settler(uint256 pid, bool byAgent) internal view returns (address) {
        IClaimLedger.Payable memory p = ledger.getPayable(pid);
        return byAgent && p.clearingAgent != address(0) ? p.clearingAgent : p.obligor;
    }

    function _freshInvoice(address seller, address buyer, uint128 amount) internal returns (bytes32 id) {
        ++_nonce;
        id = keccak256(abi.encode("handler invoice", _nonce));
        vm.prank(seller);
        try invoices.registerInvoice(id, buyer, amount, uint64(ghostTime), keccak256(abi.encode("doc", _nonce))) {
            _invoiceIds.push(id);
        } catch {
            return bytes32(0);
        }
        vm.prank(buyer);
        try invoices.confirmInvoice(id) {}
        catch {
            return bytes32(0);
        }
    }

    /// @dev 1–3 confirmed invoices from `supplier` to `core` whose total covers `face`.
    function _freshInvoices(address supplier, address core, uint128 face, uint256 seed)
        internal
        returns (bytes32[] memory ids)
    {
        uint256 n = 1 + (seed >> 8) % 3;
        ids = new bytes32[](n);
        uint128 share = face / uint128(n) + 1;
        for (uint256 i; i < n; ++i) {
            ids[i] = _freshInvoice(supplier, core, share);
            if (ids[i] == 0) return new bytes32[](0);
        }
    }

    /// @dev Terms the financier would quote: termDays = ceil((due − now) / 1 day), or one less.
    function _price(IFinancingDesk.Financing memory f, uint256 rateSeed, uint256 feeSeed, bool dayLess)
        internal
        view
        returns (IFinancingDesk.Terms memory t)
    {
        uint256 due = ledger.claim(f.claimId).dueDate;
        uint256 termDays = due > ghostTime ? (due - ghostTime + 1 days - 1) / 1 days : 0;
        if (dayLess && termDays > 0) --termDays;
        uint256 rate = _bound(rateSeed, 0, 2_000); // up to 20 % a year
        uint256 discount = desk.discountFor(f.amount, rate, termDays);
        if (discount >= f.amount) {
            rate = 0;
            discount = 0;
        }
        uint256 fees = _bound(feeSeed, 0, f.amount - discount - 1);
        t = IFinancingDesk.Terms({
            advance: uint128(f.amount - discount - fees),
            discount: uint128(discount),
            fees: uint128(fees),
            annualRateBps: uint32(rate),
            termDays: uint16(termDays),
            recourse: f.recourse, // what the applicant committed to (other recourse reverts)
            registrationNo: keccak256(abi.encode("registry no", f.claimId, f.amount, f.expiresAt, ghostTime)),
            disbursementRef: keccak256(abi.encode("disbursement", f.claimId, f.amount, f.expiresAt, ghostTime))
        });
    }

    // ---------------------------------------------------------------- finders
    // Each scans the ghost list from a seeded start for the first entry in the wanted state,
    // so the fuzzer spends its calls on actions that can succeed. Unchecked seeds take the
    // start entry as it is.

    function _findPayable(uint256 seed, IClaimLedger.PayableStatus want) internal view returns (uint256, bool) {
        uint256 n = _payableIds.length;
        if (n == 0) return (0, false);
        if (_unchecked(seed)) return (_payableIds[seed % n], true);
        for (uint256 k; k < n; ++k) {
            uint256 pid = _payableIds[(seed % n + k) % n];
            if (ledger.getPayable(pid).status == want) return (pid, true);
        }
        return (0, false);
    }

    function _findMovable(uint256 seed) internal view returns (uint256, bool) {
        uint256 n = _claimIds.length;
        if (n == 0) return (0, false);
        if (_unchecked(seed)) return (_claimIds[seed % n], true);
        for (uint256 k; k < n; ++k) {
            uint256 id = _claimIds[(seed % n + k) % n];
            IClaimLedger.ClaimView memory c = ledger.claim(id);
            if (_isLive(c.status) && !c.frozen && ghostTime < c.dueDate && c.value > c.locked) return (id, true);
        }
        return (0, false);
    }

    function _findLive(uint256 seed, bool frozen) internal view returns (uint256, bool) {
        uint256 n = _claimIds.length;
        if (n == 0) return (0, false);
        if (_unchecked(seed)) return (_claimIds[seed % n], true);
        for (uint256 k; k < n; ++k) {
            uint256 id = _claimIds[(seed % n + k) % n];
            IClaimLedger.ClaimView memory c = ledger.claim(id);
            if (_isLive(c.status) && c.frozen == frozen) return (id, true);
        }
        return (0, false);
    }

    function _findSettleable(uint256 seed) internal view returns (uint256, bool) {
        uint256 n = _claimIds.length;
        if (n == 0) return (0, false);
        if (_unchecked(seed)) return (_claimIds[seed % n], true);
        for (uint256 k; k < n; ++k) {
            uint256 id = _claimIds[(seed % n + k) % n];
            if (_settleable(id)) return (id, true);
        }
        return (0, false);
    }

    /// @dev Due, live, not frozen and with no pending application (those are expired first).
    function _settleable(uint256 id) internal view returns (bool) {
        IClaimLedger.ClaimView memory c = ledger.claim(id);
        return _isLive(c.status) && !c.frozen && ghostTime >= c.dueDate && c.locked == 0;
    }

    function _collectSettleable(uint256 first, address obligor, uint256 want, bool poison)
        internal
        view
        returns (uint256[] memory ids)
    {
        uint256[] memory buf = new uint256[](want + 1);
        uint256 count;
        buf[count++] = first;
        for (uint256 k; k < _claimIds.length && count < want; ++k) {
            uint256 id = _claimIds[k];
            if (id == first || !_settleable(id)) continue;
            if (ledger.getPayable(ledger.claim(id).payableId).obligor != obligor) continue;
            buf[count++] = id;
        }
        if (poison) {
            for (uint256 k; k < _claimIds.length; ++k) {
                if (ledger.claim(_claimIds[k]).status == IClaimLedger.ClaimStatus.Settled) {
                    buf[count++] = _claimIds[k];
                    break;
                }
            }
        }
        ids = new uint256[](count);
        for (uint256 i; i < count; ++i) ids[i] = buf[i];
    }

    function _findApplied(uint256 seed) internal view returns (uint256, bool) {
        uint256 n = desk.financingCount();
        if (n == 0) return (0, false);
        for (uint256 k; k < n; ++k) {
            uint256 fid = 1 + (seed % n + k) % n;
            if (desk.financing(fid).status == IFinancingDesk.FinancingStatus.Applied) return (fid, true);
        }
        return (0, false);
    }

    function _isLive(IClaimLedger.ClaimStatus s) internal pure returns (bool) {
        return s != IClaimLedger.ClaimStatus.Settled && s != IClaimLedger.ClaimStatus.Cancelled
            && s != IClaimLedger.ClaimStatus.None;
    }
}
