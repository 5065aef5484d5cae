"""EIP-712 forward requests of ``self`` members (docs/consent.md): what a member signs so the
relayer can submit it to the ``TierflowForwarder`` (ERC-2771), and the checks on a signature.

- :func:`typed_data`: the full EIP-712 document of a ``ForwardRequest(address from,address
  to,uint256 value,uint256 gas,uint256 nonce,uint48 deadline,bytes data)`` under the domain
  ``{name: "TierflowForwarder", version: "1", chainId, verifyingContract}``;
- :func:`digest`: its EIP-712 digest (what the forwarder's ``hashRequest`` answers);
- :func:`signer_of`: the address a 65-byte signature over a digest recovers to;
- :func:`plain_args`: a call's arguments by their Solidity names in plain JSON (checksummed
  addresses, 0x-hex bytes, structs as objects), the ``action`` a member reads before signing.

Numbers in the typed data are JSON integers; nonces are drawn below 2^52 so that every
EIP-712 library, JavaScript's included, reads them exactly.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import coincurve
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

FORWARDER = "TierflowForwarder"
VERSION = "1"
FORWARD_REQUEST = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "gas", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint48"},
    {"name": "data", "type": "bytes"},
]
DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
#: Nonces are drawn below this (exact in every JSON reader).
NONCE_BOUND = 2**52
#: The order of secp256k1's group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


#: ``execute(ForwardRequestData)``'s argument type and selector (the relayer's call).
EXECUTE_TYPE = "(address,address,uint256,uint256,uint256,uint48,bytes,bytes)"
EXECUTE_SELECTOR = keccak(text=f"execute({EXECUTE_TYPE})")[:4]


def execute_calldata(request: tuple[Any, ...]) -> str:
    """The calldata of ``TierflowForwarder.execute(request)``, ``request`` being ``(from, to,
    value, gas, nonce, deadline, data, signature)``: the ABI encoding of its one dynamic tuple
    written out (six static words, the two byte strings' offsets, then each string's length
    and its bytes padded to a word), not through web3.py's contract functions or eth-abi's
    generic encoder (``tests/unit/test_forwarding.py`` compares it with web3.py's)."""
    sender, to, value, gas, nonce, deadline, data, signature = request
    if not (0 <= value < 2**256 and 0 <= gas < 2**256 and 0 <= nonce < 2**256):
        raise ValueError("a forward request's value, gas and nonce are uint256")
    if not 0 <= deadline < 2**48:
        raise ValueError("a forward request's deadline is a uint48")
    data, signature = bytes(data), bytes(signature)
    data_part = _word(len(data)) + data + bytes(-len(data) % 32)
    head = (
        _word(32)  # the tuple's offset: it is dynamic
        + _address_word(checksum(sender))
        + _address_word(checksum(to))
        + _word(value)
        + _word(gas)
        + _word(nonce)
        + _word(deadline)
        + _word(8 * 32)  # data, after the tuple's eight head words
        + _word(8 * 32 + len(data_part))  # signature, after data
    )
    tail = data_part + _word(len(signature)) + signature + bytes(-len(signature) % 32)
    return "0x" + (EXECUTE_SELECTOR + head + tail).hex()


@functools.lru_cache(maxsize=4096)
def checksum(address: str) -> str:
    """``to_checksum_address(address)``, kept: an intent names the same few addresses (the
    member, the deployment's contracts, its counterparties) again and again, and each costs a
    keccak and eth-utils' validation."""
    return str(to_checksum_address(address))


def random_nonce() -> int:
    return secrets.randbelow(NONCE_BOUND)


def typed_data(
    chain_id: int,
    forwarder: str,
    sender: str,
    to: str,
    gas: int,
    nonce: int,
    deadline: int,
    data: bytes,
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": DOMAIN, "ForwardRequest": FORWARD_REQUEST},
        "primaryType": "ForwardRequest",
        "domain": {
            "name": FORWARDER,
            "version": VERSION,
            "chainId": chain_id,
            "verifyingContract": checksum(forwarder),
        },
        "message": {
            "from": checksum(sender),
            "to": checksum(to),
            "value": 0,
            "gas": gas,
            "nonce": nonce,
            "deadline": deadline,
            "data": "0x" + data.hex(),
        },
    }


_REQUEST_TYPEHASH = keccak(
    text="ForwardRequest(address from,address to,uint256 value,uint256 gas,uint256 nonce,"
    "uint48 deadline,bytes data)"
)
_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.removeprefix("0x"))


