"""ledger.encoding gives web3.py's call data, or leaves the call to web3.py."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import AsyncWeb3

from ledger import calls
from ledger.artifacts import load_artifact
from ledger.encoding import contract_encoder, encode_function_call

ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
W3: Any = AsyncWeb3()


def _contract(name: str) -> Any:
    return W3.eth.contract(address=ADDRESS, abi=load_artifact(name).abi)


TERMS = calls.Terms(990, 10, 0, 600, 30, False, b"R" * 32, b"D" * 32)

SAME = [
    calls.split(7, OTHER, 1, None),
    calls.split(2**128, OTHER, 2**128 - 1, b"\x01" * 32),
    calls.transfer_claim(9, OTHER, b"\x02" * 32),
    calls.apply_for_financing(3, OTHER, 5_000, 2**40, 4_000, True),
    calls.approve_financing(11, TERMS),
    calls.settle_claims(list(range(1, 51)), [b"Q" * 32] * 50),
    calls.settle_claims([], []),
    calls.issue_payable(OTHER, 10**15, 2**33, [b"I" * 32, b"J" * 32], None),
    calls.register_member(OTHER, 5, 2**40),
    calls.confirm_invoice(b"K" * 32),
]


@pytest.mark.parametrize("call", SAME, ids=str)
def test_the_same_call_data_as_web3(call: calls.ContractCall) -> None:
    fn = getattr(_contract(call.contract).functions, call.function)(*call.args)
    expected = bytes.fromhex(fn._encode_transaction_data().removeprefix("0x"))
    assert encode_function_call(fn) == expected
    encoder = contract_encoder(_contract(call.contract).abi)
    assert encoder.encode(call.function, call.args) == expected


L, D = "ClaimLedger", "FinancingDesk"


@pytest.mark.parametrize(
    ("contract", "function", "args"),
    [
        (L, "split", (7, OTHER.lower(), 1, b"\x00" * 32)),  # web3.py refuses non-checksum
        (L, "split", (7, OTHER, 1, b"\x00" * 31)),  # a bytes32 of 31 bytes
        (L, "split", (7, OTHER, 1, "0x" + "00" * 32)),  # hex for a bytes32: web3.py decides
        (L, "split", (-1, OTHER, 1, b"\x00" * 32)),  # out of range
        (L, "split", (True, OTHER, 1, b"\x00" * 32)),  # a bool for a uint
        (L, "split", (7, OTHER, 1)),  # too few
        (D, "applyForFinancing", (3, OTHER, 2**128, 1, 0, False)),  # uint128 overflow
        (D, "applyForFinancing", (3, OTHER, 1, 1, 0, 1)),  # an int for a bool
        (D, "approveFinancing", (1, (1, 2, 3))),  # a tuple too short
        (L, "settleClaims", ([1, 2], b"x")),
        (L, "noSuchFunction", ()),
    ],
)
def test_what_it_is_not_sure_of_is_left_to_web3(
    contract: str, function: str, args: tuple[Any, ...]
) -> None:
    assert contract_encoder(_contract(contract).abi).encode(function, args) is None
