// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

/// @dev The cheatcodes these tests use, with Foundry 1.x signatures. The npm build of forge-std
/// (1.1.2, the newest on npm) ships a 2022 `Test.sol` that imports `ds-test`, which the package
/// does not contain, so it cannot compile; this small first-party harness replaces it.
interface Vm {
    function warp(uint256 newTimestamp) external;
    function writeLine(string calldata path, string calldata data) external;
    function toString(uint256 value) external pure returns (string memory);
    function envOr(string calldata name, bool defaultValue) external view returns (bool);
    function getBlockTimestamp() external view returns (uint256);
    function prank(address msgSender) external;
    function startPrank(address msgSender) external;
    function stopPrank() external;
    function expectRevert() external;
    function expectRevert(bytes4 revertData) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter)
        external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);
    function assume(bool condition) external pure;
    function label(address account, string calldata newLabel) external;
    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function getNonce(address account) external view returns (uint64 nonce);
    function chainId(uint256 newChainId) external;
    function assertTrue(bool condition, string calldata error) external pure;
    function assertFalse(bool condition, string calldata error) external pure;
    function assertEq(uint256 left, uint256 right, string calldata error) external pure;
    function assertEq(address left, address right, string calldata error) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata error) external pure;
    function assertEq(bool left, bool right, string calldata error) external pure;
    function assertLe(uint256 left, uint256 right, string calldata error) external pure;
    function assertGt(uint256 left, uint256 right, string calldata error) external pure;

    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }
}

/// @dev What Foundry's invariant runner reads from a test contract (forge-std StdInvariant).
struct FuzzSelector {
    address addr;
    bytes4[] selectors;
}

/// @title TestBase
/// @notice Cheatcodes, assertions (through the cheatcodes, so a failure reverts with a message)
/// and the invariant-target declarations Foundry looks for.
abstract contract TestBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    address[] private _targetContracts;
    FuzzSelector[] private _targetSelectors;

    /// @dev Foundry recognises test contracts by their `test*`/`invariant*` functions; this
    /// flag is what forge-std exposes too, kept for tools that still look for it.
    bool public constant IS_TEST = true;

    // ------------------------------------------------------------------ invariant targets

    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetSelectors;
    }

    function targetContract(address target) internal {
        _targetContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetSelectors.push(selector);
    }

    // ------------------------------------------------------------------ helpers

    /// @dev The address a CREATE by `deployer` at `nonce` gives (RLP of [deployer, nonce]).
    function _createAddress(address deployer, uint256 nonce) internal pure returns (address) {
        bytes memory enc;
        if (nonce == 0) enc = abi.encodePacked(bytes1(0xd6), bytes1(0x94), deployer, bytes1(0x80));
        else if (nonce <= 0x7f) enc = abi.encodePacked(bytes1(0xd6), bytes1(0x94), deployer, uint8(nonce));
        else if (nonce <= 0xff) enc = abi.encodePacked(bytes1(0xd7), bytes1(0x94), deployer, bytes1(0x81), uint8(nonce));
        else if (nonce <= 0xffff) enc = abi.encodePacked(bytes1(0xd8), bytes1(0x94), deployer, bytes1(0x82), uint16(nonce));
        else if (nonce <= 0xffffff) enc = abi.encodePacked(bytes1(0xd9), bytes1(0x94), deployer, bytes1(0x83), uint24(nonce));
        else enc = abi.encodePacked(bytes1(0xda), bytes1(0x94), deployer, bytes1(0x84), uint32(nonce));
        return address(uint160(uint256(keccak256(enc))));
    }

    /// @dev `x` mapped into [min, max] (inclusive), uniform enough for fuzzing, never reverts
    /// unless min > max.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + (x % (size + 1));
    }

    // Assertions call the cheatcode only when they fail: a cheatcode call per passing check
    // made the invariant checks (hundreds of assertions after every fuzzed call) 20x slower.

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) vm.assertTrue(condition, message);
    }

    function assertEq(uint256 a, uint256 b, string memory message) internal pure {
        if (a != b) vm.assertEq(a, b, message);
    }

    function assertEq(address a, address b, string memory message) internal pure {
        if (a != b) vm.assertEq(a, b, message);
    }

    function assertEq(bytes32 a, bytes32 b, string memory message) internal pure {
        if (a != b) vm.assertEq(a, b, message);
    }

    function assertEq(bool a, bool b, string memory message) internal pure {
        if (a != b) vm.assertEq(a, b, message);
    }

    function assertLe(uint256 a, uint256 b, string memory message) internal pure {
        if (a > b) vm.assertLe(a, b, message);
    }
}
