"""Revert decoding against reverts surfaced by a real node (eth_call / eth_estimateGas)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.crypto import keccak
from web3.exceptions import ContractCustomError, ContractLogicError

from ledger.errors import ContractRevert
from ledger.node import Web3Client
from ledger.reverts import decode_revert, revert_from_exception
from tests.support.chain import Deployed


def contract(w3: Web3Client, thrower: Deployed) -> Any:
    return w3.eth.contract(address=w3.to_checksum_address(thrower.address), abi=thrower.abi)


async def _revert_of(call: Any) -> ContractRevert:
    with pytest.raises(ContractLogicError) as info:
        await call
    revert = revert_from_exception(info.value)
    assert revert is not None
    return revert


async def test_custom_error_with_args_from_eth_call(w3: Web3Client, thrower: Deployed) -> None:
    c = contract(w3, thrower)
    caller = list(await w3.eth.accounts)[3]
    with pytest.raises(ContractCustomError) as info:
        await c.functions.take(42).call({"from": caller})
    revert = revert_from_exception(info.value)
    assert revert is not None
    assert revert.name == "NotEnough"
    assert revert.args == {"who": caller, "wanted": 42, "available": 0}
    assert revert.selector == "0x" + revert.data[:4].hex()
    assert "NotEnough" in str(revert)


async def test_custom_error_from_estimate_gas(w3: Web3Client, thrower: Deployed) -> None:
    revert = await _revert_of(contract(w3, thrower).functions.take(1).estimate_gas())
    assert revert.name == "NotEnough"
    assert revert.args["wanted"] == 1


async def test_struct_argument_decodes_to_named_fields(w3: Web3Client, thrower: Deployed) -> None:
    revert = await _revert_of(contract(w3, thrower).functions.failPoint().call())
    assert revert.name == "BadPoint"
    assert revert.args["p"] == {"x": 1, "y": 2}
    assert revert.args["tag"] == b"tag".ljust(32, b"\0")


async def test_error_string_and_panic(w3: Web3Client, thrower: Deployed) -> None:
    c = contract(w3, thrower)
    revert = await _revert_of(c.functions.failString().call())
    assert (revert.name, revert.args) == ("Error", {"reason": "nope"})
    revert = await _revert_of(c.functions.failPanic(0).call())
    assert (revert.name, revert.args) == ("Panic", {"code": 0x12})
    revert = await _revert_of(c.functions.failPlain().call())
    assert (revert.name, revert.args) == ("Plain", {})


def test_decode_revert_direct(thrower: Deployed) -> None:
    selector = keccak(text="Plain()")[:4]
    decoded = decode_revert(selector)
    assert (decoded.name, decoded.selector) == ("Plain", "0x" + selector.hex())
    assert decode_revert("0xdeadbeef").name == "UnknownError"
