// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {IERC3525} from "./IERC3525.sol";

/// @title ERC-3525 metadata extension
/// @notice Interface id 0xe1600902 (contractURI ^ slotURI); with ERC-721 metadata (0x5b5e139f:
/// name, symbol, tokenURI). Tierflow answers every URI with on-chain JSON
/// (`data:application/json;base64,...`), as the EIP recommends.
interface IERC3525Metadata is IERC3525, IERC721Metadata {
    function contractURI() external view returns (string memory);
    function slotURI(uint256 _slot) external view returns (string memory);
}
