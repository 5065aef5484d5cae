"""A broadcast transaction waiting to be mined (:class:`PendingTx`), the per-account state
every :class:`~ledger.sender.TransactionSender` of a process shares, and how the node words
"this nonce is taken" (see :mod:`ledger.sender` for the recovery it drives)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from web3.exceptions import ProviderConnectionError, Web3RPCError
from web3.types import TxReceipt

from ledger.errors import TransactionTimeoutError
from ledger.jsonrpc import NodeUnavailable
from ledger.node import format_receipt, lean
from ledger.receipts import block_receipts

if TYPE_CHECKING:
    from ledger.sender import TransactionSender

log = logging.getLogger(__name__)


#: Messages (lower case, substrings) meaning "this nonce is not free any more".
NONCE_CONFLICT_MESSAGES = (
    "nonce too low",
    "already known",
    "known transaction",
    "already imported",
    "replacement transaction underpriced",
    "replacement_underpriced",
    "transaction underpriced",
    "nonce_too_low",
    "transaction_already_known",
)
#: Messages (lower case, substrings) meaning "this transaction offers less than the chain
#: now asks": its fee cap is below the base fee (anvil, geth, Besu wordings).
FEE_REFUSAL_MESSAGES = (
    "less than block base fee",
    "fee cap less than",
    "max fee per gas less than",
    "below current base fee",
    "max_fee_per_gas_below_current_base_fee",
    "gas price below configured minimum",
    "gas_price_below_current_base_fee",
    "feecap too low",
)
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    ConnectionError,
    TimeoutError,
    ProviderConnectionError,
    NodeUnavailable,  # the lean client's transport faults (ledger.node.lean: one attempt)
)


def rpc_error_message(exc: BaseException) -> str:
    """The node's error message for a JSON-RPC error (``str(exc)`` otherwise)."""
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, Mapping):
        error = exc.rpc_response.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
    if exc.args and isinstance(exc.args[0], Mapping) and "message" in exc.args[0]:
        return str(exc.args[0]["message"])
    return str(exc)


def is_nonce_conflict(exc: BaseException) -> bool:
    """True if a broadcast was refused because the nonce is (or looks) already used."""
    message = rpc_error_message(exc).lower()
    return any(m in message for m in NONCE_CONFLICT_MESSAGES)


def is_fee_refusal(exc: BaseException) -> bool:
    """True if a broadcast was refused because its fees are below what the chain now asks."""
    message = rpc_error_message(exc).lower()
    return any(m in message for m in FEE_REFUSAL_MESSAGES)


@dataclass
class AccountState:
    """Per-account state shared by every sender of this process for that account."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    inflight: dict[int, PendingTx] = field(default_factory=dict)
    recovering: asyncio.Lock = field(default_factory=asyncio.Lock)


# Per event loop (asyncio locks belong to one loop; a closed loop's entries go with it),
# then per (chain id, address).
ACCOUNTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[int, str], AccountState]
] = weakref.WeakKeyDictionary()


def account_state(chain_id: int, address: str, create: bool = True) -> AccountState | None:
    loop = asyncio.get_running_loop()
    accounts = ACCOUNTS.get(loop)
    if accounts is None:
        if not create:
            return None
        accounts = ACCOUNTS[loop] = {}
    key = (chain_id, address.lower())
    state = accounts.get(key)
    if state is None and create:
        state = accounts[key] = AccountState()
    return state


class PendingTx:
    """A broadcast transaction; ``await pending.receipt()`` waits for it to be mined.

    ``tx_hash`` and ``nonce`` may change if recovery had to re-sign the transaction.
    """

    def __init__(
        self, sender: TransactionSender, tx: dict[str, Any], nonce: int, raw: bytes, tx_hash: str
    ) -> None:
        self.sender = sender
        self.tx = tx
        self.nonce = nonce
        self.raw = raw
        self.tx_hash = tx_hash
        self.hashes: list[str] = [tx_hash]  # every hash this transaction was broadcast under
        self.broadcast_at = time.monotonic()
        #: The call shape whose cached gas estimate this was sent with (None: estimated).
        self.gas_shape: tuple[str, bytes, int, bool] | None = None
        #: Its last wait timed out and no other has begun: nobody awaits its outcome here (its
        #: write, retried elsewhere, may have signed the call again under another hash).
        self.abandoned = False
        self._receipt: TxReceipt | None = None

    def __repr__(self) -> str:
        return f"PendingTx(nonce={self.nonce}, hash={self.tx_hash})"

    @property
    def done(self) -> bool:
        """Whether a receipt has been seen."""
        return self._receipt is not None

    def _resolve(self, receipt: TxReceipt) -> None:
        self._receipt = receipt
        self.sender._forget(self)

    async def _poll_once(self) -> TxReceipt | None:
        rpc = lean(self.sender.w3)
        for h in reversed(self.hashes):
            raw = await rpc.call("eth_getTransactionReceipt", [h])
            if raw is not None:
                if h != self.tx_hash:
                    self.tx_hash = h
                receipt = format_receipt(raw)
                self._resolve(receipt)
                return receipt
        return None

    async def receipt(
        self, timeout_s: float | None = None, poll_interval_s: float | None = None
    ) -> TxReceipt:
        """Wait for the receipt (any status). Raises :class:`TransactionTimeoutError`.

        Waits through the node connection's :class:`~ledger.receipts.BlockReceipts` watcher
        (receipts by block, shared by every waiter); every ``stuck_after_s`` without a receipt
        the account's recovery pass runs (it may re-sign: the hashes watched are refreshed).
        """
        if self._receipt is not None:
            return self._receipt
        self.abandoned = False
        s = self.sender
        timeout_s = s.receipt_timeout_s if timeout_s is None else timeout_s
        interval = s.poll_interval_s if poll_interval_s is None else poll_interval_s
        watcher = block_receipts(s.w3, interval)
        deadline = time.monotonic() + timeout_s
        last_check = time.monotonic()
        while True:
            # Registered before the direct check: nothing mined in between is missed.
            future = watcher.watch(self.hashes)
            try:
                try:
                    receipt = await self._poll_once()
                except CONNECTION_ERRORS as exc:
                    log.info("receipt check for %s: node unreachable (%s)", self.tx_hash, exc)
                    receipt = None
                if receipt is None:
                    watcher.follow()
                    now = time.monotonic()
                    wait_s = max(0.0, min(deadline, last_check + s.stuck_after_s) - now)
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a
                    # cancellation that comes as the receipt arrives, and a cancelled wait
                    # went on (a loop ended by cancelling it, as the audit anchoring's, for ever).
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait_s):
                            await asyncio.shield(future)
                    if future.done():  # a receipt that came as the wait ran out counts too
                        found_hash, found = future.result()
                        if found_hash != self.tx_hash.lower():
                            self.tx_hash = next(h for h in self.hashes if h.lower() == found_hash)
                        self._resolve(found)
                        receipt = found
            finally:
                watcher.unwatch(future)
            if receipt is not None:
                return receipt
            now = time.monotonic()
            if now >= deadline:
                self.abandoned = True
                raise TransactionTimeoutError(
                    f"transaction {self.tx_hash} (nonce {self.nonce}) not mined "
                    f"within {timeout_s:.0f}s",
                    tx_hash=self.tx_hash,
                )
            if now - last_check >= s.stuck_after_s:
                last_check = now
                try:
                    await s.recover()
                except CONNECTION_ERRORS as exc:
                    log.info("recovery postponed, node unreachable: %s", exc)
                if self._receipt is not None:
                    return self._receipt
