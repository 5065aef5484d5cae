"""Revert decoding without a chain: tables, special errors, web3 exception shapes."""

from __future__ import annotations

import pickle
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from ledger.errors import ContractRevert, DecodedRevert, LedgerError, TransactionError
from ledger.reverts import ErrorTable, revert_from_exception

ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "f", "inputs": [], "outputs": []},
    {
        "type": "error",
        "name": "InvoiceNotFound",
        "inputs": [{"name": "invoiceId", "type": "uint256"}],
    },
    {
        "type": "error",
        "name": "Limits",
        "inputs": [
            {"name": "who", "type": "address"},
            {
                "name": "terms",
                "type": "tuple[]",
                "components": [
                    {"name": "days", "type": "uint32"},
                    {"name": "rate", "type": "uint16"},
                ],
            },
            {"name": "", "type": "bytes"},
        ],
    },
]
WHO = "0x000000000000000000000000000000000000dEaD"


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def test_custom_errors_with_args() -> None:
    table = ErrorTable([ABI])
    data = selector("InvoiceNotFound(uint256)") + encode(["uint256"], [7])
    decoded = table.decode(data)
    assert decoded == DecodedRevert("InvoiceNotFound", {"invoiceId": 7}, "0x" + data[:4].hex())
    data = selector("Limits(address,(uint32,uint16)[],bytes)") + encode(
        ["address", "(uint32,uint16)[]", "bytes"], [WHO, [(30, 250), (60, 300)], b"\x01"]
    )
    decoded = table.decode("0x" + data.hex())
    assert decoded.name == "Limits"
    assert decoded.args == {
        "who": WHO,
        "terms": [{"days": 30, "rate": 250}, {"days": 60, "rate": 300}],
        "arg2": b"\x01",
    }


def test_standard_and_unknown_errors() -> None:
    table = ErrorTable()
    assert table.decode(selector("Error(string)") + encode(["string"], ["boom"])).args == {
        "reason": "boom"
    }
    panic = table.decode(selector("Panic(uint256)") + encode(["uint256"], [0x11]))
    assert (panic.name, panic.args) == ("Panic", {"code": 0x11})
    assert table.decode(b"").name == "EmptyRevert"
    unknown = table.decode("0x12345678aa")
    assert (unknown.name, unknown.selector) == ("UnknownError", "0x12345678")
    # Known selector, garbage payload: name kept, raw data returned.
    bad = table.decode(selector("Panic(uint256)") + b"\x01")
    assert bad.name == "Panic"
    assert "data" in bad.args


def test_same_error_in_many_abis_is_one_entry() -> None:
    table = ErrorTable([ABI, ABI, [ABI[1]]])
    assert len(table) == 2 + 2  # Error, Panic + the two custom errors


def test_revert_from_web3_exceptions() -> None:
    table = ErrorTable([ABI])
    data = "0x" + (selector("InvoiceNotFound(uint256)") + encode(["uint256"], [3])).hex()
    revert = revert_from_exception(ContractCustomError(data, data=data), table=table)
    assert revert is not None
    assert (revert.name, revert.args) == ("InvoiceNotFound", {"invoiceId": 3})
    assert revert.data.hex() == data[2:]

    # Besu-style JSON-RPC error (code -32000, data in the error object).
    rpc_error = Web3RPCError(
        "{'code': -32000}",
        rpc_response={
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32000, "message": "Execution reverted", "data": data},
        },
    )
    revert = revert_from_exception(rpc_error, tx_hash="0xab", table=table)
    assert revert is not None
    assert revert.name == "InvoiceNotFound"
    assert revert.tx_hash == "0xab"

    # Only a reason in the message.
    revert = revert_from_exception(ContractLogicError("execution reverted: no way"), table=table)
    assert revert is not None
    assert (revert.name, revert.args) == ("Error", {"reason": "no way"})

    # Not a revert at all.
    assert revert_from_exception(ValueError("insufficient funds"), table=table) is None


def test_contract_revert_is_a_ledger_error_and_pickles() -> None:
    exc = ContractRevert(DecodedRevert("Nope", {"a": 1}, "0x01020304"), b"\x01", "0xff")
    assert isinstance(exc, TransactionError)
    assert isinstance(exc, LedgerError)
    assert exc.name == "Nope"
    assert exc.args == {"a": 1}
    assert str(exc) == "contract reverted: Nope(a=1) (tx 0xff)"
    clone = pickle.loads(pickle.dumps(exc))
    assert (clone.name, clone.args, clone.data, clone.tx_hash) == (
        "Nope",
        {"a": 1},
        b"\x01",
        "0xff",
    )
    assert str(clone) == str(exc)
