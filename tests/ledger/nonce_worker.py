"""Child process for the cross-process nonce test: sends N transactions for one account.

Usage: python nonce_worker.py RPC_URL PRIVATE_KEY NONCE_STORE COUNT TO DATA_HEX

NONCE_STORE is a directory (:class:`~ledger.nonces.FileNonceStore`) or ``sql:<database URL>``
(:class:`backend.nonces.SqlNonceStore`, the API workers' store).
Prints ``{"nonces": [...], "conflicts": n}``: the nonces its mined transactions used and
how many broadcasts the node refused for a taken nonce (the store should make that 0).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from eth_account import Account

from ledger.node import close_web3, make_web3
from ledger.nonces import FileNonceStore, NonceStore
from ledger.sender import TransactionSender


class ConflictCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "refused" in record.getMessage():
            self.count += 1


async def main(url: str, key: str, nonce_dir: str, count: int, to: str, data: str) -> list[int]:
    w3 = make_web3(url)
    engine = None
    store: NonceStore
    if nonce_dir.startswith("sql:"):
        from backend.nonces import SqlNonceStore
        from db.engine import create_pooled_engine as create_engine

        engine = create_engine(nonce_dir[4:])
        store = SqlNonceStore(engine)
    else:
        store = FileNonceStore(nonce_dir)
    try:
        sender = TransactionSender(w3, Account.from_key(key), store)
        # Gas given: every process fires at once, no need to estimate 90 identical calls.
        txs = [{"to": to, "data": data, "gas": 100_000} for _ in range(count)]
        pendings = await asyncio.gather(*(sender.send(tx) for tx in txs))
        receipts = [await p.receipt() for p in pendings]
        assert all(r["status"] == 1 for r in receipts), receipts
        return [p.nonce for p in pendings]
    finally:
        await close_web3(w3)
        if engine is not None:
            await engine.dispose()


if __name__ == "__main__":
    counter = ConflictCounter()
    logging.getLogger("ledger.sender").addHandler(counter)
    logging.getLogger("ledger.sender").setLevel(logging.INFO)
    url, key, nonce_dir, count, to, data = sys.argv[1:7]
    nonces = asyncio.run(main(url, key, nonce_dir, int(count), to, data))
    print(json.dumps({"nonces": nonces, "conflicts": counter.count}))
