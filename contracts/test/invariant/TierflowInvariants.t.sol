// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {FuzzSelector} from "../utils/TestBase.sol";
import {TierflowBase} from "../utils/TierflowBase.sol";
import {Handler} from "./Handler.sol";
import {IClaimLedger} from "../../src/interfaces/IClaimLedger.sol";
import {IFinancingDesk} from "../../src/interfaces/IFinancingDesk.sol";
import {IInvoiceRegistry} from "../../src/interfaces/IInvoiceRegistry.sol";

/// @title TierflowInvariants
/// @notice SPEC §3 invariants checked after every handler call: the fuzzer drives issue,
/// split, transfer, financing (apply / approve / reject / withdraw / expire), settlement
/// (single and batch), overdue, freeze, cancel, pause and time through the Handler; every
/// invariant below reads the contracts' own views and compares them with each other or with
/// the handler's ghosts. Budget: FOUNDRY_PROFILE=default (CI) or long (see foundry.toml).
contract TierflowInvariants is TierflowBase {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        address[] memory coreList = new address[](2);
        coreList[0] = coreA;
        coreList[1] = coreB;
        address[] memory supplierList = new address[](4);
        supplierList[0] = supplier1;
        supplierList[1] = supplier2;
        supplierList[2] = supplier3;
        supplierList[3] = traderBank;
        address[] memory financierList = new address[](3);
        financierList[0] = bank;
        financierList[1] = factor;
        financierList[2] = traderBank;
        address[] memory others = new address[](3);
        others[0] = agent;
        others[1] = auditor;
        others[2] = outsider;
        handler = new Handler(
            members, invoices, ledger, desk, admin, coreList, supplierList, financierList, others, agent
        );
        address[10] memory keyed = [coreA, coreB, supplier1, supplier2, supplier3, bank, factor, traderBank, agent, outsider];
        for (uint256 i; i < keyed.length; ++i) handler.setKey(keyed[i], actorKeys[keyed[i]]);

        // Weighted: the actions that build deep state appear more than once.
        bytes4[] memory selectors = new bytes4[](39);
        selectors[0] = Handler.issue.selector;
        selectors[1] = Handler.issue.selector;
        selectors[2] = Handler.issue.selector;
        selectors[3] = Handler.split.selector;
        selectors[4] = Handler.split.selector;
        selectors[5] = Handler.split.selector;
        selectors[6] = Handler.transferWhole.selector;
        selectors[7] = Handler.applyFinancing.selector;
        selectors[8] = Handler.applyFinancing.selector;
        selectors[9] = Handler.approve.selector;
        selectors[10] = Handler.approve.selector;
        selectors[11] = Handler.reject.selector;
        selectors[12] = Handler.withdraw.selector;
        selectors[13] = Handler.expire.selector;
        selectors[14] = Handler.settle.selector;
        selectors[15] = Handler.settle.selector;
        selectors[16] = Handler.settleBatch.selector;
        selectors[17] = Handler.markOverdue.selector;
        selectors[18] = Handler.cancel.selector;
        selectors[19] = Handler.freeze.selector;
        selectors[20] = Handler.unfreeze.selector;
        selectors[21] = Handler.setProgramLimit.selector;
        selectors[22] = Handler.reinstate.selector;
        selectors[23] = Handler.warp.selector;
        selectors[24] = Handler.warp.selector;
        selectors[25] = Handler.warpToBoundary.selector;
        selectors[26] = Handler.pause.selector;
        selectors[27] = Handler.applyAndApprove.selector;
        selectors[28] = Handler.relayedMove.selector;
        selectors[29] = Handler.relayedMove.selector;
        selectors[30] = Handler.transferValue.selector;
        selectors[31] = Handler.transferValue.selector;
        selectors[32] = Handler.transfer721.selector;
        selectors[33] = Handler.suspend.selector;
        selectors[34] = Handler.shortenKyc.selector;
        selectors[35] = Handler.renewKyc.selector;
        selectors[36] = Handler.voidInvoice.selector;
        selectors[37] = Handler.setExposureLimit.selector;
        selectors[38] = Handler.reinstate.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    // ------------------------------------------------------------------ the invariant

    /// @dev Every piece and payable, read once per check through the contracts' views and
    /// indexed by id (ids are sequential from 1; index 0 stays empty).
    struct World {
        IClaimLedger.ClaimView[] claims;
        IClaimLedger.Payable[] payables;
    }

    /// @notice Every property below, after every handler call. One entry point means one
    /// fuzzing campaign checks them all (forge runs a separate campaign per invariant_*
    /// function, and the checks dominate the cost); the assertion messages name the
    /// property that broke.
    function invariant_tierflow() public view {
        _checkGhostListsComplete();
        World memory w = _load();
        _checkConservation(w);
        _checkLockedWithinValue(w);
        _checkNoDoubleFinancing(w);
        _checkExposureMatchesFinancedPieces(w);
        _checkObligorOutstanding(w);
        _checkInvoicesBackPayables(w);
        _checkTerminalStatesAbsorb(w);
        _checkHolderBalances(w);
        _checkPauseGatesBusiness();
        _checkOverdueClock(w);
        assertEq(handler.relayViolations(), 0, "I-12: an invalid or replayed request ran, or a valid one was refused");
    }

    function _load() internal view returns (World memory w) {
        uint256 nc = ledger.claimCount();
        uint256 np = ledger.payableCount();
        w.claims = new IClaimLedger.ClaimView[](nc + 1);
        w.payables = new IClaimLedger.Payable[](np + 1);
        for (uint256 id = 1; id <= nc; ++id) w.claims[id] = ledger.claim(id);
        for (uint256 pid = 1; pid <= np; ++pid) w.payables[pid] = ledger.getPayable(pid);
    }

    // ------------------------------------------------------------------ completeness

    /// @notice The handler saw every payable and piece the ledger created (so its snapshots
    /// and counters cover them all).
    function _checkGhostListsComplete() internal view {
        assertEq(handler.payableIds().length, ledger.payableCount(), "every payable tracked");
        assertEq(handler.claimIds().length, ledger.claimCount(), "every piece tracked");
    }

    // ------------------------------------------------------------------ I-1 conservation

    /// @notice For every payable, live piece values + settledValue == faceValue; settledValue is
    /// exactly the value of its Settled pieces; no piece has value 0; a piece belongs to an
    /// existing payable; a cancelled payable has its whole face on the cancelled root and
    /// nothing settled; a payable is Settled exactly when every piece is paid.
    function _checkConservation(World memory w) internal pure {
        uint256 np = w.payables.length - 1;
        uint256[] memory live = new uint256[](np + 1);
        uint256[] memory settled = new uint256[](np + 1);
        for (uint256 id = 1; id < w.claims.length; ++id) {
            IClaimLedger.ClaimView memory c = w.claims[id];
            assertTrue(c.value > 0, "I-1: a piece with value 0");
            assertTrue(c.payableId >= 1 && c.payableId <= np, "I-2: a piece without a payable");
            if (c.status == IClaimLedger.ClaimStatus.Settled) settled[c.payableId] += c.value;
            else if (c.status != IClaimLedger.ClaimStatus.Cancelled) live[c.payableId] += c.value;
        }
        for (uint256 pid = 1; pid <= np; ++pid) {
            IClaimLedger.Payable memory p = w.payables[pid];
            if (p.status == IClaimLedger.PayableStatus.Cancelled) {
                assertEq(live[pid] + settled[pid] + p.settledValue, 0, "I-1: cancelled payable keeps value");
                assertEq(w.claims[p.rootClaimId].value, p.faceValue, "I-1: cancelled root lost value");
                continue;
            }
            assertEq(live[pid] + p.settledValue, p.faceValue, "I-1: live + settled != face");
            assertEq(settled[pid], p.settledValue, "I-1: settledValue != settled pieces");
            bool allPaid = p.settledValue == p.faceValue;
            assertEq(p.status == IClaimLedger.PayableStatus.Settled, allPaid, "Settled iff every piece paid");
        }
    }

    /// @notice Locked value never exceeds a piece's value.
    function _checkLockedWithinValue(World memory w) internal pure {
        for (uint256 id = 1; id < w.claims.length; ++id) {
            assertLe(w.claims[id].locked, w.claims[id].value, "locked > value");
        }
    }

    // ------------------------------------------------------------------ I-4 / I-5 financing

    /// @notice No double financing: the Applied applications on a piece add up to exactly its
    /// locked value (so a unit of value is locked by at most one application); every approved
    /// financing's piece was its financier's, financed and of exactly the amount at approval;
    /// terms satisfy 0 < advance and advance + discount + fees == amount.
    function _checkNoDoubleFinancing(World memory w) internal view {
        uint256[] memory lockedByApps = new uint256[](w.claims.length);
        uint256 nf = desk.financingCount();
        for (uint256 fid = 1; fid <= nf; ++fid) {
            IFinancingDesk.Financing memory f = desk.financing(fid);
            if (f.status == IFinancingDesk.FinancingStatus.Applied) {
                lockedByApps[f.claimId] += f.amount;
            } else if (f.status == IFinancingDesk.FinancingStatus.Approved) {
                assertTrue(f.advance > 0, "I-5: advance == 0");
                assertEq(uint256(f.advance) + f.discount + f.fees, f.amount, "I-5: terms != amount");
                assertTrue(f.financedClaimId != 0, "approved without a financed piece");
            }
        }
        for (uint256 id = 1; id < w.claims.length; ++id) {
            assertEq(w.claims[id].locked, lockedByApps[id], "I-4: locked != pending applications");
        }
        assertEq(handler.approvalHolderViolations(), 0, "I-4: financed piece not held by its financier");
    }

    /// @notice Each financier's exposure per obligor equals the value of the live Financed
    /// pieces it holds under that obligor, and was within its limit whenever an approval made
    /// it grow (a financier may lower its limit below what it has outstanding: then it
    /// approves nothing more there until back under); only financiers hold Financed pieces.
    function _checkExposureMatchesFinancedPieces(World memory w) internal view {
        address[] memory fins = handler.financiers();
        address[] memory obligors = handler.cores();
        uint256[] memory sums = new uint256[](fins.length * obligors.length);
        for (uint256 id = 1; id < w.claims.length; ++id) {
            IClaimLedger.ClaimView memory c = w.claims[id];
            if (!c.financed || !_live(c.status)) continue;
            uint256 fi = _indexOf(fins, c.holder);
            assertTrue(fi < fins.length, "I-4: Financed piece held by a non-financier");
            sums[fi * obligors.length + _indexOf(obligors, w.payables[c.payableId].obligor)] += c.value;
        }
        for (uint256 a; a < fins.length; ++a) {
            for (uint256 b; b < obligors.length; ++b) {
                (uint128 outstanding,) = desk.exposure(fins[a], obligors[b]);
                assertEq(outstanding, sums[a * obligors.length + b], "exposure != financed pieces held");
            }
        }
        assertEq(handler.approvalExposureViolations(), 0, "exposure above its limit after an approval");
    }

    // ------------------------------------------------------------------ I-2 obligor books

    /// @notice An obligor's outstanding equals the unsettled face of its Issued and Overdue
    /// payables, and never exceeded its program limit when a payable was issued.
    function _checkObligorOutstanding(World memory w) internal view {
        address[] memory obligors = handler.cores();
        uint256[] memory owed = new uint256[](obligors.length);
        for (uint256 pid = 1; pid < w.payables.length; ++pid) {
            IClaimLedger.Payable memory p = w.payables[pid];
            if (p.status == IClaimLedger.PayableStatus.Issued || p.status == IClaimLedger.PayableStatus.Overdue) {
                owed[_indexOf(obligors, p.obligor)] += p.faceValue - p.settledValue;
            }
        }
        for (uint256 i; i < obligors.length; ++i) {
            assertEq(ledger.obligorAccount(obligors[i]).outstanding, owed[i], "I-2: outstanding != unsettled face");
        }
        assertEq(handler.issueLimitViolations(), 0, "I-2: outstanding above the program limit at issue");
    }

    /// @notice Every payable that is not cancelled is backed by Used invoices totalling at
    /// least its face (I-2, I-3).
    function _checkInvoicesBackPayables(World memory w) internal view {
        for (uint256 pid = 1; pid < w.payables.length; ++pid) {
            if (w.payables[pid].status == IClaimLedger.PayableStatus.Cancelled) continue;
            bytes32[] memory inv = ledger.payableInvoices(pid);
            uint256 total;
            for (uint256 i; i < inv.length; ++i) {
                IInvoiceRegistry.Invoice memory x = invoices.invoice(inv[i]);
                assertEq(uint256(x.status), uint256(IInvoiceRegistry.InvoiceStatus.Used), "I-3: backing invoice not Used");
                total += x.amount;
            }
            assertTrue(total >= w.payables[pid].faceValue, "I-2: face above its invoices");
        }
    }

    // ------------------------------------------------------------------ I-8 terminal states

    /// @notice Once Settled or Cancelled, a payable or piece never changes again (its whole
    /// view hashes to the snapshot the handler took at the transition); and nothing became
    /// terminal by a path the handler did not see; a reverted settlement batch settled nothing.
    function _checkTerminalStatesAbsorb(World memory w) internal view {
        for (uint256 id = 1; id < w.claims.length; ++id) {
            bytes32 snap = handler.claimSnapshot(id);
            IClaimLedger.ClaimStatus s = w.claims[id].status;
            bool terminal = s == IClaimLedger.ClaimStatus.Settled || s == IClaimLedger.ClaimStatus.Cancelled;
            assertEq(snap != 0, terminal, "I-8: piece left or entered a terminal state unseen");
            if (snap != 0) assertEq(keccak256(abi.encode(w.claims[id])), snap, "I-8: terminal piece changed");
        }
        for (uint256 pid = 1; pid < w.payables.length; ++pid) {
            bytes32 snap = handler.payableSnapshot(pid);
            IClaimLedger.PayableStatus s = w.payables[pid].status;
            bool terminal = s == IClaimLedger.PayableStatus.Settled || s == IClaimLedger.PayableStatus.Cancelled;
            assertEq(snap != 0, terminal, "I-8: payable left or entered a terminal state unseen");
            if (snap != 0) assertEq(keccak256(abi.encode(w.payables[pid])), snap, "I-8: terminal payable changed");
        }
        assertEq(handler.batchAtomicityViolations(), 0, "a reverted settlement batch settled a piece");
        assertEq(handler.paymentRefViolations(), 0, "a payment reference paid two holders or payables");
    }

    // ------------------------------------------------------------------ ERC-721 books, pause

    /// @notice balanceOf(holder) counts exactly the not-cancelled pieces it holds, and only
    /// members that may hold (suppliers, financiers) hold pieces.
    function _checkHolderBalances(World memory w) internal view {
        address[] memory hs = handler.holders();
        uint256[] memory counts = new uint256[](hs.length);
        for (uint256 id = 1; id < w.claims.length; ++id) {
            if (w.claims[id].status == IClaimLedger.ClaimStatus.Cancelled) continue;
            uint256 h = _indexOf(hs, w.claims[id].holder);
            assertTrue(h < hs.length, "a piece held by a member that may not hold");
            ++counts[h];
        }
        for (uint256 i; i < hs.length; ++i) {
            assertEq(ledger.balanceOf(hs[i]), counts[i], "ERC-721 balance != pieces held");
        }
    }

    /// @notice I-11: no business mutator succeeded while the platform was paused.
    function _checkPauseGatesBusiness() internal view {
        assertEq(handler.pausedSuccesses(), 0, "I-11: a business call succeeded while paused");
    }

    /// @notice The overdue clock (SPEC §2): a payable's count of frozen pieces is exactly its
    /// pieces that are frozen now, and its deadline is never before due date + grace.
    function _checkOverdueClock(World memory w) internal view {
        uint256[] memory frozen = new uint256[](w.payables.length);
        for (uint256 id = 1; id < w.claims.length; ++id) {
            if (w.claims[id].frozen) ++frozen[w.claims[id].payableId];
        }
        uint256 grace = ledger.GRACE_PERIOD();
        for (uint256 pid = 1; pid < w.payables.length; ++pid) {
            assertEq(ledger.payableClock(pid).frozenPieces, frozen[pid], "overdue clock: frozen pieces miscounted");
            assertTrue(ledger.overdueFrom(pid) >= w.payables[pid].dueDate + grace, "overdue clock: deadline too early");
        }
    }

    // ------------------------------------------------------------------ statistics

    /// @notice With TIERFLOW_INVARIANT_STATS=1, appends each run's handler calls and successes
    /// per action to build/invariant-stats.txt (successes/calls; applyAndApprove's successes
    /// are counted under apply and approve) (docs/testing.md shows how to sum them), so
    /// anyone can check the fuzzer still reaches deep states after changing the handler.
    /// tests/contracts/test_forge_and_slither.py sums them over the campaign, prints them and
    /// fails when a kind of call never succeeded (a budget that exercises nothing fails).
    function afterInvariant() public {
        if (!vm.envOr("TIERFLOW_INVARIANT_STATS", false)) return;
        string memory line = string.concat(
            "run pieces=", vm.toString(ledger.claimCount()), " financings=", vm.toString(desk.financingCount())
        );
        line = string.concat(
            line, " business=", vm.toString(handler.businessSuccesses()), "/", vm.toString(handler.totalCalls())
        );
        line = string.concat(line, " issue=", _stat("issue"));
        line = string.concat(line, " split=", _stat("split"));
        line = string.concat(line, " transferWhole=", _stat("transferWhole"));
        line = string.concat(line, " relayedMove=", _stat("relayedMove"));
        line = string.concat(line, " apply=", _stat("apply"));
        line = string.concat(line, " approve=", _stat("approve"));
        line = string.concat(line, " applyAndApprove=", _stat("applyAndApprove"));
        line = string.concat(line, " reject=", _stat("reject"));
        line = string.concat(line, " withdraw=", _stat("withdraw"));
        line = string.concat(line, " expire=", _stat("expire"));
        line = string.concat(line, " settle=", _stat("settle"));
        line = string.concat(line, " settleBatch=", _stat("settleBatch"));
        line = string.concat(line, " markOverdue=", _stat("markOverdue"));
        line = string.concat(line, " cancel=", _stat("cancel"));
        line = string.concat(line, " freeze=", _stat("freeze"));
        line = string.concat(line, " unfreeze=", _stat("unfreeze"));
        line = string.concat(line, " setProgramLimit=", _stat("setProgramLimit"));
        line = string.concat(line, " reinstate=", _stat("reinstate"));
        line = string.concat(line, " pause=", _stat("pause"));
        line = string.concat(line, " warp=", _stat("warp"));
        line = string.concat(line, " warpToBoundary=", _stat("warpToBoundary"));
        line = string.concat(line, " transferValue=", _stat("transferValue"));
        line = string.concat(line, " transfer721=", _stat("transfer721"));
        line = string.concat(line, " approvals=", vm.toString(handler.successes("approvals")));
        line = string.concat(line, " suspend=", _stat("suspend"));
        line = string.concat(line, " shortenKyc=", _stat("shortenKyc"));
        line = string.concat(line, " renewKyc=", _stat("renewKyc"));
        line = string.concat(line, " voidInvoice=", _stat("voidInvoice"));
        line = string.concat(line, " setExposureLimit=", _stat("setExposureLimit"));
        vm.writeLine("build/invariant-stats.txt", line);
    }

    function _stat(bytes32 op) internal view returns (string memory) {
        return string.concat(vm.toString(handler.successes(op)), "/", vm.toString(handler.calls(op)));
    }

    // ------------------------------------------------------------------ helpers

    function _live(IClaimLedger.ClaimStatus s) internal pure returns (bool) {
        return s != IClaimLedger.ClaimStatus.Settled && s != IClaimLedger.ClaimStatus.Cancelled;
    }

    /// @dev Index of `a` in `list`, or list.length when absent.
    function _indexOf(address[] memory list, address a) internal pure returns (uint256 i) {
        while (i < list.length && list[i] != a) ++i;
    }
}
