"""ledger.signing.FastSigner gives, byte for byte, what eth-account's sign_transaction gives;
``same_call`` reads the call (recipient, value, data) back from signed bytes of each kind."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from ledger.signing import FastSigner, same_call, signed_call

ACCOUNT = Account.from_key(b"\x11" * 32)
TO = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BASE: dict[str, Any] = {"to": TO, "value": 0, "data": b"\xa9\x05\x9c\xbb" + b"\x01" * 100}


@pytest.mark.parametrize(
    "fields",
    [
        {"maxFeePerGas": 2_000_000_000, "maxPriorityFeePerGas": 0, "gas": 150_000},
        {"maxFeePerGas": 3 * 10**10, "maxPriorityFeePerGas": 10**9, "gas": 21_000},
        {"gasPrice": 0, "gas": 100_000},
        {"gasPrice": 10**10, "gas": 1_200_000},
        {"gasPrice": 1, "gas": 21_000, "value": 10**18, "data": b""},
        {"gasPrice": 1, "gas": 21_000, "data": "0x"},
        {"maxFeePerGas": 7, "maxPriorityFeePerGas": 0, "gas": 21_000, "data": b"\x00" * 2000},
    ],
)
@pytest.mark.parametrize("chain_id", [1, 31337, 1337, 2**40])
@pytest.mark.parametrize("nonce", [0, 1, 127, 128, 70_000])
def test_the_same_bytes_as_eth_account(fields: dict[str, Any], chain_id: int, nonce: int) -> None:
    tx = {**BASE, **fields, "chainId": chain_id}
    expected = ACCOUNT.sign_transaction({**tx, "nonce": nonce})
    got = FastSigner(ACCOUNT.key).sign(tx, nonce)
    assert got == (bytes(expected.raw_transaction), expected.hash.to_0x_hex())


def test_a_deployment_has_no_recipient() -> None:
    tx = {"value": 0, "data": b"\x60\x80" * 50, "gas": 500_000, "gasPrice": 1, "chainId": 5}
    expected = ACCOUNT.sign_transaction({**tx, "nonce": 3})
    assert FastSigner(ACCOUNT.key).sign(tx, 3) == (
        bytes(expected.raw_transaction),
        expected.hash.to_0x_hex(),
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"accessList": [], "maxFeePerGas": 1, "maxPriorityFeePerGas": 0},
        {"type": 2, "maxFeePerGas": 1, "maxPriorityFeePerGas": 0},
        {"gasPrice": 1, "to": "not an address"},
        {"gasPrice": True},
        {"gasPrice": 1, "data": "abc"},
        {},  # no fee field at all
    ],
)
def test_what_it_does_not_handle_is_left_to_eth_account(extra: dict[str, Any]) -> None:
    tx = {**BASE, "gas": 21_000, "chainId": 1, **extra}
    assert FastSigner(ACCOUNT.key).sign(tx, 0) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"maxFeePerGas": 2_000_000_000, "maxPriorityFeePerGas": 0, "gas": 150_000},
        {"gasPrice": 1, "gas": 21_000, "value": 10**18, "data": b""},
        {"gasPrice": 1, "gas": 21_000, "accessList": [], "chainId": 5},  # EIP-2930
    ],
)
def test_the_call_is_read_back_from_signed_bytes(fields: dict[str, Any]) -> None:
    """A write resumed from its journal matches its calls to the recorded transactions by
    what they call (backend.gateway.sending), whatever kind of transaction was signed."""
    tx = {**BASE, "chainId": 31337, **fields}
    raw = bytes(ACCOUNT.sign_transaction({**tx, "nonce": 4}).raw_transaction)
    assert signed_call(raw) == (bytes.fromhex(TO[2:]), tx["value"], tx["data"])
    assert same_call(raw, {"to": TO, "value": tx["value"], "data": "0x" + tx["data"].hex()})
    assert not same_call(raw, {"to": TO, "value": tx["value"] + 1, "data": tx["data"]})
    assert not same_call(raw, {"to": TO, "value": tx["value"], "data": tx["data"] + b"\x00"})
    other = "0x" + "22" * 20
    assert not same_call(raw, {"to": other, "value": tx["value"], "data": tx["data"]})


def test_bytes_of_no_known_kind_tell_nothing() -> None:
    assert signed_call(b"\x03" + b"\x00" * 10) is None
    assert signed_call(b"") is None
    assert same_call(b"\x03garbage", {"to": TO, "data": b""})
