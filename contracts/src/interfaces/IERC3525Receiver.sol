// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @title ERC-3525 value receiver
/// @notice Interface id 0x009ce20b. A contract that holds claim pieces may implement it (and
/// say so through ERC-165) to accept or refuse value sent to it: the ledger calls it after
/// every value transfer to a contract that declares it, and reverts the transfer unless the
/// answer is this function's selector.
interface IERC3525Receiver {
    function onERC3525Received(
        address _operator,
        uint256 _fromTokenId,
        uint256 _toTokenId,
        uint256 _value,
        bytes calldata _data
    ) external returns (bytes4);
}
