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


def test_request_digest_is_the_typed_datas_eip712_digest() -> None:
    forwarder, sender, to = (Account.create().address for _ in range(3))
    for chain_id, gas, nonce, deadline, data in [
        (31337, 21_000, 0, 0, b""),
        (1, 987_654, forwarding.NONCE_BOUND - 1, 2**48 - 1, bytes(range(200))),
        (2**32, 1, 12345, 1_700_000_000, b"\x00" * 33),
    ]:
        args = (chain_id, forwarder, sender, to, gas, nonce, deadline, data)
        expected = forwarding.digest(forwarding.typed_data(*args))
        assert forwarding.request_digest(*args) == expected
        lowered = (chain_id, forwarder.lower(), sender.lower(), to.lower(), *args[4:])
        assert forwarding.request_digest(*lowered) == expected