@functools.lru_cache(maxsize=16)
def _domain_separator(chain_id: int, forwarder: str) -> bytes:
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(text=FORWARDER)
        + keccak(text=VERSION)
        + _word(chain_id)
        + _address_word(forwarder)
    )


def request_digest(
    chain_id: int,
    forwarder: str,
    sender: str,
    to: str,
    gas: int,
    nonce: int,
    deadline: int,
    data: bytes,
) -> bytes:
    """:func:`digest` of :func:`typed_data` with the same arguments, hashed directly (the
    domain separator kept per chain and forwarder) instead of through eth-account's generic
    EIP-712 encoder, which parses the types and walks the document for every request."""
    struct = keccak(
        _REQUEST_TYPEHASH
        + _address_word(sender)
        + _address_word(to)
        + _word(0)
        + _word(gas)
        + _word(nonce)
        + _word(deadline)
        + keccak(data)
    )
    return keccak(b"\x19\x01" + _domain_separator(chain_id, forwarder.lower()) + struct)


def digest(document: Mapping[str, Any]) -> bytes:
    """``keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))``."""
    signable = encode_typed_data(full_message=dict(document))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def signer_of(digest_: bytes, signature: bytes) -> str | None:
    """The address ``signature`` (65 bytes, r ‖ s ‖ v) over ``digest_`` recovers to, or
    ``None`` when it is no valid signature. The signatures eth-account's ``_recover_hash``
    takes, recovered as it does (libsecp256k1 through coincurve, the function eth-keys'
    backend calls), without its wrapping objects: ``v`` 27 or 28, 0 or 1, or 35 and above
    (EIP-155's, its parity the recovery id); ``r`` and ``s`` below the curve's order."""
    if len(signature) != 65 or len(digest_) != 32:
        return None
    v = signature[64]
    if v in (27, 28):
        recovery_id = v - 27
    elif v in (0, 1):
        recovery_id = v
    elif v >= 35:
        recovery_id = (v - 35) % 2
    else:
        return None
    if (
        int.from_bytes(signature[:32], "big") >= SECP256K1_N
        or int.from_bytes(signature[32:64], "big") >= SECP256K1_N
    ):
        return None
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes([recovery_id]), bytes(digest_), hasher=None
        )
    except Exception:
        return None
    return checksum("0x" + keccak(public.format(compressed=False)[1:])[12:].hex())


def plain_args(inputs: Sequence[Mapping[str, Any]], args: Sequence[Any]) -> dict[str, Any]:
    """``args`` by the names of the ABI ``inputs``, as plain JSON."""
    return {
        (entry.get("name") or f"arg{n}"): _plain(value, entry)
        for n, (entry, value) in enumerate(zip(inputs, args, strict=True))
    }


def _plain(value: Any, entry: Mapping[str, Any]) -> Any:
    kind: str = entry["type"]
    if kind.endswith("]"):
        inner = {**entry, "type": kind[: kind.rindex("[")]}
        return [_plain(v, inner) for v in value]
    if kind == "tuple":
        parts = entry.get("components", [])
        values = list(value.values()) if isinstance(value, Mapping) else list(value)
        return {c["name"]: _plain(v, c) for c, v in zip(parts, values, strict=True)}
    if kind == "address":
        return checksum(value) if isinstance(value, str) else to_checksum_address(value)
    if kind.startswith("bytes"):
        if isinstance(value, str):
            return "0x" + bytes.fromhex(value.removeprefix("0x")).hex()
        return "0x" + bytes(value).hex()
    if kind == "bool":
        return bool(value)
    if kind.startswith(("uint", "int")):
        return int(value)
    return value
