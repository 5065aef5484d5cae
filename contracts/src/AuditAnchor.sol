// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title AuditAnchor
/// @notice Anchors of the API's hash-chained audit log (SPEC AP-3). The platform's anchoring
/// account writes, at least every minute of activity, the sequence number of the log's last
/// record, the head hash (that record's hash) and the record count. An anchor is stored and
/// emitted, and anchors only move forward: rewriting a record the chain has anchored, or
/// truncating the log below an anchor, is then detected by anyone comparing the database
/// with these anchors (`tierflow audit-verify`), even when every later hash was recomputed.
contract AuditAnchor is AccessControl {
    /// @notice May anchor (the platform's anchoring account); granted by the admin.
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    struct Anchor {
        /// @dev Sequence number of the last record covered (records are numbered from 1).
        uint64 seq;
        /// @dev Records in the log at that point.
        uint64 count;
        /// @dev The block's timestamp when anchored.
        uint64 at;
        /// @dev The log's head hash: the hash of record `seq`.
        bytes32 head;
    }

    Anchor[] private _anchors;

    /// @notice A head was anchored: `index` is its position in {anchorAt}.
    event LogAnchored(uint256 indexed index, uint64 indexed seq, bytes32 head, uint64 count, uint64 at);

    /// @notice The anchor's sequence number is not after the last anchored one.
    error AnchorNotAfterLast(uint64 seq, uint64 lastSeq);
    /// @notice An anchor names no record, more records than its sequence number, or no hash.
    error AnchorInvalid(uint64 seq, uint64 count);
    /// @notice No anchor at this index.
    error AnchorNotFound(uint256 index);
    /// @notice An address given to the constructor is zero.
    error ZeroAddress();

    constructor(address admin, address anchorer) {
        if (admin == address(0) || anchorer == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ANCHORER_ROLE, anchorer);
    }

    /// @notice Anchor the log's head: its last record `seq`, its hash `head`, `count` records.
    /// @return index The anchor's index.
    function anchor(uint64 seq, bytes32 head, uint64 count) external onlyRole(ANCHORER_ROLE) returns (uint256 index) {
        if (seq == 0 || count == 0 || count > seq || head == bytes32(0)) revert AnchorInvalid(seq, count);
        index = _anchors.length;
        if (index > 0) {
            uint64 last = _anchors[index - 1].seq;
            if (seq <= last) revert AnchorNotAfterLast(seq, last);
        }
        uint64 at = uint64(block.timestamp);
        _anchors.push(Anchor({seq: seq, count: count, at: at, head: head}));
        emit LogAnchored(index, seq, head, count, at);
    }

    /// @notice How many anchors there are.
    function anchorCount() external view returns (uint256) {
        return _anchors.length;
    }

    /// @notice The anchor at `index`.
    function anchorAt(uint256 index) external view returns (Anchor memory) {
        if (index >= _anchors.length) revert AnchorNotFound(index);
        return _anchors[index];
    }

    /// @notice The last anchor (all zero when there is none).
    function latest() external view returns (Anchor memory last) {
        uint256 n = _anchors.length;
        if (n > 0) last = _anchors[n - 1];
    }

    /// @notice Up to `max` anchors from index `start` on (a page of them, for verifiers).
    function anchors(uint256 start, uint256 max) external view returns (Anchor[] memory page) {
        uint256 n = _anchors.length;
        uint256 end = start >= n ? start : (n - start > max ? start + max : n);
        page = new Anchor[](end - start);
        for (uint256 i = start; i < end; ++i) {
            page[i - start] = _anchors[i];
        }
    }
}
