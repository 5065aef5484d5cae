// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {IERC3525Receiver} from "../../src/interfaces/IERC3525Receiver.sol";

/// @dev A contract member that declares IERC3525Receiver and IERC721Receiver and answers as
/// told: accept (the selector), a wrong answer, or a revert with a message. It records the
/// last call so a test can check what the ledger told it.
contract ReceiverMock is IERC3525Receiver, IERC721Receiver, IERC165 {
    enum Mode {
        Accept,
        WrongAnswer,
        Revert
    }

    error ReceiverMockRefused();

    Mode public mode;
    uint256 public calls3525;
    uint256 public calls721;
    address public lastOperator;
    uint256 public lastFrom;
    uint256 public lastTo;
    uint256 public lastValue;

    function setMode(Mode m) external {
        mode = m;
    }

    function supportsInterface(bytes4 id) external pure returns (bool) {
        return id == type(IERC165).interfaceId || id == type(IERC3525Receiver).interfaceId;
    }

    function onERC3525Received(address operator, uint256 fromTokenId, uint256 toTokenId, uint256 value, bytes calldata)
        external
        returns (bytes4)
    {
        if (mode == Mode.Revert) revert ReceiverMockRefused();
        ++calls3525;
        (lastOperator, lastFrom, lastTo, lastValue) = (operator, fromTokenId, toTokenId, value);
        return mode == Mode.Accept ? IERC3525Receiver.onERC3525Received.selector : bytes4(0xdeadbeef);
    }

    function onERC721Received(address operator, address, uint256 tokenId, bytes calldata)
        external
        returns (bytes4)
    {
        if (mode == Mode.Revert) revert ReceiverMockRefused();
        ++calls721;
        (lastOperator, lastTo) = (operator, tokenId);
        return mode == Mode.Accept ? IERC721Receiver.onERC721Received.selector : bytes4(0xdeadbeef);
    }
}

/// @dev A contract with no receiver functions and no ERC-165 (a plain wallet contract).
contract PlainContract {
    uint256 public touched;

    function touch() external {
        ++touched;
    }
}
