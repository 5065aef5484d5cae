"""Decoding raw logs of the deployment's contracts into :class:`DecodedEvent`.

The decoder is built once from the contracts' ABIs: ``(address, topic0)`` → an event spec
with its indexed and data types. Indexed arguments are one 32-byte topic each and are decoded
directly; the data part goes through ``eth_abi`` with a cached decoder. Argument values are
Python natives: ``int``, checksummed address ``str``, ``0x``-hex ``str`` for ``bytes32``,
``bool`` and lists of those. Logs from other addresses or with unknown topics are refused,
since ``eth_getLogs`` asked for these addresses only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from indexer.errors import MirrorError


@functools.lru_cache(maxsize=65536)
def checksum(address_hex: str) -> str:
    """Checksummed form of a 0x-address (cached: a platform has few distinct members)."""
    return to_checksum_address(address_hex)


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """One log, decoded, with where it sits in the chain."""

    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
    contract: str
    name: str
    args: Mapping[str, Any]

    @property
    def key(self) -> str:
        """The handler key, ``"Contract:Event"``."""
        return f"{self.contract}:{self.name}"

    @property
    def position(self) -> tuple[int, int, int]:
        """Its place in the chain's order: (block, transaction, log)."""
        return (self.block_number, self.tx_index, self.log_index)


@dataclass(frozen=True)
class _EventSpec:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type)
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]
    order: tuple[str, ...]  # the ABI's argument order


def _signature(event: Mapping[str, Any]) -> str:
    return f"{event['name']}({','.join(_canonical(i) for i in event['inputs'])})"


def _canonical(param: Mapping[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


def _value(kind: str, value: Any) -> Any:
    """Normalise one decoded ABI value."""
    if kind == "address":
        return checksum(value)
    if kind.startswith("bytes") and kind[5:].isdigit():
        return "0x" + bytes(value).hex()
    if kind.endswith("[]"):
        inner = kind[:-2]
        return [_value(inner, v) for v in value]
    return value


def _topic_value(kind: str, topic: str) -> Any:
    raw = bytes.fromhex(topic[2:])
    if kind == "address":
        return checksum("0x" + raw[12:].hex())
    if kind.startswith("uint"):
        return int.from_bytes(raw, "big")
    if kind.startswith("int"):
        return int.from_bytes(raw, "big", signed=True)
    if kind == "bool":
        return raw[-1] == 1
    if kind.startswith("bytes") and kind[5:].isdigit():
        return "0x" + raw[: int(kind[5:])].hex()
    # Dynamic indexed values are only their hash.
    return topic


class Decoder:
    """Decodes the logs of a fixed set of contracts."""

    def __init__(self, contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]) -> None:
        """``contracts``: name → (address, ABI)."""
        self._specs: dict[tuple[str, str], _EventSpec] = {}
        self.addresses: dict[str, str] = {}
        for name, (address, abi) in contracts.items():
            address = address.lower()
            self.addresses[address] = name
            for item in abi:
                if item.get("type") != "event" or item.get("anonymous"):
                    continue
                topic0 = "0x" + keccak(text=_signature(item)).hex()
                inputs = item["inputs"]
                self._specs[(address, topic0)] = _EventSpec(
                    contract=name,
                    name=item["name"],
                    indexed=tuple((i["name"], _canonical(i)) for i in inputs if i["indexed"]),
                    data_names=tuple(i["name"] for i in inputs if not i["indexed"]),
                    data_types=tuple(_canonical(i) for i in inputs if not i["indexed"]),
                    order=tuple(i["name"] for i in inputs),
                )

    def decode(self, log: Mapping[str, Any]) -> DecodedEvent:
        """Decode one ``eth_getLogs`` entry (hex-string fields, as JSON-RPC gives them)."""
        address = log["address"].lower()
        topics: list[str] = log["topics"]
        spec = self._specs.get((address, topics[0].lower())) if topics else None
        if spec is None:
            raise MirrorError(
                f"unknown event at {address} (topic {topics[0] if topics else None}) in block "
                f"{int(log['blockNumber'], 16)}: is the ABI snapshot current?"
            )
        args: dict[str, Any] = {}
        if len(topics) != len(spec.indexed) + 1:
            raise MirrorError(f"{spec.contract}.{spec.name}: {len(topics)} topics")
        for (arg, kind), topic in zip(spec.indexed, topics[1:], strict=True):
            args[arg] = _topic_value(kind, topic)
        if spec.data_types:
            values = abi_decode(spec.data_types, bytes.fromhex(log["data"][2:]))
            for arg, kind, value in zip(spec.data_names, spec.data_types, values, strict=True):
                args[arg] = _value(kind, value)
        if spec.indexed and spec.data_types:
            args = {name: args[name] for name in spec.order}
        return DecodedEvent(
            block_number=int(log["blockNumber"], 16),
            block_hash=log["blockHash"],
            tx_hash=log["transactionHash"],
            tx_index=int(log["transactionIndex"], 16),
            log_index=int(log["logIndex"], 16),
            address=checksum(address),
            contract=spec.contract,
            name=spec.name,
            args=args,
        )
