"""Signing a prepared transaction without eth-account's machinery: pyrlp's plain list
encoding and coincurve.

:meth:`ledger.sender.TransactionSender._sign` signed through ``LocalAccount.sign_transaction``:
per transaction it derived the account from its key again (a public key and a keccak), checked
the dictionary against a schema, converted it through ``toolz`` pipelines and serialised it
with pyrlp's ``Serializable`` (py-spy: 22% of the sending process's CPU, 0.5 ms a write).
:class:`FastSigner` builds the same bytes directly: an EIP-1559 (type 2) or EIP-155 legacy
transaction RLP-encoded (``rlp.encode`` of a plain list: no ``Serializable`` or sedes
classes) from the few fields the sender fills, its keccak signed with the
account's coincurve key made once (RFC 6979, low-s: the signature eth-account gives;
``tests/ledger/test_signing.py`` compares raw bytes and hashes). Anything else (an access
list, blob fields, an explicit ``type``) is left to eth-account: :meth:`FastSigner.sign`
answers ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import coincurve
import rlp
from eth_hash.auto import keccak

#: The fields :class:`FastSigner` handles; any other key sends the transaction to eth-account.
_LEGACY = frozenset({"chainId", "nonce", "gasPrice", "gas", "to", "value", "data"})
_DYNAMIC = frozenset(
    {"chainId", "nonce", "maxFeePerGas", "maxPriorityFeePerGas", "gas", "to", "value", "data"}
)


def _as_bytes(value: Any) -> bytes | None:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and value.startswith(("0x", "0X")):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            return None
    return None


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class FastSigner:
    """Signs the transactions :class:`~ledger.sender.TransactionSender` prepares for one key."""

    def __init__(self, private_key: bytes) -> None:
        self._key = coincurve.PrivateKey(bytes(private_key))

    def sign(self, tx: Mapping[str, Any], nonce: int) -> tuple[bytes, str] | None:
        """``(raw, 0x-hash)`` of ``tx`` at ``nonce``; ``None`` when ``tx`` has a field or a
        value this signer does not handle (the caller signs through eth-account then)."""
        keys = tx.keys() | {"nonce"}
        if "maxFeePerGas" in tx:
            if not keys <= _DYNAMIC:
                return None
            kind = 2
        elif keys <= _LEGACY and "gasPrice" in tx:
            kind = 0
        else:
            return None
        to = _as_bytes(tx.get("to"))
        data = _as_bytes(tx.get("data", b""))
        chain_id = _as_int(tx.get("chainId"))
        gas = _as_int(tx.get("gas"))
        value = _as_int(tx.get("value", 0))
        if to is None or data is None or chain_id is None or gas is None or value is None:
            return None
        if len(to) not in (0, 20):
            return None
        if value < 0 or gas < 0 or chain_id < 0:
            return None
        tail: list[Any] = [gas, to, value, data]
        if kind == 2:
            tip = _as_int(tx.get("maxPriorityFeePerGas", 0))
            cap = _as_int(tx["maxFeePerGas"])
            if tip is None or cap is None or tip < 0 or cap < 0:
                return None
            body = [chain_id, nonce, tip, cap, *tail, []]  # [] : an empty access list
            signature = self._key.sign_recoverable(keccak(b"\x02" + rlp.encode(body)), hasher=None)
            v = signature[64]
        else:
            price = _as_int(tx["gasPrice"])
            if price is None or price < 0:
                return None
            body = [nonce, price, *tail]
            digest = keccak(rlp.encode([*body, chain_id, 0, 0]))  # EIP-155
            signature = self._key.sign_recoverable(digest, hasher=None)
            v = signature[64] + 35 + 2 * chain_id
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:64], "big")
        raw = rlp.encode([*body, v, r, s])
        if kind == 2:
            raw = b"\x02" + raw
        return raw, "0x" + keccak(raw).hex()


def _decoded(raw: bytes) -> tuple[int, list[Any]] | None:
    """The type (0 for legacy, 1 for EIP-2930, 2 for EIP-1559) and the RLP fields of a signed
    transaction's bytes; ``None`` for another kind or bytes that do not decode."""
    try:
        if raw[:1] in (b"\x01", b"\x02"):
            fields = rlp.decode(raw[1:])
            kind = raw[0]
        elif raw[:1] and raw[0] >= 0xC0:
            fields = rlp.decode(raw)
            kind = 0
        else:
            return None
    except (rlp.exceptions.DecodingError, IndexError, TypeError):
        return None
    return (kind, fields) if isinstance(fields, list) else None


#: Where a signed transaction's ``to`` stands, by type (``value`` and ``data`` follow it).
_TO_AT = {0: 3, 1: 4, 2: 5}


def signed_call(raw: bytes) -> tuple[bytes, int, bytes] | None:
    """``(to, value, data)`` of a signed transaction's bytes (legacy, EIP-2930 or EIP-1559), or
    ``None`` for another kind or bytes that do not decode."""
    decoded = _decoded(raw)
    if decoded is None:
        return None
    kind, fields = decoded
    call = fields[_TO_AT[kind] : _TO_AT[kind] + 3]
    if len(call) != 3 or not all(isinstance(f, bytes) for f in call):
        return None
    to, value, data = call
    return bytes(to), int.from_bytes(value, "big"), bytes(data)


def signed_fields(raw: bytes) -> dict[str, Any] | None:
    """The fields of a signed EIP-1559 or EIP-155 legacy transaction, as
    :meth:`FastSigner.sign` takes them plus ``nonce`` (``to`` as bytes, empty for a
    creation); ``None`` for another kind, a pre-EIP-155 signature or bytes that do not
    decode."""
    decoded = _decoded(raw)
    if decoded is None:
        return None
    kind, f = decoded
    try:
        if kind == 2:
            ints = [int.from_bytes(f[i], "big") for i in (0, 1, 2, 3, 4, 6)]
            chain_id, nonce, tip, cap, gas, value = ints
            return {
                "chainId": chain_id,
                "nonce": nonce,
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": cap,
                "gas": gas,
                "to": bytes(f[5]),
                "value": value,
                "data": bytes(f[7]),
            }
        if kind == 0:
            nonce, price, gas, value, v = (int.from_bytes(f[i], "big") for i in (0, 1, 2, 4, 6))
            if v < 35:
                return None
            return {
                "chainId": (v - 35) // 2,
                "nonce": nonce,
                "gasPrice": price,
                "gas": gas,
                "to": bytes(f[3]),
                "value": value,
                "data": bytes(f[5]),
            }
    except (IndexError, TypeError, ValueError):
        return None
    return None


def same_call(raw: bytes, tx: Mapping[str, Any]) -> bool:
    """Do the signed bytes ``raw`` make the call ``tx`` (its ``to``, ``value`` and ``data``)?
    True when ``raw`` is of a kind :func:`signed_call` does not read (nothing to tell)."""
    call = signed_call(raw)
    if call is None:
        return True
    wanted = (_as_bytes(tx.get("to")), _as_int(tx.get("value", 0)), _as_bytes(tx.get("data", b"")))
    return call == wanted
