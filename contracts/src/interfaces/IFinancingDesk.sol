// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @title Tierflow financing desk: a holder sells part of a claim piece to a financier
/// @notice Applying locks the value at once, so no second application or transfer can use it.
/// Approving moves exactly the financed value to the financier in the same transaction. Each
/// financier caps its outstanding financed value per obligor with an exposure limit.
/// Discount convention: ceil(amount × annualRateBps × termDays / (360 × 10 000)), that is
/// `face × annual rate × days / 360` rounded in the financier's favour by less than one unit.
/// The applicant commits to its terms when it applies: the least advance it accepts
/// (`minAdvance`) and the recourse it accepts; an approval that gives less, or other recourse,
/// reverts (I-12). A registration number, and a disbursement reference, back one financing only.
interface IFinancingDesk {
    enum FinancingStatus {
        None,
        Applied,
        Approved,
        Rejected,
        Withdrawn,
        Expired
    }

    struct Financing {
        uint40 claimId;
        address applicant;
        FinancingStatus status;
        bool recourse; // committed by the applicant at apply time; the approval must match it
        uint40 expiresAt;
        address financier;
        uint32 annualRateBps;
        uint40 financedClaimId;
        uint128 amount;
        uint128 minAdvance; // the least advance the applicant accepts
        uint128 advance;
        uint128 discount;
        uint128 fees;
        bytes32 registrationNo;
        bytes32 disbursementRef;
    }

    /// @notice Approval terms set by the financier.
    struct Terms {
        uint128 advance;
        uint128 discount;
        uint128 fees;
        uint32 annualRateBps;
        uint16 termDays;
        bool recourse;
        bytes32 registrationNo;
        bytes32 disbursementRef;
    }

    error FinancingNotFound(uint256 financingId);
    error FinancingNotPending(uint256 financingId, FinancingStatus status);
    error FinancingNotFinancier(uint256 financingId, address caller);
    error FinancingNotApplicant(uint256 financingId, address caller);
    error FinancingAmountInvalid(uint256 amount);
    error FinancingExpiryInvalid(uint64 expiresAt, uint64 dueDate);
    error FinancingHasExpired(uint256 financingId, uint64 expiresAt);
    error FinancingNotExpired(uint256 financingId, uint64 expiresAt);
    error FinancingFinancierInvalid(address financier);
    error FinancingTermsInvalid(uint256 advance, uint256 discount, uint256 fees, uint256 amount);
    error FinancingTermDaysInvalid(uint256 termDays, uint256 daysToMaturity);
    error FinancingDiscountInvalid(uint256 discount, uint256 expected);
    error FinancingRegistrationRequired(uint256 financingId);
    error FinancingExposureExceeded(address financier, address obligor, uint256 exposure, uint256 limit);
    error FinancingCallerNotLedger(address caller);
    /// @dev At apply: the least advance asked for is more than the amount applied for.
    error FinancingMinAdvanceInvalid(uint256 minAdvance, uint256 amount);
    /// @dev At approval: the advance is below what the applicant committed to accept.
    error FinancingAdvanceBelowMinimum(uint256 financingId, uint256 advance, uint256 minAdvance);
    /// @dev At approval: the recourse differs from what the applicant committed to accept.
    error FinancingRecourseMismatch(uint256 financingId, bool committed);
    /// @dev At approval: the registration number already backs financing `financingId`.
    error FinancingRegistrationUsed(bytes32 registrationNo, uint256 financingId);
    /// @dev At approval: the disbursement reference already backs financing `financingId`.
    error FinancingDisbursementUsed(bytes32 disbursementRef, uint256 financingId);
    /// @dev The deployment's addresses do not name this contract (a wrong prediction).
    error FinancingPlatformInvalid();

    event FinancingApplied(
        uint256 indexed financingId,
        uint256 indexed claimId,
        address indexed applicant,
        address financier,
        uint128 amount,
        uint64 expiresAt,
        uint128 minAdvance,
        bool recourse
    );
    event FinancingApproved(
        uint256 indexed financingId,
        uint256 indexed financedClaimId,
        address indexed financier,
        uint128 advance,
        uint128 discount,
        uint128 fees,
        uint32 annualRateBps,
        bool recourse,
        bytes32 registrationNo,
        bytes32 disbursementRef
    );
    event FinancingRejected(uint256 indexed financingId, bytes32 reasonHash);
    event FinancingWithdrawn(uint256 indexed financingId);
    event FinancingExpired(uint256 indexed financingId);
    /// @notice The limit may be set below the outstanding exposure: `overLimit` says so, and no
    /// approval for this obligor passes until the outstanding value is back under the limit.
    event ExposureLimitSet(
        address indexed financier, address indexed obligor, uint128 exposureLimit, uint128 outstanding, bool overLimit
    );
    /// @notice A financed piece was settled or passed on: its value no longer counts as exposure.
    event ExposureReleased(address indexed financier, address indexed obligor, uint256 indexed claimId, uint128 value);

    /// @notice The caller applies to `financier` for `amount` of its piece `claimId`, committing
    /// to accept no advance below `minAdvance` and only the given `recourse`.
    /// Requirements: not paused; caller the active holder; financier an active financier other
    /// than the caller; 0 < amount ≤ unlocked value; minAdvance ≤ amount; now < expiresAt < due
    /// date; piece not frozen. Emits {FinancingApplied}.
    function applyForFinancing(
        uint256 claimId,
        address financier,
        uint128 amount,
        uint64 expiresAt,
        uint128 minAdvance,
        bool recourse
    ) external returns (uint256 financingId);

    /// @notice The named financier approves: the locked amount moves to it in this transaction.
    /// Requirements: not paused; caller the application's active financier; status Applied and
    /// not expired; minAdvance ≤ advance and the recourse the applicant committed to;
    /// 0 < advance; advance + discount + fees = amount; termDays is the days to
    /// maturity (ceil) or one less; the applicant still an active member; discount per the convention above; registration number set
    /// when the deployment requires it; a non-zero registration number or disbursement reference
    /// not used by an earlier approval; exposure + amount ≤ the financier's limit for the obligor.
    /// Emits {FinancingApproved} (and the claim's {ClaimSplit} or {ClaimTransferred}).
    function approveFinancing(uint256 financingId, Terms calldata terms) external returns (uint256 financedClaimId);

    /// @notice The financier declines. Emits {FinancingRejected}.
    function rejectFinancing(uint256 financingId, bytes32 reasonHash) external;

    /// @notice The applicant withdraws. Emits {FinancingWithdrawn}.
    function withdrawFinancing(uint256 financingId) external;

    /// @notice Anyone expires an application once `expiresAt` has passed. Emits {FinancingExpired}.
    function expireFinancing(uint256 financingId) external;

    /// @notice The caller (a financier) caps its outstanding financed value for `obligor`. A
    /// limit below the outstanding value is allowed (the event says the obligor is over it).
    /// Emits {ExposureLimitSet}.
    function setExposureLimit(address obligor, uint128 exposureLimit) external;

    /// @notice Hook from the claim ledger when a financed piece is settled or passed on.
    function releaseExposure(address financier, address obligor, uint256 claimId, uint128 value) external;

    function financing(uint256 financingId) external view returns (Financing memory);
    function exposure(address financier, address obligor) external view returns (uint128 outstanding, uint128 limit);
    function financingCount() external view returns (uint256);
    /// @notice The financing a registration number backs (0: none).
    function financingOfRegistration(bytes32 registrationNo) external view returns (uint256);
    /// @notice The financing a disbursement reference backs (0: none).
    function financingOfDisbursement(bytes32 disbursementRef) external view returns (uint256);
}
