"""Receipts by block: one watcher per node connection resolves every waiting transaction.

Waiting for a receipt by polling ``eth_getTransactionReceipt`` per transaction costs one
request per waiter per poll (64 concurrent writes: 64 requests every interval) and adds up to
an interval of delay. :class:`BlockReceipts` instead follows the chain head (one
``eth_blockNumber`` per interval, whatever the number of waiters) and, for each new block,
fetches its receipts with ``eth_getBlockReceipts`` (a node without it: each waiting hash's
receipt, in one go, once per new block), resolving every waiter whose hash is in it.

No receipt is missed: a waiter registers *before* its own direct check (so a transaction mined
earlier is found by that check, and one mined later lands in a block past the watcher's
cursor), and a watcher that starts checks the waiters it found directly once it has read the
head it will scan from; so does a watcher that finds the head below its cursor (the chain went
back: a reorganisation, ``evm_revert``). The watcher runs only while someone waits.

It speaks to the node through the connection's lean client (:func:`ledger.node.lean`: raw
JSON, no web3.py request stack) and formats into web3.py's receipt shape only the receipts
someone waits for (:func:`ledger.node.format_receipt`).

    watcher = block_receipts(w3, poll_interval_s=0.05)
    future = watcher.watch(["0xabc…"])        # resolves to (hash, receipt)
    ...                                       # a direct check of its own first, then
    watcher.follow()                          # (if still waiting) follow the head
    ...
    watcher.unwatch(future)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from web3.types import TxReceipt

from ledger.jsonrpc import RpcError
from ledger.node import Web3Client, format_receipt, lean

log = logging.getLogger(__name__)

#: Blocks fetched at once when the watcher is behind.
FETCH_CONCURRENCY = 16

Found = tuple[str, TxReceipt]


class NoBlockReceipts(Exception):
    """The node does not serve ``eth_getBlockReceipts``."""


class BlockReceipts:
    """Follows new blocks of one node and resolves the futures of waiting transaction hashes."""

    def __init__(self, w3: Web3Client, poll_interval_s: float = 0.05) -> None:
        self._w3 = weakref.ref(w3)  # the registry is keyed by the connection: no cycle
        self.poll_interval_s = poll_interval_s
        self._waiters: dict[str, set[asyncio.Future[Found]]] = {}
        self._hashes: dict[asyncio.Future[Found], tuple[str, ...]] = {}
        self._cursor = -1
        self._task: asyncio.Task[None] | None = None
        self._by_block = True  # False once the node refuses eth_getBlockReceipts
        self._sleeping = False

    def watch(self, hashes: Sequence[str]) -> asyncio.Future[Found]:
        """A future resolved with ``(hash, receipt)`` when any of ``hashes`` is mined."""
        future: asyncio.Future[Found] = asyncio.get_running_loop().create_future()
        keys = tuple(h.lower() for h in hashes)
        self._hashes[future] = keys
        for h in keys:
            self._waiters.setdefault(h, set()).add(future)
        return future

    def follow(self) -> None:
        """Start following the head (if not already): after a waiter's own direct check failed.
        The watcher stops when nobody waits any more."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def unwatch(self, future: asyncio.Future[Found]) -> None:
        for h in self._hashes.pop(future, ()):
            waiting = self._waiters.get(h)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[h]
        if not future.done():
            future.cancel()
        if not self._hashes and self._task is not None and self._sleeping:
            # Idle between polls: stop now. Never mid-request: web3.py reads the answer outside
            # a context manager, so a request cancelled there never returns its connection to
            # the pool (64 of them and every request of the process waits for ever). A watcher
            # mid-request stops by itself once the answer is in.
            self._task.cancel()
            self._task = None

    @property
    def w3(self) -> Web3Client:
        w3 = self._w3()
        if w3 is None:
            raise RuntimeError("the node connection of this receipt watcher is gone")
        return w3

    @property
    def waiting(self) -> int:
        return len(self._hashes)

    # -- the node (raw JSON-RPC through the lean client) ------------------------------------

    async def _head(self) -> int:
        return int(await lean(self.w3).call("eth_blockNumber", []), 16)

    async def _receipt(self, tx_hash: str) -> Any:
        return await lean(self.w3).call("eth_getTransactionReceipt", [tx_hash])

    async def _block_receipts(self, numbers: Sequence[int]) -> list[Any]:
        """The receipts of each block (one batch); :class:`NoBlockReceipts` if the node has
        no ``eth_getBlockReceipts``."""
        try:
            return await lean(self.w3).batch([("eth_getBlockReceipts", [hex(n)]) for n in numbers])
        except RpcError as exc:
            words = exc.message.lower()
            if exc.code == -32601 or ("not" in words and "method" in words):
                raise NoBlockReceipts from exc
            raise

    @staticmethod
    def _hash_of(receipt: Any) -> str:
        return str(receipt.get("transactionHash", "")).lower()

    @staticmethod
    def _format(receipt: Any) -> TxReceipt:
        return format_receipt(receipt)

    def _resolve(self, receipt: Any) -> None:
        """Resolve the waiters of a receipt as the node gave it; formatted into web3.py's
        shape only when someone waits for it."""
        h = self._hash_of(receipt)
        waiting = self._waiters.get(h)
        if not waiting:
            return
        formatted = self._format(receipt)
        for future in list(waiting):
            if not future.done():
                future.set_result((h, formatted))

    async def _run(self) -> None:
        delay = self.poll_interval_s
        started = False
        while self._hashes:
            try:
                head = await self._head()
                if not started or head < self._cursor:
                    # Scan from here on; whatever was mined up to here is checked directly.
                    # A head below the cursor is a chain that went back (a reorganisation,
                    # a reverted snapshot): a cursor kept above it would scan nothing until
                    # the chain grew past it again, and the waiters would sit until their
                    # stuck check (15 s).
                    self._cursor = head
                    await self._check_directly()
                    started = True
                elif head > self._cursor:
                    await self._scan(self._cursor + 1, head)
                    self._cursor = head
                    continue
                delay = self.poll_interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # node unreachable, a malformed answer: try again later
                log.info("receipt watcher: %s; retrying in %.2fs", exc, delay)
                delay = min(delay * 2, 2.0)
            if not self._hashes:
                break
            self._sleeping = True
            try:
                await asyncio.sleep(delay)
            finally:
                self._sleeping = False

    async def _check_directly(self) -> None:
        for h in list(self._waiters):
            receipt = await self._receipt(h)
            if receipt is not None:
                self._resolve(receipt)

    async def _scan(self, first: int, last: int) -> None:
        if not self._by_block:
            await self._check_directly()
            return
        for start in range(first, last + 1, FETCH_CONCURRENCY):
            numbers = range(start, min(last, start + FETCH_CONCURRENCY - 1) + 1)
            try:
                blocks = await self._block_receipts(numbers)
            except NoBlockReceipts:
                log.info("node has no eth_getBlockReceipts: polling per transaction")
                self._by_block = False
                await self._check_directly()
                return
            for receipts in blocks:
                for receipt in receipts or ():
                    self._resolve(receipt)


#: Per event loop (futures and tasks belong to one), then per node connection (weakly: a
#: connection closed and dropped takes its watcher with it).
_WATCHERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Any, BlockReceipts]
] = weakref.WeakKeyDictionary()


def block_receipts(w3: Web3Client, poll_interval_s: float = 0.05) -> BlockReceipts:
    """The watcher for ``w3`` in the running event loop (created on first use)."""
    per_loop = _WATCHERS.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    watcher = per_loop.get(w3)
    if watcher is None:
        watcher = per_loop[w3] = BlockReceipts(w3, poll_interval_s)
    return watcher
