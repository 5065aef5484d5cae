"""Decoding contract reverts: a selector → error-ABI table built from every compiled
artifact, and the shapes web3.py raises them in (see :mod:`ledger.errors` for the table's
story and the exceptions it produces: :class:`~ledger.errors.ContractRevert`)."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_typing import HexStr
from eth_utils.abi import collapse_if_tuple
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

if TYPE_CHECKING:
    from web3.types import TxParams

    from ledger.node import Web3Client

from ledger.errors import ContractRevert, DecodedRevert

log = logging.getLogger(__name__)

ERROR_STRING_ABI: dict[str, Any] = {
    "type": "error",
    "name": "Error",
    "inputs": [{"name": "reason", "type": "string"}],
}
PANIC_ABI: dict[str, Any] = {
    "type": "error",
    "name": "Panic",
    "inputs": [{"name": "code", "type": "uint256"}],
}


@dataclass(frozen=True)
class ErrorABI:
    """One error definition: name, canonical signature, 4-byte selector and ABI inputs."""

    name: str
    signature: str
    selector: bytes
    inputs: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_abi(cls, entry: Mapping[str, Any]) -> ErrorABI:
        """Build from one ``{"type": "error", ...}`` ABI entry."""
        inputs = tuple(entry.get("inputs", ()))
        types = ",".join(collapse_if_tuple(dict(i)) for i in inputs)
        signature = f"{entry['name']}({types})"
        return cls(entry["name"], signature, keccak(text=signature)[:4], inputs)


class ErrorTable:
    """Selector → error ABI, merged from any number of contract ABIs.

    The same error declared by several contracts (an OpenZeppelin error, a shared interface)
    has one selector and one entry; a genuine selector clash between different signatures
    keeps the first and logs a warning.
    """

    def __init__(self, abis: Iterable[Iterable[Mapping[str, Any]]] = ()) -> None:
        self._by_selector: dict[bytes, ErrorABI] = {}
        self.add_abi([ERROR_STRING_ABI, PANIC_ABI])
        for abi in abis:
            self.add_abi(abi)

    def __len__(self) -> int:
        return len(self._by_selector)

    def add_abi(self, abi: Iterable[Mapping[str, Any]]) -> None:
        """Add every ``error`` entry of a contract ABI."""
        for entry in abi:
            if entry.get("type") != "error":
                continue
            err = ErrorABI.from_abi(entry)
            known = self._by_selector.get(err.selector)
            if known is None:
                self._by_selector[err.selector] = err
            elif known.signature != err.signature:
                log.warning(
                    "error selector clash 0x%s: keeping %s, ignoring %s",
                    err.selector.hex(),
                    known.signature,
                    err.signature,
                )

    def lookup(self, selector: bytes) -> ErrorABI | None:
        """Return the error ABI for a 4-byte selector, if known."""
        return self._by_selector.get(bytes(selector))

    def signatures(self) -> dict[str, str]:
        """Return ``{"0xselector": "Name(types)"}`` for every known error."""
        return {"0x" + s.hex(): e.signature for s, e in sorted(self._by_selector.items())}

    def decode(self, data: bytes | str | None) -> DecodedRevert:
        """Decode raw revert data (bytes or 0x hex) into a :class:`DecodedRevert`."""
        raw = _as_bytes(data)
        if not raw:
            return DecodedRevert("EmptyRevert", {}, "")
        selector = raw[:4]
        sel_hex = "0x" + selector.hex()
        err = self.lookup(selector) if len(raw) >= 4 else None
        if err is None:
            return DecodedRevert("UnknownError", {"data": "0x" + raw.hex()}, sel_hex)
        types = [collapse_if_tuple(dict(i)) for i in err.inputs]
        try:
            values = abi_decode(types, raw[4:]) if types else ()
        except (DecodingError, ValueError, OverflowError) as exc:
            log.debug("cannot decode %s payload: %s", err.signature, exc)
            return DecodedRevert(err.name, {"data": "0x" + raw.hex()}, sel_hex)
        args: dict[str, Any] = {}
        for index, (inp, value) in enumerate(zip(err.inputs, values, strict=True)):
            key = inp.get("name") or f"arg{index}"
            args[key] = _normalise(inp, value)
        return DecodedRevert(err.name, args, sel_hex)


def _normalise(inp: Mapping[str, Any], value: Any) -> Any:
    """Make decoded values friendlier: checksum addresses, named tuple components."""
    typ: str = inp["type"]
    if typ.endswith("]"):
        inner = dict(inp)
        inner["type"] = typ[: typ.rindex("[")]
        return [_normalise(inner, v) for v in value]
    if typ == "tuple":
        comps = inp.get("components", ())
        return {
            (c.get("name") or f"arg{i}"): _normalise(c, v)
            for i, (c, v) in enumerate(zip(comps, value, strict=True))
        }
    if typ == "address":
        return to_checksum_address(value)
    return value


_HEX_RE = re.compile(r"^(0x)?[0-9a-fA-F]*$")


def _as_bytes(data: bytes | bytearray | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    text = data.strip()
    if text.startswith("Reverted "):
        text = text[len("Reverted ") :]
    if not _HEX_RE.match(text):
        return b""
    text = text[2:] if text.startswith("0x") else text
    if len(text) % 2:
        return b""
    return bytes.fromhex(text)


# --------------------------------------------------------------------------------------------
# The default table: all compiled artifacts + registered extras
# --------------------------------------------------------------------------------------------

_lock = threading.Lock()
_registered: list[list[Mapping[str, Any]]] = []
_cache: tuple[tuple[str, int], ErrorTable] | None = None


def register_abi(abi: Iterable[Mapping[str, Any]]) -> None:
    """Add a contract ABI's errors to the default table (e.g. an externally built contract)."""
    global _cache
    with _lock:
        _registered.append(list(abi))
        _cache = None


