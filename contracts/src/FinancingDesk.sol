// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IClaimLedger} from "./interfaces/IClaimLedger.sol";
import {IFinancingDesk} from "./interfaces/IFinancingDesk.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";
import {Platform} from "./Platform.sol";
import {Roles} from "./Roles.sol";

/// @title FinancingDesk
/// @notice Financing applications, their approval terms and each financier's exposure per
/// obligor. The claim ledger moves and locks the value; this contract decides when. Actors are
/// taken from `_msgSender()` (ERC-2771, the platform's TierflowForwarder).
contract FinancingDesk is IFinancingDesk, ERC2771Context {
    IMemberRegistry public immutable MEMBERS;
    IClaimLedger public immutable LEDGER;
    /// @notice Whether approval requires the national registry's registration number.
    bool public immutable REGISTRATION_REQUIRED;

    /// @dev 360-day year, rate in basis points: discount = ceil(amount × bps × days / 3 600 000).
    uint256 private constant _DISCOUNT_DENOMINATOR = 360 * 10_000;

    uint40 private _financingCount;
    mapping(uint256 financingId => Financing) private _financings;

    struct Exposure {
        uint128 outstanding;
        uint128 limit;
    }

    mapping(address financier => mapping(address obligor => Exposure)) private _exposures;
    /// @dev The obligor behind each application's piece, captured at apply time.
    mapping(uint256 financingId => address obligor) private _obligorOf;
    /// @dev A registration number, and a disbursement reference, back one financing only.
    mapping(bytes32 registrationNo => uint256 financingId) private _byRegistration;
    mapping(bytes32 disbursementRef => uint256 financingId) private _byDisbursement;

    constructor(Platform memory platform, bool registrationRequired) ERC2771Context(platform.forwarder) {
        if (
            platform.desk != address(this) || platform.members == address(0) || platform.ledger == address(0)
                || platform.forwarder == address(0)
        ) revert FinancingPlatformInvalid();
        MEMBERS = IMemberRegistry(platform.members);
        LEDGER = IClaimLedger(platform.ledger);
        REGISTRATION_REQUIRED = registrationRequired;
    }

    /// @inheritdoc IFinancingDesk
    function applyForFinancing(
        uint256 claimId,
        address financier,
        uint128 amount,
        uint64 expiresAt,
        uint128 minAdvance,
        bool recourse
    ) external returns (uint256 financingId) {
        address applicant = _msgSender();
        if (financier == applicant) revert FinancingFinancierInvalid(financier);
        MEMBERS.requireTransfer(applicant, financier);
        MEMBERS.requireActive(financier, Roles.FINANCIER);
        if (amount == 0) revert FinancingAmountInvalid(amount);
        if (minAdvance > amount) revert FinancingMinAdvanceInvalid(minAdvance, amount);
        (address obligor, uint64 dueDate) = LEDGER.lockForFinancing(claimId, applicant, amount);
        if (expiresAt <= block.timestamp || expiresAt >= dueDate) revert FinancingExpiryInvalid(expiresAt, dueDate);
        financingId = ++_financingCount;
        Financing storage f = _financings[financingId];
        f.claimId = uint40(claimId);
        f.applicant = applicant;
        f.status = FinancingStatus.Applied;
        f.recourse = recourse;
        f.expiresAt = uint40(expiresAt);
        f.financier = financier;
        f.amount = amount;
        f.minAdvance = minAdvance;
        _obligorOf[financingId] = obligor;
        emit FinancingApplied(financingId, claimId, applicant, financier, amount, expiresAt, minAdvance, recourse);
    }

    /// @inheritdoc IFinancingDesk
    function approveFinancing(uint256 financingId, Terms calldata terms) external returns (uint256 financedClaimId) {
        Financing storage f = _pending(financingId);
        address financier = _msgSender();
        if (financier != f.financier) revert FinancingNotFinancier(financingId, financier);
        MEMBERS.requireActive(financier, Roles.FINANCIER);
        // The applicant must still be in good standing when the money moves to it.
        MEMBERS.requireMember(f.applicant);
        if (block.timestamp >= f.expiresAt) revert FinancingHasExpired(financingId, f.expiresAt);
        uint128 amount = f.amount;
        // The applicant's committed terms (I-12): never less advance, never other recourse.
        if (terms.advance < f.minAdvance) {
            revert FinancingAdvanceBelowMinimum(financingId, terms.advance, f.minAdvance);
        }
        if (terms.recourse != f.recourse) revert FinancingRecourseMismatch(financingId, f.recourse);
        _checkTerms(financingId, f.claimId, amount, terms);
        _bookExposure(financier, _obligorOf[financingId], amount);
        _useReferences(financingId, terms.registrationNo, terms.disbursementRef);

        f.status = FinancingStatus.Approved;
        f.annualRateBps = terms.annualRateBps;
        f.advance = terms.advance;
        f.discount = terms.discount;
        f.fees = terms.fees;
        f.registrationNo = terms.registrationNo;
        f.disbursementRef = terms.disbursementRef;
        financedClaimId = LEDGER.financeLocked(f.claimId, amount, financier);
        f.financedClaimId = uint40(financedClaimId);
        _emitApproved(financingId, f);
    }

    /// @inheritdoc IFinancingDesk
    function rejectFinancing(uint256 financingId, bytes32 reasonHash) external {
        MEMBERS.requireNotPaused();
        Financing storage f = _pending(financingId);
        address sender = _msgSender();
        if (sender != f.financier) revert FinancingNotFinancier(financingId, sender);
        f.status = FinancingStatus.Rejected;
        LEDGER.unlockFromFinancing(f.claimId, f.amount);
        emit FinancingRejected(financingId, reasonHash);
    }

    /// @inheritdoc IFinancingDesk
    function withdrawFinancing(uint256 financingId) external {
        MEMBERS.requireNotPaused();
        Financing storage f = _pending(financingId);
        address sender = _msgSender();
        if (sender != f.applicant) revert FinancingNotApplicant(financingId, sender);
        f.status = FinancingStatus.Withdrawn;
        LEDGER.unlockFromFinancing(f.claimId, f.amount);
        emit FinancingWithdrawn(financingId);
    }

    /// @inheritdoc IFinancingDesk
    function expireFinancing(uint256 financingId) external {
        MEMBERS.requireNotPaused();
        Financing storage f = _pending(financingId);
        if (block.timestamp < f.expiresAt) revert FinancingNotExpired(financingId, f.expiresAt);
        f.status = FinancingStatus.Expired;
        LEDGER.unlockFromFinancing(f.claimId, f.amount);
        emit FinancingExpired(financingId);
    }

    /// @inheritdoc IFinancingDesk
    function setExposureLimit(address obligor, uint128 exposureLimit) external {
        address financier = _msgSender();
        MEMBERS.requireActive(financier, Roles.FINANCIER);
        Exposure storage e = _exposures[financier][obligor];
        e.limit = exposureLimit;
        uint128 outstanding = e.outstanding;
        emit ExposureLimitSet(financier, obligor, exposureLimit, outstanding, outstanding > exposureLimit);
    }

    /// @inheritdoc IFinancingDesk
    function releaseExposure(address financier, address obligor, uint256 claimId, uint128 value) external {
        if (msg.sender != address(LEDGER)) revert FinancingCallerNotLedger(msg.sender);
        _exposures[financier][obligor].outstanding -= value;
        emit ExposureReleased(financier, obligor, claimId, value);
    }

    /// @inheritdoc IFinancingDesk
    function financing(uint256 financingId) external view returns (Financing memory) {
        return _financings[financingId];
    }

    /// @inheritdoc IFinancingDesk
    function exposure(address financier, address obligor) external view returns (uint128 outstanding, uint128 limit) {
        Exposure storage e = _exposures[financier][obligor];
        return (e.outstanding, e.limit);
    }

    /// @inheritdoc IFinancingDesk
    function financingCount() external view returns (uint256) {
        return _financingCount;
    }

    /// @inheritdoc IFinancingDesk
    function financingOfRegistration(bytes32 registrationNo) external view returns (uint256) {
        return _byRegistration[registrationNo];
    }

    /// @inheritdoc IFinancingDesk
    function financingOfDisbursement(bytes32 disbursementRef) external view returns (uint256) {
        return _byDisbursement[disbursementRef];
    }

    /// @notice The discount the convention gives for `amount` at `annualRateBps` over `termDays`.
    function discountFor(uint256 amount, uint256 annualRateBps, uint256 termDays) public pure returns (uint256) {
        return Math.mulDiv(amount, annualRateBps * termDays, _DISCOUNT_DENOMINATOR, Math.Rounding.Ceil);
    }

    /// @dev Financing bounds (I-5), the registration number and the discount convention.
    function _checkTerms(uint256 financingId, uint256 claimId, uint128 amount, Terms calldata terms) private view {
        if (terms.advance == 0 || uint256(terms.advance) + terms.discount + terms.fees != amount) {
            revert FinancingTermsInvalid(terms.advance, terms.discount, terms.fees, amount);
        }
        if (REGISTRATION_REQUIRED && terms.registrationNo == bytes32(0)) {
            revert FinancingRegistrationRequired(financingId);
        }
        _checkDiscount(claimId, amount, terms);
    }

    function _bookExposure(address financier, address obligor, uint128 amount) private {
        Exposure storage e = _exposures[financier][obligor];
        uint256 exposureAfter = uint256(e.outstanding) + amount;
        if (exposureAfter > e.limit) revert FinancingExposureExceeded(financier, obligor, exposureAfter, e.limit);
        e.outstanding = uint128(exposureAfter);
    }

    /// @dev A non-zero registration number, and disbursement reference, back one financing only.
    function _useReferences(uint256 financingId, bytes32 registrationNo, bytes32 disbursementRef) private {
        if (registrationNo != bytes32(0)) {
            uint256 earlier = _byRegistration[registrationNo];
            if (earlier != 0) revert FinancingRegistrationUsed(registrationNo, earlier);
            _byRegistration[registrationNo] = financingId;
        }
        if (disbursementRef != bytes32(0)) {
            uint256 earlier = _byDisbursement[disbursementRef];
            if (earlier != 0) revert FinancingDisbursementUsed(disbursementRef, earlier);
            _byDisbursement[disbursementRef] = financingId;
        }
    }

    function _emitApproved(uint256 financingId, Financing storage f) private {
        emit FinancingApproved(
            financingId,
            f.financedClaimId,
            f.financier,
            f.advance,
            f.discount,
            f.fees,
            f.annualRateBps,
            f.recourse,
            f.registrationNo,
            f.disbursementRef
        );
    }

    /// @dev termDays must be today's days to maturity (rounded up) or one less, which covers the
    /// day boundary passing between pricing and mining; the discount must follow the convention.
    function _checkDiscount(uint256 claimId, uint256 amount, Terms calldata terms) private view {
        uint256 dueDate = LEDGER.claim(claimId).dueDate;
        uint256 daysToMaturity = Math.ceilDiv(dueDate - block.timestamp, 1 days);
        if (terms.termDays > daysToMaturity || uint256(terms.termDays) + 1 < daysToMaturity) {
            revert FinancingTermDaysInvalid(terms.termDays, daysToMaturity);
        }
        uint256 expected = discountFor(amount, terms.annualRateBps, terms.termDays);
        if (terms.discount != expected) revert FinancingDiscountInvalid(terms.discount, expected);
    }

    function _pending(uint256 financingId) private view returns (Financing storage f) {
        f = _financings[financingId];
        if (f.status == FinancingStatus.None) revert FinancingNotFound(financingId);
        if (f.status != FinancingStatus.Applied) revert FinancingNotPending(financingId, f.status);
    }
}
