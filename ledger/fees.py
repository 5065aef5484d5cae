"""The fee fields of new transactions, one quote for every sender of a node connection.

What a transaction offers to pay is a property of the chain, not of the account that sends
it: ``gasPrice`` on a chain whose blocks carry no ``baseFeePerGas`` (Besu QBFT with London
off: zero), else EIP-1559's ``maxFeePerGas = 2 × baseFee + tip`` (room for the base fee to
double before it is mined) and ``maxPriorityFeePerGas = tip``. A sender asked for it per
write: with one sender per hosted member, sixteen members writing once every few seconds
each meant a refresh (the latest block and the tip, through web3.py's formatters) for
nearly every write. :func:`fee_quotes` keeps one quote per node connection and event loop,
asked of the node through the lean client (raw JSON-RPC: only ``baseFeePerGas`` is read of
the block) at most once per ``max_age_s`` whoever asks.

    fields = await fee_quotes(w3).fields(max_age_s=1.0)
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from ledger.jsonrpc import RpcError
from ledger.node import Web3Client, lean


class FeeQuotes:
    """The latest fee fields of one node connection, refreshed when older than asked."""

    def __init__(self, w3: Web3Client) -> None:
        self._w3 = weakref.ref(w3)  # the registry is keyed by the connection: no cycle
        self._quote: tuple[float, dict[str, int]] | None = None
        self._lock = asyncio.Lock()  # many concurrent sends: one refresh

    async def fields(self, max_age_s: float = 1.0) -> dict[str, int]:
        """``{"gasPrice"}`` on chains without ``baseFeePerGas``, else EIP-1559's fields: a
        quote at most ``max_age_s`` old (a fresh one when none is)."""
        async with self._lock:
            now = time.monotonic()
            if self._quote is not None and now - self._quote[0] < max_age_s:
                return dict(self._quote[1])
            fees = await self._ask()
            self._quote = (now, fees)
            return dict(fees)

    async def _ask(self) -> dict[str, int]:
        w3 = self._w3()
        if w3 is None:
            raise RuntimeError("the node connection of this fee quote is gone")
        rpc = lean(w3)
        block: Any = await rpc.call("eth_getBlockByNumber", ["latest", False])
        base_fee = (block or {}).get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": int(await rpc.call("eth_gasPrice", []), 16)}
        try:
            tip = int(await rpc.call("eth_maxPriorityFeePerGas", []), 16)
        except RpcError:  # a node without the method: no tip
            tip = 0
        return {"maxFeePerGas": 2 * int(base_fee, 16) + tip, "maxPriorityFeePerGas": tip}


#: Per event loop (the lock belongs to one), then per node connection (weakly).
_QUOTES: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Any, FeeQuotes]
] = weakref.WeakKeyDictionary()


def fee_quotes(w3: Web3Client) -> FeeQuotes:
    """The fee quote of ``w3``'s node in the running event loop (made on first use)."""
    per_loop = _QUOTES.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    quotes = per_loop.get(w3)
    if quotes is None:
        quotes = per_loop[w3] = FeeQuotes(w3)
    return quotes
