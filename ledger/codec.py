"""Decoding raw logs of the deployment's contracts into :class:`DecodedEvent`.

The decoder is built once from the contracts' ABIs: ``(address, topic0)`` → an event spec
with its indexed and data types. Indexed arguments are one 32-byte topic each and are decoded
directly from their hex. For an event made only of one-word static values (every event of the
platform but ``PayableIssued``) a decoder is compiled from the ABI once: straight-line code
that checks the shape and padding as ``eth_abi``'s strict decoder does, converts each word and
writes the arguments' JSON in the same pass. Anything else goes through ``eth_abi``. Decoding
is the indexer's hottest loop: the compiled decoders are several times faster than
``eth_abi`` and give identical values and JSON (``tests/unit/test_decode.py``).
Argument values are Python natives: ``int``, checksummed address ``str``, ``0x``-hex ``str``
for ``bytes32``, ``bool`` and lists of those. Logs from other addresses or with unknown
topics are refused, since ``eth_getLogs`` asked for these addresses only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.errors import UndecodableLog


@functools.lru_cache(maxsize=65536)
def checksum(address_hex: str) -> str:
    """Checksummed form of a 0x-address (cached: a platform has few distinct members)."""
    return to_checksum_address(address_hex)


class DecodedEvent(NamedTuple):
    """One log, decoded, with where it sits in the chain (a named tuple: one per log of a
    backfill, and the cheapest immutable record to make)."""

    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
    contract: str
    name: str
    args: Mapping[str, Any]
    #: ``args`` as compact JSON in the ABI's argument order (integers exact): the ``events``
    #: table's ``args`` column.
    args_json: str
    #: ``"Contract:Event"``, the handler key.
    key: str

    @property
    def position(self) -> tuple[int, int, int]:
        """Its place in the chain's order: (block, transaction, log)."""
        return (self.block_number, self.tx_index, self.log_index)


#: Decodes ``(topics, data)`` of one log into its arguments and their JSON.
ArgsDecoder = Callable[[Sequence[str], str], tuple[dict[str, Any], str]]


@dataclass(frozen=True)
class _EventSpec:
    contract: str
    name: str
    key: str
    decode: ArgsDecoder


def _signature(event: Mapping[str, Any]) -> str:
    return f"{event['name']}({','.join(_canonical(i) for i in event['inputs'])})"


