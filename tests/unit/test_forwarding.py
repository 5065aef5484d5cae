"""The relayer's ``execute`` calldata, encoded directly (``backend.forwarding``), is byte for
byte what web3.py's contract function gives."""

from __future__ import annotations

import json

from eth_account import Account
from web3 import Web3

from backend import forwarding
from ledger.paths import abi_dir


def test_execute_calldata_is_web3s_encoding() -> None:
    abi = json.loads((abi_dir() / "TierflowForwarder.json").read_text())
    forwarder = Web3().eth.contract(address=Account.create().address, abi=abi)
    for data, signature in [(b"", b""), (bytes(range(37)), bytes(65)), (b"\x01" * 100, b"\xff")]:
        request = (
            Account.create().address,
            Account.create().address,
            0,
            123_456,
            forwarding.NONCE_BOUND - 1,
            2**48 - 1,
            data,
            signature,
        )
        expected = forwarder.functions.execute(request)._encode_transaction_data()
        assert forwarding.execute_calldata(request) == expected
