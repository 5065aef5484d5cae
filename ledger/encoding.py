"""Call data for a contract function without web3.py's contract machinery.

``contract.functions.split(...)`` then ``_encode_transaction_data()`` costs web3.py an ABI
lookup by argument matching, a normaliser pass over the arguments (``map_abi_data`` through
``toolz`` pipelines), a checksum per address and its own encoder lookups: 0.3 ms of CPU per
write (py-spy, 13% of the sending process with the function object's construction).
:class:`FunctionEncoder` does it once per ABI function: the selector and the argument types
are worked out when it is made, and each call is the selector and ``eth_abi.encode``.

Same answers or none: the arguments are checked as web3.py's strict checks would (checksum
addresses, ``bytesN`` of exactly N bytes, ints that are not bools, ...); anything it is not
sure of answers ``None`` and the caller goes through web3.py, which encodes it or raises its
own error as before (``tests/ledger/test_encoding.py`` compares the two).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils.address import is_checksum_address

_ARRAY = re.compile(r"^(.*)\[(\d*)\]$")
_SIZED = re.compile(r"^(u?int|bytes)(\d+)$")


def canonical_type(param: Mapping[str, Any]) -> str:
    """The ABI type string of a parameter, tuples spelled out (``(uint128,bool)[]``)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@functools.lru_cache(maxsize=4096)
def _checksummed(address: str) -> bool:
    return is_checksum_address(address)


def _valid(param: Mapping[str, Any], value: Any) -> bool:
    """Whether web3.py's strict checks would take ``value`` for ``param`` unchanged."""
    kind = str(param["type"])
    array = _ARRAY.match(kind)
    if array is not None:
        if not isinstance(value, list | tuple):
            return False
        if array.group(2) and len(value) != int(array.group(2)):
            return False
        element = {**param, "type": array.group(1)}
        return all(_valid(element, v) for v in value)
    if kind == "tuple":
        components = param["components"]
        if not isinstance(value, list | tuple) or len(value) != len(components):
            return False
        return all(_valid(c, v) for c, v in zip(components, value, strict=True))
    if kind == "address":
        return isinstance(value, str) and _checksummed(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "bytes":
        return isinstance(value, bytes)
    sized = _SIZED.match(kind)
    if sized is None:
        return False
    width = int(sized.group(2))
    if sized.group(1) == "bytes":
        return isinstance(value, bytes) and len(value) == width
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    if sized.group(1) == "uint":
        return 0 <= value < 1 << width
    return -(1 << (width - 1)) <= value < 1 << (width - 1)


class FunctionEncoder:
    """One ABI function: its selector and argument types, worked out once."""

    def __init__(self, abi: Mapping[str, Any]) -> None:
        self.abi = abi
        self.inputs: list[Mapping[str, Any]] = list(abi.get("inputs", []))
        self.types = [canonical_type(p) for p in self.inputs]
        self.signature = f"{abi['name']}({','.join(self.types)})"
        self.selector = keccak(self.signature.encode())[:4]

    def encode(self, args: Sequence[Any]) -> bytes | None:
        """The call data, or ``None`` if the arguments are not ones it is sure of."""
        if len(args) != len(self.inputs):
            return None
        if not all(_valid(p, v) for p, v in zip(self.inputs, args, strict=True)):
            return None
        try:
            return self.selector + abi_encode(self.types, list(args))
        except Exception:  # web3.py decides (and words the error)
            return None


class ContractEncoder:
    """The functions of one contract ABI by name (an overloaded name is left to web3.py)."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        names: dict[str, list[Mapping[str, Any]]] = {}
        for entry in abi:
            if entry.get("type") == "function":
                names.setdefault(str(entry["name"]), []).append(entry)
        self.functions = {n: FunctionEncoder(e[0]) for n, e in names.items() if len(e) == 1}

    def encode(self, function: str, args: Sequence[Any]) -> bytes | None:
        encoder = self.functions.get(function)
        return None if encoder is None else encoder.encode(args)


#: Per ABI (by identity: the artifacts and bound contracts keep theirs for the process).
_BY_ABI: dict[int, tuple[Any, ContractEncoder]] = {}


def contract_encoder(abi: Sequence[Mapping[str, Any]]) -> ContractEncoder:
    """The encoder of ``abi`` (made once per ABI object)."""
    found = _BY_ABI.get(id(abi))
    if found is None or found[0] is not abi:
        found = _BY_ABI[id(abi)] = (abi, ContractEncoder(abi))
    return found[1]


def encode_function_call(fn: Any) -> bytes | None:
    """The call data of a bound web3.py contract function (``contract.functions.f(*args)``)
    without web3.py's encoder, or ``None`` (keyword arguments, an overloaded name, arguments
    it is not sure of: ask web3.py)."""
    if getattr(fn, "kwargs", None):
        return None
    abi = getattr(fn, "contract_abi", None)
    name = getattr(fn, "fn_name", None)
    args = getattr(fn, "args", None)
    if abi is None or not isinstance(name, str) or args is None:
        return None
    encoder = contract_encoder(abi).functions.get(name)
    if encoder is None:
        return None
    identifier = getattr(fn, "abi_element_identifier", None)
    if isinstance(identifier, str) and "(" in identifier and identifier != encoder.signature:
        return None
    return encoder.encode(args)
