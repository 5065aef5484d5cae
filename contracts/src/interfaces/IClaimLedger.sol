// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC3525} from "./IERC3525.sol";

/// @title Tierflow claim ledger: payables (ERC-3525 slots), claim pieces (tokens) and settlement
/// @notice A payable is the obligor's confirmed debt to a supplier; issuing it mints the root
/// claim piece. Splitting is the ERC-3525 value transfer `transferFrom(fromId, to, value)`,
/// which records the new piece's parent and depth. At maturity the obligor or the payable's
/// clearing agent records, piece by piece, that the holder was paid. Money never sits here.
///
/// Invariants kept by every function (SPEC §3): for each payable, live piece values plus
/// settled value equal the face value (I-1); no piece has value 0; the obligor's outstanding
/// face value stays within its program limit (I-2); nothing moves at or after the due date and
/// settlement starts at the due date (I-7); Settled and Cancelled absorb (I-8).
interface IClaimLedger is IERC3525 {
    enum PayableStatus {
        None,
        Issued,
        Overdue,
        Settled,
        Cancelled
    }

    /// @notice Frozen overrides Locked/Financed/Active while set.
    enum ClaimStatus {
        None,
        Active,
        Locked,
        Financed,
        Settled,
        Frozen,
        Cancelled
    }

    struct Payable {
        address obligor;
        uint64 dueDate;
        PayableStatus status;
        address supplier;
        uint64 issuedAt;
        address clearingAgent;
        uint40 rootClaimId;
        uint128 faceValue;
        uint128 settledValue;
    }

    /// @notice One claim piece in its packed storage form (two slots).
    struct Claim {
        address holder;
        uint32 payableId;
        uint40 parentId;
        uint16 depth;
        uint8 flags;
        uint128 value;
        uint128 locked;
    }

    /// @notice A view of a claim piece with its derived status.
    struct ClaimView {
        uint256 id;
        uint256 payableId;
        uint256 parentId;
        uint256 depth;
        address holder;
        uint256 value;
        uint256 locked;
        ClaimStatus status;
        bool frozen;
        bool financed;
        uint64 dueDate;
    }

    /// @notice A payable's overdue clock (SPEC §2). It runs from the due date and stands still
    /// while the platform is paused or any piece of the payable is frozen; the payable may be
    /// marked Overdue once it has run longer than the grace period (see {overdueFrom}).
    struct PayableClock {
        uint40 frozenPieces; // pieces of the payable frozen now
        uint64 frozenSince; // when `frozenPieces` last rose from zero
        uint64 frozenSeconds; // ended freezes: seconds at or after the due date frozen and not paused
    }

    /// @notice What a bank payment reference paid (one slot): the holder and the payable. A
    /// payment goes to one holder; it may cover several of that holder's pieces of the payable,
    /// in one batch or several, but never another holder's or another payable's (SPEC §2).
    struct SettlementReference {
        address holder; // zero: the reference was never cited
        uint32 payableId;
    }

    struct ObligorAccount {
        uint128 programLimit;
        uint128 outstanding;
        uint64 previousOverdueAt; // the two latest overdue times (overdueFrom at marking)
        uint64 lastOverdueAt; // of the obligor's payables marked Overdue; previous ≤ last
    }

