// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title AdminTimelock
/// @notice The MemberRegistry's default admin in production (docs/consent.md, "The operator's
/// powers"): OpenZeppelin's TimelockController, administering itself. Its proposers schedule a
/// role grant (or revocation, or a default-admin handover), anyone may see it pending for
/// `minDelay` seconds, then an executor executes it. The platform's operator account is neither
/// proposer nor executor, so the API service cannot grant roles.
contract AdminTimelock is TimelockController {
    /// @param minDelay seconds between scheduling an operation and executing it
    /// @param proposers accounts that may schedule and cancel operations
    /// @param executors accounts that may execute ready operations (the zero address: anyone)
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
