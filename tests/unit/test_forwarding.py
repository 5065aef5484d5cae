"""The relayer's ``execute`` calldata, encoded directly (``backend.forwarding``), is byte for
byte what web3.py's contract function gives; a request's digest is eth-account's of its typed
data; a signature recovers (``signer_of``) to what eth-account's recovery gives, and where
eth-account refuses it, to nothing."""

from __future__ import annotations

import json
import os
import random

from eth_account import Account
from web3 import Web3

from backend import forwarding
from ledger.paths import abi_dir


def test_execute_calldata_is_web3s_encoding() -> None:
    abi = json.loads((abi_dir() / "TierflowForwarder.json").read_text())
    forwarder = Web3().eth.contract(address=Account.create().address, abi=abi)
    cases = [
        (b"", b""),
        (bytes(range(37)), bytes(65)),
        (b"\x01" * 100, b"\xff"),
        (bytes(range(32)), bytes(range(64))),
        (bytes(range(64)), bytes(range(65))),
        (bytes(range(255)) * 20, bytes(range(31))),
    ]
    for data, signature in cases:
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


def reference_signer(digest: bytes, signature: bytes) -> str | None:
    """eth-account's recovery, as ``signer_of`` was: None where it raises."""
    try:
        return str(Account._recover_hash(digest, signature=signature))
    except Exception:
        return None


def test_signer_of_recovers_as_eth_account_does() -> None:
    rng = random.Random(65)
    account = Account.create()
    n = forwarding.SECP256K1_N
    for _ in range(200):
        digest = rng.randbytes(32)
        signed = bytes(Account.unsafe_sign_hash(digest, account.key).signature)
        assert forwarding.signer_of(digest, signed) == account.address
        r, s, v = signed[:32], signed[32:64], signed[64]
        high_s = (n - int.from_bytes(s, "big")).to_bytes(32, "big")
        variants = [
            signed,
            r + s + bytes([v - 27]),  # v as 0/1
            r + s + bytes([v + 8]),  # EIP-155 style (35/36)
            r + s + bytes([v + 10]),
            r + s + bytes([v ^ 1]),  # the other recovery id: another address
            r + high_s + bytes([v ^ 1]),  # the high-s twin: recovers to the same key
            r + s + bytes([29]),  # neither 0, 1, 27, 28 nor 35+
            r + s + bytes([2]),
            bytes(32) + s + bytes([v]),  # r = 0
            r + n.to_bytes(32, "big") + bytes([v]),  # s = n
            (n + 1).to_bytes(32, "big") + s + bytes([v]),  # r past n
            rng.randbytes(65),
            signed[:64],
            signed + b"\x00",
        ]
        for signature in variants:
            assert forwarding.signer_of(digest, signature) == reference_signer(digest, signature)
    assert forwarding.signer_of(os.urandom(31), signed) is None
