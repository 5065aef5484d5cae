"""The transaction layer as it was before issue 13's changes (commit 823f713), reproduced so
that every optimisation's before/after ratio is measured in the same run, on the same chain.

:class:`BaselineSender` is today's :class:`~ledger.sender.TransactionSender` with the old
behaviour put back, piece by piece:

- ``serial=True``: the per-account lock held over the chain's pending nonce (asked every
  time), signing and the broadcast, as before;
- ``web3_encoding=True``: call data through web3.py's contract functions and signing through
  eth-account's ``sign_transaction``, as before change 21 of docs/performance.md (the bench's
  writes build a web3.py contract function for such a sender: :func:`bench.perf.writes.transact`);
- ``poll=True``: each waiter polls ``eth_getTransactionReceipt`` for its own hash (50 ms,
  growing ×1.5 to 1 s), instead of the receipts-by-block watcher.

Gas: without a :class:`~ledger.sender.GasEstimates` (the old behaviour) each write is
estimated; the run passes one for the "after" figures.

:class:`Web3StackSender` puts back web3.py's request stack on the hot path (before change 9 of
docs/performance.md: the broadcast, the pending nonce and every receipt through ``w3.eth``,
formatted and wrapped whether anyone waits for it or not); its connection's receipt watcher is
:class:`Web3BlockReceipts` (:func:`use_web3_stack`). ``python -m bench.perf.lean_rpc``
measures it next to today's sender.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from eth_typing import HexStr
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from ledger.errors import ChainUnavailableError, TransactionTimeoutError
from ledger.jsonrpc import CoalescingRpcClient, RpcClient
from ledger.node import _LEAN, _ONE_ATTEMPT, Web3Client
from ledger.pending import CONNECTION_ERRORS, PendingTx, is_nonce_conflict
from ledger.receipts import _WATCHERS, BlockReceipts, NoBlockReceipts
from ledger.reverts import revert_for_failed_transaction
from ledger.sender import BeforeBroadcast, Recording, TransactionSender


class BaselineSender(TransactionSender):
    def __init__(
        self,
        *args: Any,
        serial: bool = True,
        poll: bool = True,
        web3_encoding: bool = True,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        self.serial = serial
        self.poll = poll
        self.web3_encoding = web3_encoding
        if web3_encoding:
            self._signer = None  # eth-account's sign_transaction, as before change 21

    def _encode_call(self, fn: Any) -> dict[str, Any]:
        if not self.web3_encoding:
            return super()._encode_call(fn)
        return {"to": fn.address, "data": fn._encode_transaction_data()}

    async def send(
        self,
        tx: Mapping[str, Any],
        before_broadcast: BeforeBroadcast | None = None,
        *,
        recording: Recording | None = None,
    ) -> PendingTx:
        if not self.serial:
            return await super().send(tx, before_broadcast, recording=recording)
        prepared = await self.prepare(tx)
        state = await self._state()
        async with state.lock:
            self._synced = False  # the chain's pending nonce, every time
            return await self._sign_and_broadcast(
                state,
                prepared,
                before_broadcast=before_broadcast,
                recording=recording,
                lock_held=True,
            )

    async def wait(self, pending: PendingTx, timeout_s: float | None = None) -> TxReceipt:
        if not self.poll:
            return await super().wait(pending, timeout_s)
        interval = self.poll_interval_s
        deadline = time.monotonic() + (timeout_s or self.receipt_timeout_s)
        while (receipt := await pending._poll_once()) is None:
            if time.monotonic() > deadline:
                raise TransactionTimeoutError(f"{pending.tx_hash} not mined", pending.tx_hash)
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.max_poll_interval_s)
        if receipt["status"] == 0:
            raise await revert_for_failed_transaction(self.w3, pending.tx_hash)
        return receipt


class Web3BlockReceipts(BlockReceipts):
    """The receipt watcher with every call through web3.py's request stack (formatted and
    wrapped in ``AttributeDict`` for every receipt of every block)."""

    async def _head(self) -> int:
        return int(await self.w3.eth.block_number)

    async def _receipt(self, tx_hash: str) -> Any:
        try:
            return await self.w3.eth.get_transaction_receipt(HexStr(tx_hash))
        except TransactionNotFound:
            return None

    async def _block_receipts(self, numbers: Sequence[int]) -> list[Any]:
        try:
            return list(await asyncio.gather(*(self.w3.eth.get_block_receipts(n) for n in numbers)))
        except Web3RPCError as exc:
            if "not" in str(exc).lower() and "method" in str(exc).lower():
                raise NoBlockReceipts from exc
            raise

    @staticmethod
    def _hash_of(receipt: Any) -> str:
        return str(receipt["transactionHash"].to_0x_hex()).lower()

    @staticmethod
    def _format(receipt: Any) -> TxReceipt:
        formatted: TxReceipt = receipt
        return formatted


def use_web3_stack(w3: Web3Client) -> None:
    """Make ``w3``'s receipt watcher in the running loop a :class:`Web3BlockReceipts` (before
    any wait on ``w3``; give the baseline a connection of its own)."""
    per_loop = _WATCHERS.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    if not isinstance(per_loop.get(w3), Web3BlockReceipts):
        per_loop[w3] = Web3BlockReceipts(w3)


class Web3PendingTx(PendingTx):
    """A pending transaction whose direct receipt check goes through web3.py."""

    async def _poll_once(self) -> TxReceipt | None:
        for h in reversed(self.hashes):
            try:
                receipt: TxReceipt = await self.sender.w3.eth.get_transaction_receipt(HexStr(h))
            except TransactionNotFound:
                continue
            if receipt is not None:
                if h != self.tx_hash:
                    self.tx_hash = h
                self._resolve(receipt)
                return receipt
        return None


class Web3StackSender(TransactionSender):
    """Today's sender with the broadcast, the pending nonce and the receipts through web3.py's
    request stack, as before change 9 (its connection's watcher becomes a
    :class:`Web3BlockReceipts`: give it a connection of its own)."""

    async def pending_nonce(self) -> int:
        return int(
            await self._retrying(lambda: self.w3.eth.get_transaction_count(self.address, "pending"))
        )

    async def send(
        self,
        tx: Mapping[str, Any],
        before_broadcast: BeforeBroadcast | None = None,
        *,
        recording: Recording | None = None,
    ) -> PendingTx:
        use_web3_stack(self.w3)
        pending = await super().send(tx, before_broadcast, recording=recording)
        pending.__class__ = Web3PendingTx
        return pending

    async def _broadcast(self, raw: bytes, tx_hash: str, maybe_sent: bool = False) -> None:
        delay = 0.05
        deadline = time.monotonic() + self.unavailable_timeout_s
        while True:
            try:
                await self.w3.eth.send_raw_transaction(raw)
                return
            except CONNECTION_ERRORS as exc:
                maybe_sent = True
                if time.monotonic() + delay > deadline:
                    raise ChainUnavailableError(str(exc)) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Web3RPCError as exc:
                if maybe_sent and is_nonce_conflict(exc) and await self._known(tx_hash):
                    return
                raise


def use_plain_lean(w3: Web3Client) -> None:
    """Give ``w3`` (a connection of its own) a lean client that sends each JSON-RPC call as its
    own HTTP request, as before change 30 of docs/performance.md (calls of one turn of the
    event loop coalesced into one batch)."""
    per_loop = _LEAN.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    current = per_loop.get(w3)
    if current is None or isinstance(current, CoalescingRpcClient):
        url = str(getattr(w3.provider, "endpoint_uri", "") or "")
        per_loop[w3] = RpcClient(url, timeout_s=30.0, retry=_ONE_ATTEMPT, transport="aiohttp")
