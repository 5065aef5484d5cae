// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {Context} from "@openzeppelin/contracts/utils/Context.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";
import {Platform} from "./Platform.sol";
import {Roles} from "./Roles.sol";

/// @dev The one ClaimLedger hook the registry calls (the ledger's interface imports ours).
interface IHolderAccounts {
    function openHolderAccount(address account) external;
}

/// @title MemberRegistry
/// @notice Members, their roles and KYC, and the platform-wide pause. The default admin hands
/// over in two steps with a delay (AccessControlDefaultAdminRules) and grants the operator
/// role; in production it is a TimelockController, never the platform's operator account
/// (docs/consent.md). Operators administer the business roles. An auditor holds no business
/// role, however a role is granted. Actors are taken from `_msgSender()` (ERC-2771): a request relayed by the
/// platform's TierflowForwarder acts as the member who signed it.
contract MemberRegistry is IMemberRegistry, AccessControlDefaultAdminRules, Pausable, ERC2771Context {
    bytes32 public constant OPERATOR_ROLE = Roles.OPERATOR;
    bytes32 public constant CORE_ENTERPRISE_ROLE = Roles.CORE_ENTERPRISE;
    bytes32 public constant SUPPLIER_ROLE = Roles.SUPPLIER;
    bytes32 public constant FINANCIER_ROLE = Roles.FINANCIER;
    bytes32 public constant CLEARING_AGENT_ROLE = Roles.CLEARING_AGENT;
    bytes32 public constant AUDITOR_ROLE = Roles.AUDITOR;
    /// @notice Reason recorded when the ledger suspends an obligor for overdue payables.
    bytes32 public constant OVERDUE_REASON = keccak256("OVERDUE_PAYABLES");

    /// @notice The claim ledger, the only caller of {suspendForOverdue} (fixed at deployment).
    address public immutable LEDGER;

    mapping(address account => Member) private _members;

    /// @dev One entry of the pause log, in one slot: a pause at `at` stores 2·(at − P) + 1 and
    /// an unpause at `at` stores 2·P, P being the seconds paused before `at`; the paused seconds
    /// up to any time t then follow from the last entry at or before t (`_pausedBefore`).
    struct PauseMark {
        uint48 at;
        uint208 value;
    }

    /// @dev The pause log: a pause stops every payable's overdue clock (SPEC §2), so the ledger
    /// asks how long the platform was paused between two times. Every pause and unpause
    /// appends one mark (never overwrites one, so its gas does not depend on the block time:
    /// an estimate made in the pause's own second holds when mined later). Pauses are rare
    /// operator actions; a lookup is a binary search.
    PauseMark[] private _pauseLog;

    /// @param adminDelay seconds a default-admin handover waits before it can be accepted
    /// @param admin the first default admin (grants and revokes the operator role)
    /// @param operator the first operator (the platform's operator account; the same account as
    /// `admin` only in test fixtures: a deployment keeps them apart)
    /// @param platform the deployment's contract addresses (this one's among them)
    constructor(uint48 adminDelay, address admin, address operator, Platform memory platform)
        AccessControlDefaultAdminRules(adminDelay, admin)
        ERC2771Context(platform.forwarder)
    {
        if (platform.members != address(this) || platform.ledger == address(0) || platform.forwarder == address(0)) {
            revert MemberPlatformInvalid();
        }
        LEDGER = platform.ledger;
        _setRoleAdmin(Roles.CORE_ENTERPRISE, Roles.OPERATOR);
        _setRoleAdmin(Roles.SUPPLIER, Roles.OPERATOR);
        _setRoleAdmin(Roles.FINANCIER, Roles.OPERATOR);
        _setRoleAdmin(Roles.CLEARING_AGENT, Roles.OPERATOR);
        _setRoleAdmin(Roles.AUDITOR, Roles.OPERATOR);
        _grantRole(Roles.OPERATOR, operator);
    }

    // ------------------------------------------------------------------ operator actions

    /// @inheritdoc IMemberRegistry
    function registerMember(address account, uint256 roles, uint64 kycExpiresAt)
        external
        onlyRole(Roles.OPERATOR)
    {
        if (account == address(0)) revert MemberAddressZero();
        if (_members[account].status != MemberStatus.None) revert MemberAlreadyRegistered(account);
        if (roles == 0 || roles & ~Roles.BUSINESS_MASK != 0) revert MemberRolesInvalid(roles);
        if (roles & Roles.BIT_AUDITOR != 0 && roles != Roles.BIT_AUDITOR) revert MemberAuditorExclusive(account);
        if (kycExpiresAt <= block.timestamp) revert MemberKycExpiryInvalid(kycExpiresAt);
        _members[account] = Member({status: MemberStatus.Active, kycExpiresAt: kycExpiresAt});
        emit MemberRegistered(account, roles, kycExpiresAt);
        if (roles & Roles.BIT_CORE_ENTERPRISE != 0) _grantRole(Roles.CORE_ENTERPRISE, account);
        if (roles & Roles.BIT_SUPPLIER != 0) _grantRole(Roles.SUPPLIER, account);
        if (roles & Roles.BIT_FINANCIER != 0) _grantRole(Roles.FINANCIER, account);
        if (roles & Roles.BIT_CLEARING_AGENT != 0) _grantRole(Roles.CLEARING_AGENT, account);
        if (roles & Roles.BIT_AUDITOR != 0) _grantRole(Roles.AUDITOR, account);
    }

    /// @inheritdoc IMemberRegistry
    function renewKyc(address account, uint64 kycExpiresAt) external onlyRole(Roles.OPERATOR) {
        Member storage m = _registered(account);
        if (kycExpiresAt <= block.timestamp) revert MemberKycExpiryInvalid(kycExpiresAt);
        m.kycExpiresAt = kycExpiresAt;
        emit MemberKycRenewed(account, kycExpiresAt);
    }

    /// @inheritdoc IMemberRegistry
    function suspendMember(address account, bytes32 reasonHash) external onlyRole(Roles.OPERATOR) {
        Member storage m = _registered(account);
        if (m.status != MemberStatus.Active) revert MemberStatusInvalid(account, m.status);
        m.status = MemberStatus.Suspended;
        emit MemberSuspended(account, reasonHash, false);
    }

    /// @inheritdoc IMemberRegistry
    function reinstateMember(address account) external onlyRole(Roles.OPERATOR) {
        Member storage m = _registered(account);
        if (m.status != MemberStatus.Suspended) revert MemberStatusInvalid(account, m.status);
        m.status = MemberStatus.Active;
        emit MemberReinstated(account);
    }

    /// @inheritdoc IMemberRegistry
    function suspendForOverdue(address account) external {
        if (msg.sender != LEDGER) revert MemberCallerNotLedger(msg.sender);
        Member storage m = _members[account];
        if (m.status != MemberStatus.Active) return; // already suspended: no transition
        m.status = MemberStatus.Suspended;
        emit MemberSuspended(account, OVERDUE_REASON, true);
    }

    /// @inheritdoc IMemberRegistry
    function pause() external onlyRole(Roles.OPERATOR) {
        _pause();
        uint48 nowTs = uint48(block.timestamp);
        _pauseLog.push(PauseMark({at: nowTs, value: (uint208(nowTs - _pausedBefore(nowTs)) << 1) | 1}));
    }

    /// @inheritdoc IMemberRegistry
    function unpause() external onlyRole(Roles.OPERATOR) {
        _unpause();
        uint48 nowTs = uint48(block.timestamp);
        _pauseLog.push(PauseMark({at: nowTs, value: uint208(_pausedBefore(nowTs)) << 1}));
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IMemberRegistry
    function member(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @inheritdoc IMemberRegistry
    function rolesOf(address account) external view returns (uint256 roles) {
        if (hasRole(Roles.OPERATOR, account)) roles |= Roles.BIT_OPERATOR;
        if (hasRole(Roles.CORE_ENTERPRISE, account)) roles |= Roles.BIT_CORE_ENTERPRISE;
        if (hasRole(Roles.SUPPLIER, account)) roles |= Roles.BIT_SUPPLIER;
        if (hasRole(Roles.FINANCIER, account)) roles |= Roles.BIT_FINANCIER;
        if (hasRole(Roles.CLEARING_AGENT, account)) roles |= Roles.BIT_CLEARING_AGENT;
        if (hasRole(Roles.AUDITOR, account)) roles |= Roles.BIT_AUDITOR;
    }

    /// @inheritdoc IMemberRegistry
    function isActive(address account) external view returns (bool) {
        Member memory m = _members[account];
        return m.status == MemberStatus.Active && m.kycExpiresAt > block.timestamp;
    }

    /// @inheritdoc IMemberRegistry
    function requireActive(address account, bytes32 role) external view whenNotPaused {
        _requireActive(account);
        if (!hasRole(role, account)) revert MemberRoleMissing(account, role);
    }

    /// @inheritdoc IMemberRegistry
    function requireMember(address account) external view whenNotPaused {
        _requireActive(account);
    }

    /// @inheritdoc IMemberRegistry
    function requireTransfer(address holder, address recipient) external view whenNotPaused {
        _requireActive(holder);
        _requireActive(recipient);
        if (!hasRole(Roles.SUPPLIER, recipient) && !hasRole(Roles.FINANCIER, recipient)) {
            revert MemberRoleMissing(recipient, Roles.SUPPLIER);
        }
    }

    /// @inheritdoc IMemberRegistry
    function requireNotPaused() external view whenNotPaused {}

    /// @inheritdoc IMemberRegistry
    function pausedSeconds(uint64 from, uint64 to) external view returns (uint64) {
        uint256 nowTs = block.timestamp;
        if (to > nowTs) to = uint64(nowTs);
        if (from > to) from = to;
        // both lookups always run: the gas of a caller does not depend on where `from` falls
        return _pausedBefore(uint48(to)) - _pausedBefore(uint48(from));
    }

    /// @dev Both parents declare supportsInterface; AccessControl's answers for ours too.
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(AccessControlDefaultAdminRules)
        returns (bool)
    {
        return interfaceId == type(IMemberRegistry).interfaceId || super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ role grants

    /// @dev Every grant (registration or `grantRole`) of a member role (the business roles and
    /// the auditor's) goes to a registered member only, so the operator cannot give a role to
    /// an account without KYC; and it keeps the auditor apart from the business roles: an
    /// auditor gets no business role, and a member with one never becomes an auditor. A member
    /// that may hold pieces (supplier, financier) gets its piece counter opened by the grant,
    /// however it got the role, so the split that first reaches it costs no more than any
    /// other (docs/gas.md).
    function _grantRole(bytes32 role, address account)
        internal
        override(AccessControlDefaultAdminRules)
        returns (bool)
    {
        bool business = role == Roles.CORE_ENTERPRISE || role == Roles.SUPPLIER || role == Roles.FINANCIER
            || role == Roles.CLEARING_AGENT;
        if ((business || role == Roles.AUDITOR) && _members[account].status == MemberStatus.None) {
            revert MemberNotRegistered(account);
        }
        if (role == Roles.AUDITOR) {
            if (
                hasRole(Roles.CORE_ENTERPRISE, account) || hasRole(Roles.SUPPLIER, account)
                    || hasRole(Roles.FINANCIER, account) || hasRole(Roles.CLEARING_AGENT, account)
            ) revert MemberAuditorExclusive(account);
        } else if (business && hasRole(Roles.AUDITOR, account)) {
            revert MemberAuditorExclusive(account);
        }
        bool granted = super._grantRole(role, account);
        if (granted && (role == Roles.SUPPLIER || role == Roles.FINANCIER)) {
            IHolderAccounts(LEDGER).openHolderAccount(account);
        }
        return granted;
    }

    // ------------------------------------------------------------------ ERC-2771

    function _msgSender() internal view override(Context, ERC2771Context) returns (address) {
        return ERC2771Context._msgSender();
    }

    function _msgData() internal view override(Context, ERC2771Context) returns (bytes calldata) {
        return ERC2771Context._msgData();
    }

    function _contextSuffixLength() internal view override(Context, ERC2771Context) returns (uint256) {
        return ERC2771Context._contextSuffixLength();
    }

    // ------------------------------------------------------------------ internals

    /// @dev Seconds the platform was paused from deployment up to `t` (t ≤ now): from the last
    /// mark at or before `t` (marks are in time order; a pause and an unpause in one second
    /// leave the unpause last, a pause that lasted no time).
    function _pausedBefore(uint48 t) private view returns (uint64) {
        uint256 low = 0;
        uint256 high = _pauseLog.length;
        while (low < high) {
            uint256 mid = (low + high) >> 1;
            if (_pauseLog[mid].at > t) high = mid;
            else low = mid + 1;
        }
        if (low == 0) return 0;
        uint208 v = _pauseLog[low - 1].value;
        return uint64(v & 1 != 0 ? t - (v >> 1) : v >> 1);
    }

    function _registered(address account) private view returns (Member storage m) {
        m = _members[account];
        if (m.status == MemberStatus.None) revert MemberNotRegistered(account);
    }

    function _requireActive(address account) private view {
        Member memory m = _members[account];
        if (m.status == MemberStatus.None) revert MemberNotRegistered(account);
        if (m.status != MemberStatus.Active) revert MemberNotActive(account);
        if (m.kycExpiresAt <= block.timestamp) revert MemberKycExpired(account, m.kycExpiresAt);
    }
}
