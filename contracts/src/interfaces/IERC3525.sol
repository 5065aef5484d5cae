// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title ERC-3525 semi-fungible token, the subset Tierflow implements
/// @notice Interface id 0xd5358140. The EIP declares several functions `payable`; payability is
/// not part of a selector, so the interface id is unchanged, and Tierflow keeps them
/// non-payable because the platform must never hold funds (SPEC §2, Settlement).
interface IERC3525 is IERC721 {
    /// @dev Value moved between two tokens (0 for mint / burn).
    event TransferValue(uint256 indexed _fromTokenId, uint256 indexed _toTokenId, uint256 _value);
    /// @dev Value allowance set or changed for an operator (also when spent).
    event ApprovalValue(uint256 indexed _tokenId, address indexed _operator, uint256 _value);
    /// @dev A token's slot set (from 0 when minted).
    event SlotChanged(uint256 indexed _tokenId, uint256 indexed _oldSlot, uint256 indexed _newSlot);

    function valueDecimals() external view returns (uint8);
    function balanceOf(uint256 _tokenId) external view returns (uint256);
    function slotOf(uint256 _tokenId) external view returns (uint256);
    function approve(uint256 _tokenId, address _operator, uint256 _value) external;
    function allowance(uint256 _tokenId, address _operator) external view returns (uint256);
    function transferFrom(uint256 _fromTokenId, uint256 _toTokenId, uint256 _value) external;
    function transferFrom(uint256 _fromTokenId, address _to, uint256 _value) external returns (uint256);
}