def _artifact_abis(directory: Path) -> list[list[Mapping[str, Any]]]:
    abis: list[list[Mapping[str, Any]]] = []
    if not directory.is_dir():
        return abis
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable artifact %s: %s", path, exc)
            continue
        abi = doc.get("abi") if isinstance(doc, dict) else None
        if isinstance(abi, list):
            abis.append(abi)
    return abis


def default_error_table() -> ErrorTable:
    """Return the table built from ``build/artifacts`` plus :func:`register_abi` extras.

    It is rebuilt whenever the artifacts' fingerprint file changes (i.e. after a rebuild).
    """
    global _cache
    from ledger.paths import artifacts_dir

    directory = artifacts_dir()
    stamp_file = directory / ".fingerprint"
    try:
        stamp = (str(directory), stamp_file.stat().st_mtime_ns)
    except OSError:
        stamp = (str(directory), 0)
    with _lock:
        if _cache is not None and _cache[0] == stamp:
            return _cache[1]
        table = ErrorTable(_artifact_abis(directory))
        for abi in _registered:
            table.add_abi(abi)
        _cache = (stamp, table)
        return table


def decode_revert(data: bytes | str | None, table: ErrorTable | None = None) -> DecodedRevert:
    """Decode revert data with ``table`` (default: :func:`default_error_table`)."""
    return (table or default_error_table()).decode(data)


# --------------------------------------------------------------------------------------------
# From web3 exceptions and failed receipts
# --------------------------------------------------------------------------------------------

_REVERT_WORDS = ("revert", "execution reverted")


def _find_hex(obj: Any) -> str | None:
    """Find revert data in the shapes nodes use: "0x..", {"data": ..}, nested dicts."""
    if isinstance(obj, str):
        candidate = obj.strip()
        if candidate.startswith("Reverted "):
            candidate = candidate[len("Reverted ") :]
        if candidate.startswith("0x") and _HEX_RE.match(candidate) and len(candidate) % 2 == 0:
            return candidate
        return None
    if isinstance(obj, Mapping):
        for key in ("data", "result", "revertData", "error"):
            if key in obj:
                found = _find_hex(obj[key])
                if found is not None:
                    return found
        for value in obj.values():
            if isinstance(value, Mapping):
                found = _find_hex(value)
                if found is not None:
                    return found
    return None


