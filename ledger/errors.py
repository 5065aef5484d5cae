"""Exception hierarchy of the ledger layer, and decoding of contract reverts.

Every error raised on purpose by ``ledger`` (and by the code built on it) derives from
:class:`LedgerError`::

    LedgerError
    ├── ConfigurationError           bad settings, missing toolchain files
    ├── CompilationError             solc reported errors (formatted messages attached)
    ├── ArtifactNotFoundError        no compiled artifact with that contract name
    ├── ChainError                   talking to the node failed
    │   ├── ChainUnavailableError    node unreachable after retries
    │   │   └── NodeUnavailable      the same, from the JSON-RPC client (ledger.jsonrpc)
    │   ├── RpcError                 the node answered with a JSON-RPC error (ledger.jsonrpc)
    │   │   └── RangeTooLarge        eth_getLogs refused the range: the fetcher splits it
    │   └── AnvilError               the local anvil process would not start or stop
    ├── UndecodableLog               a log the codec cannot decode (ledger.codec)
    └── TransactionError             a transaction could not be sent or did not succeed
        ├── ContractRevert           the EVM reverted: decoded name, args, raw data, tx hash
        ├── TransactionTimeoutError  not mined within the allotted time
        └── NonceError               the nonce store failed (lock timeout, corrupt file)

Revert decoding lives in :mod:`ledger.reverts`: contract-agnostic, a selector → error-ABI
table is built from the ABIs of *all* compiled artifacts (``build/artifacts``), plus the
standard ``Error(string)`` and ``Panic(uint256)``; more ABIs can be added with
:func:`~ledger.reverts.register_abi`. :func:`~ledger.reverts.decode_revert` turns revert data
into a :class:`DecodedRevert`; :func:`~ledger.reverts.revert_from_exception` does the same for
the exceptions web3.py raises from ``eth_call``/``eth_estimateGas`` (``ContractCustomError``,
``ContractLogicError``, ``Web3RPCError``); and
:func:`~ledger.reverts.revert_for_failed_transaction` replays a mined, failed transaction with
``eth_call`` at its block to recover the revert data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------------------------
# Exception hierarchy
# --------------------------------------------------------------------------------------------


class LedgerError(Exception):
    """Root of every error the ledger layer raises on purpose."""


class ConfigurationError(LedgerError):
    """Settings or toolchain files are missing or inconsistent."""


class CompilationError(LedgerError):
    """The Solidity compiler reported one or more errors."""

    def __init__(self, message: str, messages: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.messages: list[str] = list(messages)


class ArtifactNotFoundError(LedgerError):
    """No compiled artifact exists under the requested contract name."""


class ChainError(LedgerError):
    """Communicating with the node failed."""


class ChainUnavailableError(ChainError):
    """The node could not be reached, even after retrying."""


class UndecodableLog(LedgerError):
    """A log of the deployment's contracts that the codec cannot decode: an unknown event
    (the ABI snapshot is stale) or a malformed one."""


class AnvilError(ChainError):
    """The local anvil process failed to start, answer or stop."""


class TransactionError(LedgerError):
    """A transaction could not be sent, or it did not succeed."""


class TransactionTimeoutError(TransactionError):
    """A broadcast transaction was not mined within the allotted time."""

    def __init__(self, message: str, tx_hash: str | None = None) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


class NonceError(TransactionError):
    """The nonce store could not allocate or record a nonce."""


@dataclass(frozen=True)
class DecodedRevert:
    """A decoded revert: error ``name``, ``args`` by parameter name and 0x ``selector``.

    Special names: ``Error`` (``Error(string)``, args ``{"reason": str}``), ``Panic``
    (``Panic(uint256)``, args ``{"code": int}``), ``EmptyRevert`` (no data at all) and
    ``UnknownError`` (selector in no known ABI, args ``{"data": "0x..."}``).
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    selector: str = ""

    def describe(self) -> str:
        """Render as ``Name(arg=value, ...)``."""
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self.args.items())
        return f"{self.name}({inner})"


class ContractRevert(TransactionError):
    """The EVM reverted. Carries the decoded error, the raw revert data and the tx hash.

    ``exc.name`` and ``exc.args`` are the decoded error's name and arguments by parameter
    name (``args`` deliberately shadows ``BaseException.args``; ``str(exc)`` and ``repr``
    still work, and the exception pickles across processes).
    """

    def __init__(
        self,
        decoded: DecodedRevert,
        data: bytes = b"",
        tx_hash: str | None = None,
        message: str | None = None,
    ) -> None:
        self.decoded = decoded
        self.data = data
        self.tx_hash = tx_hash
        self._message = message
        text = message or f"contract reverted: {decoded.describe()}"
        if tx_hash:
            text += f" (tx {tx_hash})"
        self.message = text
        super().__init__(text)

    @property
    def name(self) -> str:
        """The decoded error name (``InvoiceNotFound``, ``Error``, ``Panic``...)."""
        return self.decoded.name

    @property
    def args(self) -> dict[str, Any]:  # type: ignore[override]
        """The decoded error's arguments, by parameter name."""
        return self.decoded.args

    @property
    def selector(self) -> str:
        """The 0x-prefixed 4-byte selector of the error ("" when there was no data)."""
        return self.decoded.selector

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.decoded, self.data, self.tx_hash, self._message))


def _short(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return repr(value)


# --------------------------------------------------------------------------------------------
# Error ABI table
# --------------------------------------------------------------------------------------------

PANIC_REASONS: dict[int, str] = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "invalid storage byte array encoding",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to zero-initialised internal function",
}
