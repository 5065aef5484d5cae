"""The transaction layer as it was before issue 13's changes (commit 823f713), reproduced so
that every optimisation's before/after ratio is measured in the same run, on the same chain.

:class:`BaselineSender` is today's :class:`~ledger.sender.TransactionSender` with the old
behaviour put back, piece by piece:

- ``serial=True``: the per-account lock held over the chain's pending nonce (asked every
  time), signing and the broadcast, as before;
- ``poll=True``: each waiter polls ``eth_getTransactionReceipt`` for its own hash (50 ms,
  growing ×1.5 to 1 s), instead of the receipts-by-block watcher.

Gas: without a :class:`~ledger.sender.GasEstimates` (the old behaviour) each write is
estimated; the run passes one for the "after" figures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from web3.types import TxReceipt

from ledger.errors import TransactionTimeoutError
from ledger.pending import PendingTx
from ledger.reverts import revert_for_failed_transaction
from ledger.sender import BeforeBroadcast, TransactionSender


class BaselineSender(TransactionSender):
    def __init__(self, *args: Any, serial: bool = True, poll: bool = True, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.serial = serial
        self.poll = poll

    async def send(
        self, tx: Mapping[str, Any], before_broadcast: BeforeBroadcast | None = None
    ) -> PendingTx:
        if not self.serial:
            return await super().send(tx, before_broadcast)
        prepared = await self.prepare(tx)
        state = await self._state()
        async with state.lock:
            self._synced = False  # the chain's pending nonce, every time
            return await self._sign_and_broadcast(
                state, prepared, before_broadcast=before_broadcast, lock_held=True
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