def revert_data_from_exception(exc: BaseException) -> tuple[bool, bytes, str]:
    """Return ``(is_revert, data, message)`` for an exception raised by a call/estimate.

    Handles ``ContractLogicError`` and its subclasses (``.data``), ``Web3RPCError``
    (``.rpc_response["error"]``) and plain ``ValueError({"code", "message", "data"})``.
    """
    from web3.exceptions import ContractLogicError, Web3RPCError

    message = str(getattr(exc, "message", None) or exc)
    if isinstance(exc, ContractLogicError):
        hex_data = _find_hex(exc.data)
        return True, _as_bytes(hex_data), message
    error: Any = None
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, Mapping):
        error = exc.rpc_response.get("error")
    elif exc.args and isinstance(exc.args[0], Mapping):
        error = exc.args[0]
    if isinstance(error, Mapping):
        message = str(error.get("message", message))
        hex_data = _find_hex(error.get("data"))
        code = error.get("code")
        reverted = hex_data is not None or code == 3 or _mentions_revert(message)
        return reverted, _as_bytes(hex_data), message
    return _mentions_revert(message), b"", message


def _mentions_revert(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in _REVERT_WORDS)


def revert_from_exception(
    exc: BaseException, tx_hash: str | None = None, table: ErrorTable | None = None
) -> ContractRevert | None:
    """Turn a web3 call/estimate exception into a :class:`ContractRevert` (None if no revert)."""
    if isinstance(exc, ContractRevert):
        return exc
    is_revert, data, message = revert_data_from_exception(exc)
    if not is_revert:
        return None
    if data:
        decoded = decode_revert(data, table)
    else:
        # No data: some nodes only put the reason string in the message.
        reason = message
        for prefix in ("execution reverted:", "Execution reverted:", "reverted:"):
            if prefix in reason:
                reason = reason.split(prefix, 1)[1].strip()
                break
        else:
            reason = ""
        decoded = (
            DecodedRevert("Error", {"reason": reason}, "0x08c379a0")
            if reason
            else (DecodedRevert("EmptyRevert", {}, ""))
        )
    return ContractRevert(decoded, data=data, tx_hash=tx_hash)


async def revert_for_failed_transaction(
    w3: Web3Client, tx_hash: str, table: ErrorTable | None = None
) -> ContractRevert:
    """Recover the revert of a mined transaction whose receipt has ``status == 0``.

    The transaction is replayed with ``eth_call`` at its block (state after the block: the
    failed transaction itself changed nothing but its sender's nonce and balance, and
    earlier transactions of the same block, often pipelined by the same sender, are in).
    """
    tx = await w3.eth.get_transaction(HexStr(tx_hash))
    receipt = await w3.eth.get_transaction_receipt(HexStr(tx_hash))
    call: dict[str, Any] = {
        "from": tx["from"],
        "to": tx.get("to"),
        "data": tx.get("input", b""),
        "value": tx.get("value", 0),
        "gas": tx["gas"],
    }
    try:
        await w3.eth.call(cast("TxParams", call), block_identifier=receipt["blockNumber"])
    except Exception as exc:
        rev = revert_from_exception(exc, tx_hash=tx_hash, table=table)
        if rev is not None:
            return rev
        return ContractRevert(
            DecodedRevert("UnknownError", {"message": str(exc)}, ""),
            tx_hash=tx_hash,
        )
    if receipt["gasUsed"] >= tx["gas"]:
        return ContractRevert(DecodedRevert("OutOfGas", {"gas": tx["gas"]}, ""), tx_hash=tx_hash)
    return ContractRevert(
        DecodedRevert("UnknownError", {"message": "replay did not revert"}, ""),
        tx_hash=tx_hash,
    )