def _canonical(param: Mapping[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


def _value(kind: str, value: Any) -> Any:
    """Normalise one value decoded by ``eth_abi``."""
    if kind == "address":
        return checksum(value)
    if kind == "bytes" or (kind.startswith("bytes") and kind[5:].isdigit()):
        return "0x" + bytes(value).hex()
    if kind.endswith("[]"):
        inner = kind[:-2]
        return [_value(inner, v) for v in value]
    return value


def _topic_value(kind: str, topic: str) -> Any:
    """An indexed argument: static values are their one word; dynamic ones only a hash."""
    word = topic[2:].lower()
    if kind == "address":
        if word[:24] != _ZEROS[:24]:
            raise ValueError(f"malformed address topic {topic}")
        return checksum("0x" + word[24:])
    if kind.startswith("uint"):
        value = int(word, 16)
        if value >> int(kind[4:] or 256):
            raise ValueError(f"malformed {kind} topic {topic}")
        return value
    if kind.startswith("int"):
        bits = int(kind[3:] or 256)
        value = int(word, 16)
        value -= (value >> 255) << 256
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise ValueError(f"malformed {kind} topic {topic}")
        return value
    if kind == "bool":
        if word not in (_ZEROS, _ONE):
            raise ValueError(f"malformed bool topic {topic}")
        return word == _ONE
    if kind.startswith("bytes") and kind[5:].isdigit():
        size = 2 * int(kind[5:])
        if word[size:] != _ZEROS[size:]:
            raise ValueError(f"malformed {kind} topic {topic}")
        return "0x" + word[:size]
    return "0x" + word


_ZEROS = "0" * 64
_ONE = "0" * 63 + "1"


def _compact_json() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"))``, through one C encoder made once.

    ``json.dumps`` (and ``JSONEncoder.encode``) make a new C encoder on every call, which
    costs more than encoding a row of a dozen values: 9.4 µs a claim's row and 2.9 µs a
    one-element key through ``json.dumps``, 4.6 and 0.5 µs through this (load 8). Same text;
    no check for circular structures (rows and arguments are flat).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the C accelerator
        return json.JSONEncoder(separators=(",", ":")).encode

    def default(value: Any) -> Any:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    encode = make(
        None, default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def compact(value: Any) -> str:
        return "".join(encode(value, 0))

    return compact


#: ``json.dumps(value, separators=(",", ":"))``, cheaper per call (:func:`_compact_json`).
json_text = _compact_json()


def _generic_decoder(event: Mapping[str, Any]) -> ArgsDecoder:
    """Any event: indexed values from their topics, the data part through ``eth_abi``."""
    inputs = event["inputs"]
    indexed = [(i["name"], _canonical(i)) for i in inputs if i["indexed"]]
    data_names = [i["name"] for i in inputs if not i["indexed"]]
    data_types = [_canonical(i) for i in inputs if not i["indexed"]]
    order = [i["name"] for i in inputs]

    def decode(topics: Sequence[str], data: str) -> tuple[dict[str, Any], str]:
        if len(topics) != len(indexed) + 1:
            raise ValueError(f"{len(topics)} topics, expected {len(indexed) + 1}")
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(indexed, topics[1:], strict=True):
            args[name] = _topic_value(kind, topic)
        if data_types:
            try:
                values = abi_decode(data_types, bytes.fromhex(data[2:]))
            except DecodingError as exc:
                raise ValueError(str(exc)) from exc
            for name, kind, value in zip(data_names, data_types, values, strict=True):
                args[name] = _value(kind, value)
        elif data not in ("0x", ""):
            raise ValueError(f"{len(data) - 2} hex digits of data, expected none")
        args = {name: args[name] for name in order}
        return args, json_text(args)

    return decode


#: A 64-hex-digit word → the checksummed address it holds, for the compiled decoders: the
#: word is the cache key as it comes, so a member's address is neither sliced, prefixed nor
#: looked up through ``functools.lru_cache`` again. Only well-padded words are put in.
_ADDRESS_WORDS: dict[str, str] = {}
#: Words cached at most (a platform has few distinct members; cleared when reached).
ADDRESS_WORDS_MAX = 65_536


def _address_word(word: str) -> str:
    """The checksummed address of a 32-byte word (64 hex digits, its first 24 zeros), put in
    :data:`_ADDRESS_WORDS`; :class:`ValueError` when the padding is not zero."""
    if not word.startswith(_ZEROS[:24]):
        raise ValueError("non-zero padding in a word")
    address = checksum("0x" + word[24:])
    if len(_ADDRESS_WORDS) >= ADDRESS_WORDS_MAX:
        _ADDRESS_WORDS.clear()
    _ADDRESS_WORDS[word] = address
    return address


def _static_decoder(event: Mapping[str, Any]) -> ArgsDecoder | None:
    """A decoder compiled for one event whose values are all one-word static types.

    The generated function is straight-line code: check the topic count and data length,
    check that every word's padding is zero (as ``eth_abi``'s strict decoder does), convert
    each word, and build the JSON text in one f-string. Hex digits are taken in either case
    (``int`` and the checksum do not mind) and only a ``bytesN`` value is lowered, so a
    log's data is not copied to lower case first. ``None`` when the event has a dynamic or
    multi-word type (``PayableIssued``'s invoice list), or names that are not plain
    identifiers.
    """
    inputs = event["inputs"]
    topic_count = 1 + sum(1 for i in inputs if i["indexed"])
    data_words = sum(1 for i in inputs if not i["indexed"])
    lines = [
        "def decode(topics, data):",
        f"    if len(topics) != {topic_count} or len(data) != {2 + 64 * data_words}:",
        "        raise ValueError(f'{len(topics)} topics and {len(data) - 2} hex digits of "
        f"data, expected {topic_count} and {64 * data_words}')",
    ]
    checks: list[str] = []
    json_parts: list[str] = []
    prefixes: dict[int, str] = {}  # zero-padding lengths → the name of that many zeros
    topic, word = 1, 0

    def zeros(count: int) -> str:
        return prefixes.setdefault(count, f"Z{count}")

    for position, item in enumerate(inputs):
        name, kind = item["name"], _canonical(item)
        if not name.isidentifier():
            return None
        w = f"w{position}"
        if item["indexed"]:
            lines.append(f"    t{topic} = topics[{topic}]")
            checks.append(f"len(t{topic}) != 66")
            lines.append(f"    {w} = t{topic}[2:]")
            topic += 1
        else:
            lines.append(f"    {w} = data[{2 + 64 * word}:{66 + 64 * word}]")
            word += 1
        var = f"v{position}"
        if kind == "address":
            # The word's checksummed address from the decoder's cache (a word found there
            # passed the padding check when it was put there); else checked and converted.
            lines.append(f"    {var} = ADDRESSES.get({w})")
            lines.append(f"    if {var} is None:")
            lines.append(f"        {var} = address_word({w})")
            json_parts.append(f'"{name}":"{{{var}}}"')
        elif kind == "bool":
            checks.append(f"{w} not in BOOLS")
            lines.append(f"    {var} = {w} == ONE")
            json_parts.append(f'"{name}":{{"true" if {var} else "false"}}')
        elif kind.startswith("uint") and kind[4:].isdigit():
            pad = 64 - int(kind[4:]) // 4
            if pad:
                checks.append(f"not {w}.startswith({zeros(pad)})")
            lines.append(f"    {var} = int({w}, 16)")
            json_parts.append(f'"{name}":{{{var}}}')
        elif kind.startswith("bytes") and kind[5:].isdigit():
            size = 2 * int(kind[5:])
            if size < 64:
                checks.append(f"not {w}.endswith({zeros(64 - size)})")
            lines.append(f"    {var} = '0x' + {w}[:{size}].lower()")
            json_parts.append(f'"{name}":"{{{var}}}"')
        else:  # signed integers and anything wider than a word take the generic path
            return None
    if checks:
        lines.append(f"    if {' or '.join(checks)}:")
        lines.append("        raise ValueError('non-zero padding in a word')")
    args = ", ".join(f"'{i['name']}': v{n}" for n, i in enumerate(inputs))
    text = "{{" + ",".join(json_parts) + "}}"
    lines.append(f"    return {{{args}}}, f'''{text}'''")
    namespace: dict[str, Any] = {
        "ADDRESSES": _ADDRESS_WORDS,
        "address_word": _address_word,
        "ONE": _ONE,
        "BOOLS": (_ZEROS, _ONE),
    }
    namespace.update({variable: "0" * count for count, variable in prefixes.items()})
    # The source is built above from the ABI's types and identifier names only.
    exec("\n".join(lines), namespace)
    return cast(ArgsDecoder, namespace["decode"])


class Decoder:
    """Decodes the logs of a fixed set of contracts."""

    def __init__(self, contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]) -> None:
        """``contracts``: name → (address, ABI)."""
        #: (address, topic0), both lower-case hex → the event and its contract's checksummed
        #: address.
        self._specs: dict[tuple[str, str], tuple[_EventSpec, str]] = {}
        self.addresses: dict[str, str] = {}
        for name, (address, abi) in contracts.items():
            address = address.lower()
            self.addresses[address] = name
            checksummed = checksum(address)
            for item in abi:
                if item.get("type") != "event" or item.get("anonymous"):
                    continue
                topic0 = "0x" + keccak(text=_signature(item)).hex()
                spec = _EventSpec(
                    contract=name,
                    name=item["name"],
                    key=f"{name}:{item['name']}",
                    decode=_static_decoder(item) or _generic_decoder(item),
                )
                self._specs[(address, topic0)] = (spec, checksummed)

    def decode(self, log: Mapping[str, Any]) -> DecodedEvent:
        """Decode one ``eth_getLogs`` entry (hex-string fields, as JSON-RPC gives them)."""
        topics: list[str] = log["topics"]
        address = log["address"]
        # Nodes answer in lower case: the lookup lowers only what is not.
        found = self._specs.get((address, topics[0])) if topics else None
        if found is None and topics:
            address = address.lower()
            found = self._specs.get((address, topics[0].lower()))
        if found is None:
            raise UndecodableLog(
                f"unknown event at {address.lower()} (topic {topics[0] if topics else None}) "
                f"in block {int(log['blockNumber'], 16)}: is the ABI snapshot current?"
            )
        spec, checksummed = found
        try:
            args, args_json = spec.decode(topics, log["data"])
        except ValueError as exc:
            raise UndecodableLog(
                f"{spec.contract}.{spec.name} in block {int(log['blockNumber'], 16)} "
                f"(transaction {log.get('transactionHash')}): malformed log: {exc}"
            ) from exc
        # Positionally, through tuple's own constructor: a named tuple's keyword __new__
        # costs as much again as the rest of this method.
        return _new_event(
            DecodedEvent,
            (
                int(log["blockNumber"], 16),
                log["blockHash"],
                log["transactionHash"],
                int(log["transactionIndex"], 16),
                int(log["logIndex"], 16),
                checksummed,
                spec.contract,
                spec.name,
                args,
                args_json,
                spec.key,
            ),
        )


_new_event = tuple.__new__
