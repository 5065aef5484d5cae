// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @title Tierflow member registry: who may do business on the platform
/// @notice Each member is one organisation with one chain account. Roles are OpenZeppelin
/// AccessControl roles; the registry adds the member record (status and KYC expiry) and the
/// platform-wide pause that every business contract consults.
interface IMemberRegistry {
    /// @notice A member's life: registered once, then Active ⇄ Suspended.
    enum MemberStatus {
        None,
        Active,
        Suspended
    }

    /// @notice The member record. Roles live in AccessControl, see `rolesOf`.
    struct Member {
        MemberStatus status;
        uint64 kycExpiresAt;
    }

    /// @notice `account` is already a member.
    error MemberAlreadyRegistered(address account);
    /// @notice `account` is not a member.
    error MemberNotRegistered(address account);
    /// @notice `account` is suspended.
    error MemberNotActive(address account);
    /// @notice `account`'s KYC expired at `kycExpiresAt`: no new business until renewed.
    error MemberKycExpired(address account, uint64 kycExpiresAt);
    /// @notice `account` lacks `role` for this action.
    error MemberRoleMissing(address account, bytes32 role);
    /// @notice The member is not in a status this action applies to.
    error MemberStatusInvalid(address account, MemberStatus status);
    /// @notice A KYC expiry must lie in the future.
    error MemberKycExpiryInvalid(uint64 kycExpiresAt);
    /// @notice The zero address cannot be a member.
    error MemberAddressZero();
    /// @notice The role mask names no business role, or a role the operator cannot grant.
    error MemberRolesInvalid(uint256 roles);
    /// @notice An auditor holds no business role (and a member with a business role is no
    /// auditor): `account` would hold the auditor role together with another business role.
    error MemberAuditorExclusive(address account);
    /// @dev An internal hook called by anything but the platform's claim ledger.
    error MemberCallerNotLedger(address caller);
    /// @dev The deployment's addresses do not name this contract (a wrong prediction).
    error MemberPlatformInvalid();

    /// @notice `account` became a member with the business roles in `roles` (see ROLE_* bits).
    event MemberRegistered(address indexed account, uint256 roles, uint64 kycExpiresAt);
    /// @notice `account`'s KYC now expires at `kycExpiresAt`.
    event MemberKycRenewed(address indexed account, uint64 kycExpiresAt);
    /// @notice `account` was suspended; `automatic` when the ledger did it for overdue payables.
    event MemberSuspended(address indexed account, bytes32 reasonHash, bool automatic);
    /// @notice `account` is active again.
    event MemberReinstated(address indexed account);

    /// @notice Registers `account` with the business roles of the bit mask `roles` and a KYC expiry.
    /// Requirements: caller is an operator; `roles` is a non-empty subset of the business roles
    /// (the operator role itself is granted by the default admin through `grantRole`), and names
    /// the auditor role only alone (`MemberAuditorExclusive`). A later `grantRole` of a member
    /// role also needs a registered account (`MemberNotRegistered`); a supplier or financier
    /// role, however granted, opens the member's piece counter on the ledger.
    /// Emits {MemberRegistered} and one {RoleGranted} per role.
    function registerMember(address account, uint256 roles, uint64 kycExpiresAt) external;

    /// @notice Sets a new KYC expiry. Requirements: caller is an operator; expiry in the future.
    /// Emits {MemberKycRenewed}.
    function renewKyc(address account, uint64 kycExpiresAt) external;

    /// @notice Suspends an active member. Requirements: caller is an operator. Emits {MemberSuspended}.
    function suspendMember(address account, bytes32 reasonHash) external;

    /// @notice Reinstates a suspended member. Requirements: caller is an operator. Emits {MemberReinstated}.
    function reinstateMember(address account) external;

    /// @notice Suspends an obligor with too many overdue payables; no-op if already suspended.
    /// Requirements: caller is the deployment's claim ledger (fixed at deployment). Emits {MemberSuspended}.
    function suspendForOverdue(address account) external;

    /// @notice Stops every business mutator of the platform, and every payable's overdue clock
    /// (`pausedSeconds`). Requirements: operator. Emits {Paused}.
    function pause() external;

    /// @notice Resumes business. Requirements: operator. Emits {Unpaused}.
    function unpause() external;

    /// @notice The member record of `account` (status None when not a member).
    function member(address account) external view returns (Member memory);

    /// @notice The business roles of `account` as a bit mask of ROLE_* bits.
    function rolesOf(address account) external view returns (uint256);

    /// @notice True when `account` is a member, not suspended and its KYC has not expired.
    function isActive(address account) external view returns (bool);

    /// @notice Reverts unless the platform is not paused and `account` is active with `role`.
    function requireActive(address account, bytes32 role) external view;

    /// @notice Reverts unless the platform is not paused and `account` is an active member
    /// (any role): registered, not suspended, KYC not expired.
    function requireMember(address account) external view;

    /// @notice Reverts unless a claim may pass from `holder` to `recipient`: the platform is not
    /// paused, both are active, and `recipient` is a supplier or a financier.
    function requireTransfer(address holder, address recipient) external view;

    /// @notice Reverts with {EnforcedPause} while the platform is paused.
    function requireNotPaused() external view;

    /// @notice Seconds the platform was paused between `from` and `to` (`to` capped at now; 0
    /// when `to` ≤ `from`), a pause still in progress counted up to now. The claim ledger's
    /// overdue clock stands still for them (SPEC §2).
    function pausedSeconds(uint64 from, uint64 to) external view returns (uint64);
}