    // ---- payables ----
    error PayableNotFound(uint256 payableId);
    error PayableStatusInvalid(uint256 payableId, PayableStatus status);
    error PayableFaceValueInvalid(uint256 faceValue);
    error PayableDueDateInvalid(uint64 dueDate, uint64 latestDueDate);
    error PayableInvoiceCountInvalid(uint256 count);
    error PayableInvoicesInsufficient(uint256 invoiceTotal, uint256 faceValue);
    error PayableLimitExceeded(address obligor, uint256 outstanding, uint256 programLimit);
    /// @dev The obligor's program limit was lowered below its outstanding face value: no new
    /// payable until the outstanding value is back under the limit.
    error PayableObligorOverLimit(address obligor, uint256 outstanding, uint256 programLimit);
    error PayableNotCancellable(uint256 payableId);
    error PayableNotOverdueYet(uint256 payableId, uint256 overdueFrom);
    /// @dev The clearing agent named at issue is the payable's own supplier (it would settle
    /// the pieces it sold on).
    error PayableClearingAgentInvalid(address clearingAgent);
    error PayableSupplierInvalid(address supplier);
    error PayableNotSettler(uint256 payableId, address caller);
    error PayableNotDue(uint256 payableId, uint64 dueDate);
    // ---- claims ----
    error ClaimNotFound(uint256 claimId);
    error ClaimNotHolder(uint256 claimId, address caller);
    /// @dev A clearing agent recording the payment of a piece it holds itself (its own word
    /// that it was paid).
    error ClaimSettlerIsHolder(uint256 claimId, address clearingAgent);
    error ClaimIsFrozen(uint256 claimId);
    error ClaimNotFrozen(uint256 claimId);
    error ClaimNotLive(uint256 claimId, ClaimStatus status);
    error ClaimPastDueDate(uint256 claimId, uint64 dueDate);
    error ClaimAmountInvalid(uint256 amount);
    error ClaimAmountExceedsAvailable(uint256 claimId, uint256 amount, uint256 available);
    error ClaimValueLocked(uint256 claimId, uint256 locked);
    error ClaimRecipientInvalid(address recipient);
    error ClaimTradeInvoiceRequired();
    error ClaimDepthExceeded(uint256 claimId);
    error ClaimMergeUnsupported();
    error ClaimOwnerZero();
    /// @dev An approval names the zero address or the approver itself as operator.
    error ClaimOperatorInvalid(address operator);
    /// @dev An operator moves more value than the holder allowed it on this piece.
    error ClaimAllowanceExceeded(uint256 claimId, address operator, uint256 allowance, uint256 value);
    /// @dev A contract recipient refused the piece or its value (ERC-3525 / ERC-721 receiver).
    error ClaimReceiverRejected(address recipient);
    // ---- settlement ----
    error SettlementBatchInvalid(uint256 length, uint256 maxLength);
    error SettlementReferenceInvalid();
    /// @dev The payment reference already paid `holder` for `payableId`: citing it for another
    /// holder or payable would count one bank payment twice.
    error SettlementReferenceUsed(bytes32 paymentRef, address holder, uint256 payableId);
    // ---- wiring ----
    error LedgerCallerUnauthorized(address caller);
    error LedgerConfigInvalid();

    event PayableIssued(
        uint256 indexed payableId,
        address indexed obligor,
        address indexed supplier,
        uint256 rootClaimId,
        uint128 faceValue,
        uint64 dueDate,
        address clearingAgent,
        bytes32[] invoiceIds,
        bool longTerm
    );
    event PayableCancelled(uint256 indexed payableId, uint256 rootClaimId);
    /// @notice `overdueFrom`: when the payable fell overdue (its {overdueFrom} at marking), the
    /// time the three-in-OVERDUE_WINDOW rule counts.
    event PayableOverdue(
        uint256 indexed payableId, address indexed obligor, uint128 unsettledValue, uint64 overdueFrom
    );
    event PayableSettled(uint256 indexed payableId);
    /// @notice The limit may be set below the outstanding face value: `overLimit` says so, and
    /// the obligor issues nothing until it is back under.
    event ProgramLimitSet(address indexed obligor, uint128 programLimit, uint128 outstanding, bool overLimit);

    /// @notice `value` split off `parentId` into the new piece `claimId` held by `to`.
    event ClaimSplit(
        uint256 indexed parentId,
        uint256 indexed claimId,
        uint256 indexed payableId,
        address from,
        address to,
        uint128 value,
        uint16 depth,
        bytes32 invoiceId
    );
    /// @notice The whole piece `claimId` passed from `from` to `to`.
    event ClaimTransferred(uint256 indexed claimId, address indexed from, address indexed to, bytes32 invoiceId);
    event ClaimFrozen(uint256 indexed claimId, bytes32 reasonHash);
    event ClaimUnfrozen(uint256 indexed claimId);
    /// @notice The holder of `claimId` was paid `value`, evidenced by the bank `paymentRef` hash.
    event ClaimSettled(
        uint256 indexed claimId, uint256 indexed payableId, address indexed holder, uint128 value, bytes32 paymentRef
    );
    event FinancingDeskBound(address financingDesk);

    /// @notice Issues a payable from the caller (obligor) to `supplier` and mints its root piece.
    /// Requirements: not paused; caller an active core enterprise; supplier an active supplier
    /// other than the caller; clearing agent zero or an active clearing agent; 0 < face; now <
    /// dueDate ≤ now + TERM_CAP; 1..MAX_INVOICES confirmed invoices from supplier to caller
    /// totalling ≥ face; outstanding + face ≤ program limit.
    /// Emits {PayableIssued}, {InvoiceUsed} per invoice and the ERC-3525 mint events.
    function issuePayable(
        address supplier,
        uint128 faceValue,
        uint64 dueDate,
        bytes32[] calldata invoiceIds,
        address clearingAgent
    ) external returns (uint256 payableId, uint256 rootClaimId);

    /// @notice The supplier declines an untouched payable before its due date.
    /// Requirements: not paused; caller holds the root piece, which was never split,
    /// transferred or locked and is not frozen. Releases the invoices and the limit. Emits {PayableCancelled}, {InvoiceReleased}.
    function cancelPayable(uint256 payableId) external;

