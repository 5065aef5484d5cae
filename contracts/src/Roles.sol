// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @title Role identifiers and their bits in a role mask
/// @notice The role ids are AccessControl roles of the MemberRegistry; the bits are how the
/// operator names a set of business roles in one call (`registerMember`) and how `rolesOf`
/// reports them.
library Roles {
    bytes32 internal constant OPERATOR = keccak256("OPERATOR_ROLE");
    bytes32 internal constant CORE_ENTERPRISE = keccak256("CORE_ENTERPRISE_ROLE");
    bytes32 internal constant SUPPLIER = keccak256("SUPPLIER_ROLE");
    bytes32 internal constant FINANCIER = keccak256("FINANCIER_ROLE");
    bytes32 internal constant CLEARING_AGENT = keccak256("CLEARING_AGENT_ROLE");
    bytes32 internal constant AUDITOR = keccak256("AUDITOR_ROLE");

    uint256 internal constant BIT_OPERATOR = 1 << 0;
    uint256 internal constant BIT_CORE_ENTERPRISE = 1 << 1;
    uint256 internal constant BIT_SUPPLIER = 1 << 2;
    uint256 internal constant BIT_FINANCIER = 1 << 3;
    uint256 internal constant BIT_CLEARING_AGENT = 1 << 4;
    uint256 internal constant BIT_AUDITOR = 1 << 5;
    /// @dev The business roles an operator may grant at registration (everything but operator).
    uint256 internal constant BUSINESS_MASK =
        BIT_CORE_ENTERPRISE | BIT_SUPPLIER | BIT_FINANCIER | BIT_CLEARING_AGENT | BIT_AUDITOR;
}
