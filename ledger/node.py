"""Connecting to the chain: an ``AsyncWeb3`` fit for both anvil and Besu QBFT.

:func:`make_web3` builds an ``AsyncWeb3`` over ``AsyncHTTPProvider`` with a bounded request
timeout and ``ExtraDataToPOAMiddleware`` injected at layer 0: QBFT blocks carry more than 32
bytes of ``extraData``, which web3.py otherwise rejects; on anvil the middleware is a no-op.
web3.py's own retry of idempotent read methods on connection errors stays on; sending is
retried by :mod:`ledger.sender`, which knows when a resend is safe.

Close it with ``await w3.provider.disconnect()`` (or use :func:`web3_session`) so aiohttp's
sessions are not left open.

web3.py's own session opens a new TCP connection for every request (``force_close``); a
long-lived client such as an API worker calls :func:`keep_alive` once, inside its event loop,
to reuse a pool of connections instead. Measured with 8 suppliers applying for financing
through one API worker: 44.8 → 46.8–47.9 applications/s; and the sockets web3.py's session
leaves behind no longer pile up in TIME-WAIT (2,791 on the node's port after one 7-second run).

The hot path of a write (the broadcast, the receipt watcher's head and block receipts, a
receipt's direct check, the pending nonce) does not go through web3.py's request stack
(middleware, a thread hop per request for its session cache, result formatters and
``AttributeDict`` over every answer): :func:`lean` gives the connection's
:class:`ledger.jsonrpc.CoalescingRpcClient` (its own aiohttp keep-alive pool, raw JSON, the single
calls of one event-loop turn sent as one batch, one attempt per call:
:mod:`ledger.sender` decides what is safe to retry), and :func:`format_receipt` turns the one
raw receipt a caller waits for into web3.py's shape. It is closed with :func:`close_web3`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import aiohttp
from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.datastructures import AttributeDict
from web3.exceptions import Web3RPCError
from web3.middleware import ExtraDataToPOAMiddleware
from web3.types import RPCEndpoint, TxReceipt

from ledger.jsonrpc import CoalescingRpcClient, RetryPolicy, RpcClient, RpcError

#: ``AsyncWeb3`` as the ledger layer uses it. web3.py 8 made it generic over its provider,
#: web3.py 7 (still resolved next to slither-analyzer) is not: this alias types on both.
if TYPE_CHECKING:
    Web3Client: TypeAlias = AsyncWeb3[Any]  # type: ignore[type-arg, unused-ignore]
else:
    Web3Client = AsyncWeb3

DEFAULT_TIMEOUT_S = 30.0
#: JSON-RPC answers fixed for the life of a node: cached by the provider.
NEVER_CHANGING: set[RPCEndpoint] = {
    RPCEndpoint("eth_chainId"),
    RPCEndpoint("net_version"),
    RPCEndpoint("web3_clientVersion"),
}


def make_web3(rpc_url: str, timeout: float = DEFAULT_TIMEOUT_S) -> Web3Client:
    """Return an ``AsyncWeb3`` for ``rpc_url`` (HTTP JSON-RPC), POA middleware at layer 0."""
    provider = AsyncHTTPProvider(
        rpc_url,
        request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout)},
        # web3.py checks the chain id before every call and transaction it validates: the
        # answers that never change are kept (nothing that depends on a block is).
        cache_allowed_requests=True,
        cacheable_requests=NEVER_CHANGING,
    )
    w3: Web3Client = AsyncWeb3(provider)
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


#: Idle seconds before a pooled connection to the node is dropped: below the idle timeouts of
#: nodes and proxies, so a request is not sent on a connection the server is closing.
KEEPALIVE_S = 5.0


async def keep_alive(w3: Web3Client, connections: int = 64) -> Web3Client:
    """Give ``w3`` a pooled keep-alive session for the running event loop (see the module
    docstring); closed with the provider."""
    session = aiohttp.ClientSession(
        raise_for_status=True,
        connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=KEEPALIVE_S),
    )
    await w3.provider.cache_async_session(session)
    return w3


async def close_web3(w3: Web3Client) -> None:
    """Close the provider's HTTP sessions and the connection's lean client (idempotent)."""
    per_loop = _LEAN.get(asyncio.get_running_loop())
    client = per_loop.pop(w3, None) if per_loop is not None else None
    if client is not None:
        await client.aclose()
    disconnect: Any = getattr(w3.provider, "disconnect", None)
    if disconnect is not None:
        await disconnect()


#: Per event loop (an httpx pool belongs to one), then per node connection (weakly).
_LEAN: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Any, RpcClient]
] = weakref.WeakKeyDictionary()
#: One attempt per call: a lost answer to a broadcast must reach the sender, which knows
#: whether sending the same bytes again is safe (ledger.sender._broadcast).
_ONE_ATTEMPT = RetryPolicy(attempts=1)


def lean(w3: Web3Client) -> RpcClient:
    """The lean JSON-RPC client of ``w3``'s node for the running event loop (made on first
    use, closed by :func:`close_web3`)."""
    per_loop = _LEAN.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    client = per_loop.get(w3)
    if client is None:
        url = str(getattr(w3.provider, "endpoint_uri", "") or "")
        timeout = DEFAULT_TIMEOUT_S
        kwargs: Any = getattr(w3.provider, "_request_kwargs", None) or {}
        total = getattr(kwargs.get("timeout"), "total", None)
        if total:
            timeout = float(total)
        client = per_loop[w3] = CoalescingRpcClient(
            url, timeout_s=timeout, retry=_ONE_ATTEMPT, transport="aiohttp"
        )
    return client


def as_web3_error(exc: RpcError) -> Web3RPCError:
    """The node's JSON-RPC error as web3.py raises it (what ``ledger.pending`` and
    ``ledger.reverts`` read: the error object in ``rpc_response``)."""
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.data is not None:
        error["data"] = exc.data
    response: Any = {"jsonrpc": "2.0", "id": 0, "error": error}
    return Web3RPCError(str(error), rpc_response=response)


_RECEIPT_INTS = (
    "blockNumber",
    "transactionIndex",
    "cumulativeGasUsed",
    "status",
    "gasUsed",
    "effectiveGasPrice",
    "type",
    "blobGasPrice",
    "blobGasUsed",
)
_LOG_INTS = ("blockNumber", "transactionIndex", "logIndex")


@functools.lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    """A checksum address (a keccak each: the same few contracts recur in every receipt)."""
    return to_checksum_address(address)


def _int(value: Any) -> Any:
    return int(value, 16) if isinstance(value, str) and value.startswith("0x") else value


def _log(raw: Mapping[str, Any]) -> dict[str, Any]:
    log = dict(raw)
    for key in _LOG_INTS:
        if key in log:
            log[key] = _int(log[key])
    for key in ("blockHash", "transactionHash"):
        if log.get(key) is not None:
            log[key] = HexBytes(log[key])
    if "address" in log:
        log["address"] = _checksum(log["address"])
    if "topics" in log:
        log["topics"] = [HexBytes(t) for t in log["topics"]]
    if "data" in log:
        log["data"] = HexBytes(log["data"])
    return log


def format_receipt(raw: Mapping[str, Any]) -> TxReceipt:
    """A raw JSON-RPC receipt in web3.py's shape (ints, ``HexBytes``, checksum addresses,
    ``AttributeDict``), field for field what web3.py's ``receipt_formatter`` gives
    (tests/ledger/test_receipts.py compares them) at a fraction of its cost: only the receipts
    someone waits for are formatted."""
    receipt: dict[str, Any] = dict(raw)
    for key in _RECEIPT_INTS:
        if key in receipt:
            receipt[key] = _int(receipt[key])
    for key in ("blockHash", "transactionHash", "logsBloom"):
        if receipt.get(key) is not None:
            receipt[key] = HexBytes(receipt[key])
    for key in ("contractAddress", "from", "to"):
        value = receipt.get(key)
        if isinstance(value, str) and is_address(value):
            receipt[key] = _checksum(value)
    if "logs" in receipt:
        receipt["logs"] = [AttributeDict(_log(entry)) for entry in receipt["logs"]]
    # web3.py answers a receipt as an AttributeDict, its logs too; decoding a log (an event's
    # process_receipt) gives attribute access (``event.args.x``) only to AttributeDict logs.
    return cast(TxReceipt, AttributeDict(receipt))


@contextlib.asynccontextmanager
async def web3_session(
    rpc_url: str, request_timeout_s: float = DEFAULT_TIMEOUT_S
) -> AsyncIterator[Web3Client]:
    """``async with web3_session(url) as w3:`` — :func:`make_web3`, closed on exit."""
    w3 = await keep_alive(make_web3(rpc_url, request_timeout_s))
    try:
        yield w3
    finally:
        await close_web3(w3)


async def rpc(w3: Web3Client, method: str, *params: Any) -> Any:
    """Make a raw JSON-RPC request and return its ``result`` (raises on an ``error``)."""
    response: Any = await w3.provider.make_request(method, list(params))  # type: ignore[arg-type, unused-ignore]
    if response.get("error"):
        from web3.exceptions import Web3RPCError

        raise Web3RPCError(str(response["error"]), rpc_response=response)
    return response.get("result")