    /// @notice Anyone marks a payable Overdue once its overdue clock has run longer than the
    /// grace period with value unpaid (now past {overdueFrom}: seconds after the due date while
    /// the platform was paused or a piece of it frozen do not count); a third overdue payable
    /// of the obligor within OVERDUE_WINDOW suspends it, the payables' overdue times (their
    /// {overdueFrom} at marking) compared, not when they were marked. Requirements: not
    /// paused; Issued.
    /// Emits {PayableOverdue} (and {MemberSuspended} on suspension).
    function markOverdue(uint256 payableId) external;

    /// @notice Sets the obligor's program limit, also below its outstanding face value (the
    /// event then says it is over its limit). Requirements: operator; obligor a core
    /// enterprise. Emits {ProgramLimitSet}.
    function setProgramLimit(address obligor, uint128 programLimit) external;

    /// @notice Splits `value` off piece `fromId` to `to`, citing the trade-background invoice
    /// `invoiceId` (zero for none, unless the deployment requires one).
    /// Requirements: not paused; caller the active holder; `to` an active supplier or
    /// financier other than the caller; 0 < value < unlocked value; before the due date; not
    /// frozen. Emits {ClaimSplit} (and ERC-3525 events).
    function split(uint256 fromId, address to, uint256 value, bytes32 invoiceId) external returns (uint256 claimId);

    /// @notice Transfers the whole piece `claimId` to `to`; same requirements as {split} and the
    /// piece must hold no locked value. Emits {ClaimTransferred} (and ERC-721 Transfer).
    function transferClaim(uint256 claimId, address to, bytes32 invoiceId) external;

    /// @notice Court order: freezes a live piece; while any piece is frozen its payable's overdue
    /// clock stands still. Requirements: operator. Emits {ClaimFrozen}.
    function freezeClaim(uint256 claimId, bytes32 reasonHash) external;

    /// @notice Lifts a freeze; the payable's clock runs again once none of its pieces is frozen.
    /// Requirements: operator. Emits {ClaimUnfrozen}.
    function unfreezeClaim(uint256 claimId) external;

    /// @notice Records that the holder of `claimId` was paid. Requirements: not paused; caller
    /// the obligor or the payable's clearing agent, active with its role and not the piece's
    /// holder; now ≥ due date; piece live and not frozen; no value locked by a pending
    /// application (expire it first); `paymentRef` non-zero and, if cited before, cited for
    /// this piece's holder and payable (one bank payment pays one holder; see
    /// {settlementReference}).
    /// Emits {ClaimSettled} (and {PayableSettled} on the last piece).
    function settleClaim(uint256 claimId, bytes32 paymentRef) external;

    /// @notice {settleClaim} for up to MAX_SETTLEMENT_BATCH pieces, all or nothing.
    function settleClaims(uint256[] calldata claimIds, bytes32[] calldata paymentRefs) external;

    // ---- hook for the member registry ----
    /// @notice Opens the piece counter of a newly registered supplier or financier (a storage
    /// write paid at onboarding, so its first piece is not dearer than the next). Only the
    /// deployment's MemberRegistry may call it (I-13); it changes no view.
    function openHolderAccount(address account) external;

    // ---- hooks for the financing desk ----
    /// @notice Locks `amount` of the piece for a financing application by its holder `applicant`.
    function lockForFinancing(uint256 claimId, address applicant, uint128 amount)
        external
        returns (address obligor, uint64 dueDate);
    /// @notice Unlocks `amount` after a rejection, withdrawal or expiry.
    function unlockFromFinancing(uint256 claimId, uint128 amount) external;
    /// @notice Moves the locked `amount` to `financier` (split, or whole transfer when it is all
    /// of the piece) and marks the received piece Financed. Returns the financed piece id.
    function financeLocked(uint256 claimId, uint128 amount, address financier) external returns (uint256);

    // ---- views ----
    function getPayable(uint256 payableId) external view returns (Payable memory);
    function payableInvoices(uint256 payableId) external view returns (bytes32[] memory);
    function claim(uint256 claimId) external view returns (ClaimView memory);
    function obligorAccount(address obligor) external view returns (ObligorAccount memory);
    /// @notice The payable's freeze bookkeeping for its overdue clock.
    function payableClock(uint256 payableId) external view returns (PayableClock memory);
    /// @notice As of now: due date + grace period + the seconds since the due date that the
    /// overdue clock stood still (platform paused, or a piece of the payable frozen). The
    /// payable may be marked Overdue once block time is past it; while the clock stands still
    /// the answer grows second by second. Reverts {PayableNotFound} for an unknown payable.
    function overdueFrom(uint256 payableId) external view returns (uint256);
    /// @notice The holder and payable `paymentRef` paid (zeros: never cited).
    function settlementReference(bytes32 paymentRef) external view returns (SettlementReference memory);
    function payableCount() external view returns (uint256);
    function claimCount() external view returns (uint256);
}
