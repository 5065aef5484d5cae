// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @notice The addresses of one deployment's contracts, fixed at deployment (I-13).
/// @dev The deployer predicts every address (CREATE: deployer and nonce) and passes the same
/// struct to each constructor; each contract checks its own entry is its own address, so a
/// wrong prediction fails the deployment instead of wiring a suite to the wrong contracts.
/// Nothing can be granted or re-bound later: the internal hooks (lock, unlock, finance,
/// release, suspend for overdue) accept calls only from these addresses.
struct Platform {
    address forwarder;
    address members;
    address invoices;
    address ledger;
    address desk;
}
