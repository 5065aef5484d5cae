"""The lean JSON-RPC client: one HTTP/1.1 keep-alive connection pool, batches, retries.

Used by the indexer and by the API's reconciliation.

The indexer talks to the node through :class:`RpcClient` rather than web3.py: it needs
batches (one HTTP POST carrying many calls), cheap decoding on the hot path (``json.dumps``
and ``json.loads`` of the raw body, nothing else), and exact control over which faults are
retried::

    async with RpcClient(url, on_error=count_error) as rpc:
        head = int(await rpc.call("eth_blockNumber", []), 16)
        blocks = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(a, b)])

Every failure falls in one of two classes.

**Transient faults** are the node or the network misbehaving; the same request may well
succeed a moment later, so each is retried with exponential backoff and jitter
(:class:`RetryPolicy`), and only when all attempts are used up does the call raise
:class:`NodeUnavailable`, chained (``__cause__``) to the last fault:

- connect errors, resets, a connection closed without an answer, timeouts (``timeout_s``
  bounds each attempt as a whole: connect, send, wait and read);
- HTTP 5xx and 429, and any other non-2xx status whose body is not a JSON-RPC error;
- a body that is not JSON or is cut short, a response that is not a JSON-RPC response
  (no ``result`` and no ``error``, a wrong ``id``), a batch answer that is not a list or
  lacks some ids or repeats one (:class:`MalformedResponse` is the cause then).

**JSON-RPC errors** are the node answering, deterministically, that it will not do this:
unknown method, invalid params, a reverted ``eth_call``, but also ``-32603 internal error``
or ``-32000 header not found``. They are never retried here and raise :class:`RpcError`
(``code``, ``message``, ``data``, ``method``) at once; the caller decides what they mean.
In a batch, the first failing entry in call order is the one raised. An error object
answering a whole batch (``"batch too large"``) is raised with ``method="batch"``.

:class:`RangeTooLarge` is the :class:`RpcError` of an ``eth_getLogs`` whose range or result
is more than the node will serve (code -32005, or a message as geth, besu, erigon, anvil,
Alchemy, Infura or QuickNode word it: "query returned more than 10000 results", "block range
is too large", "Log response size exceeded", ...): the indexer halves its range and asks
again. "invalid block range params" (from > to) and "beyond current head" are not that.

``on_error(method, exc)`` is called for every failed attempt, transient or not (the indexer
counts ``rpc_errors_total{method}`` with it); for a batch ``method`` is the first call's.

Transport. httpx by default (the indexer: few, large batches). ``transport="aiohttp"`` speaks
through an aiohttp keep-alive pool instead, for many small concurrent calls (a write's
broadcast and receipts, :func:`ledger.node.lean`): measured against one anvil with 400
``eth_blockNumber`` calls in flight, 0.28 ms of CPU per call through aiohttp, 4.5 ms through
httpx's pool, 0.8-1.1 ms through web3.py's whole stack. Its transport faults
(``aiohttp.ClientError``, HTTP 5xx/429 as ``aiohttp.ClientResponseError``) are transient alike.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

import aiohttp
import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ledger.errors import ChainError, ChainUnavailableError

__all__ = [
    "MalformedResponse",
    "NodeUnavailable",
    "RangeTooLarge",
    "RetryPolicy",
    "RpcClient",
    "RpcError",
]


class NodeUnavailable(ChainUnavailableError):
    """Transient faults (network, timeouts, HTTP 5xx/429, broken bodies) outlasted the retries.

    ``__cause__`` is the last fault; ``method`` the call (a batch's first call).
    """

    def __init__(self, method: str, attempts: int, cause: BaseException) -> None:
        self.method = method
        self.attempts = attempts
        detail = str(cause) or type(cause).__name__
        super().__init__(
            f"{method}: node unavailable after {attempts} attempt(s): "
            f"{type(cause).__name__}: {detail}"
        )


class RpcError(ChainError):
    """The node answered with a JSON-RPC error object; deterministic, so not retried."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{method}: JSON-RPC error {code}: {message}")


class RangeTooLarge(RpcError):
    """``eth_getLogs`` refused the block range or its result size: split the range."""


class MalformedResponse(Exception):
    """The body is not a well-formed JSON-RPC answer to the request (a transient fault).

    Only ever seen as the ``on_error`` argument or as the cause of :class:`NodeUnavailable`.
    """


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per call or batch, and the backoff between them.

    The wait before retry ``n`` (1-based) is drawn uniformly from ``[d/2, d]`` with
    ``d = min(max_s, initial_s * 2**(n-1))`` ("equal jitter": always backing off, never in
    lockstep with other clients).
    """

    attempts: int = 8
    initial_s: float = 0.05
    max_s: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.initial_s < 0 or self.max_s < 0:
            raise ValueError("backoff times must not be negative")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 is the first retry)."""
        ceiling = min(self.max_s, self.initial_s * 2 ** (retry - 1))
        return random.uniform(ceiling / 2, ceiling)


#: The default policy: 8 attempts, 0.05 s doubling up to 2 s (about 5 s of waiting in all).
DEFAULT_RETRY: Final = RetryPolicy()

#: What a failed attempt may raise that is worth another attempt.
_TRANSIENT: Final = (
    httpx.TransportError,
    httpx.HTTPStatusError,
    aiohttp.ClientError,
    TimeoutError,
    MalformedResponse,
)

#: How nodes and providers word "eth_getLogs asked for too much".
_RANGE_TOO_LARGE = re.compile(
    r"query returned more than|block range|too many|limit exceeded|response size"
    r"|range is too large|exceed|too large|too wide|limited to",
    re.IGNORECASE,
)
#: Messages that match the above but mean something else (bad params, a lagging node).
_NOT_RANGE_TOO_LARGE = re.compile(r"invalid block range|beyond current head", re.IGNORECASE)
_LIMIT_EXCEEDED_CODE: Final = -32005

_MISSING: Final[Any] = object()
_SEPARATORS: Final = (",", ":")


def _rpc_error(method: str, error: Any) -> RpcError:
    """The exception for a JSON-RPC error object answering ``method``."""
    if isinstance(error, dict):
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) else 0
        message = str(error.get("message", ""))
        data = error.get("data")
    else:  # not the shape the spec prescribes; keep what there is
        code, message, data = 0, str(error), None
    if method == "eth_getLogs" and (
        code == _LIMIT_EXCEEDED_CODE
        or (_RANGE_TOO_LARGE.search(message) and not _NOT_RANGE_TOO_LARGE.search(message))
    ):
        return RangeTooLarge(method, code, message, data)
    return RpcError(method, code, message, data)


def _single_result(method: str, request_id: int, doc: Any) -> Any:
    if type(doc) is not dict:
        raise MalformedResponse(f"expected a JSON-RPC object, got {type(doc).__name__}")
    error = doc.get("error")
    if error is not None:  # one request, one answer: an error needs no id to be ours
        raise _rpc_error(method, error)
    if doc.get("id") != request_id:
        raise MalformedResponse(f"answer id {doc.get('id')!r} is not request id {request_id}")
    try:
        return doc["result"]
    except KeyError:
        raise MalformedResponse("answer has neither result nor error") from None


def _batch_results(calls: Sequence[tuple[str, list[Any]]], first_id: int, doc: Any) -> list[Any]:
    count = len(calls)
    if type(doc) is not list:
        if isinstance(doc, dict) and doc.get("error") is not None:
            raise _rpc_error("batch", doc["error"])  # the node refused the batch as a whole
        raise MalformedResponse(f"batch answer is a {type(doc).__name__}, not a list")
    results: list[Any] = [_MISSING] * count
    first_error: tuple[int, Any] | None = None
    for entry in doc:
        if type(entry) is not dict:
            raise MalformedResponse(f"batch entry is a {type(entry).__name__}, not an object")
        entry_id = entry.get("id")
        if type(entry_id) is not int:
            if entry_id is None and entry.get("error") is not None:
                raise _rpc_error("batch", entry["error"])  # the node could not read an entry
            raise MalformedResponse(f"batch entry id {entry_id!r} is not one of ours")
        index = entry_id - first_id
        if not 0 <= index < count or results[index] is not _MISSING:
            raise MalformedResponse(f"batch entry id {entry_id} is unknown or repeated")
        error = entry.get("error")
        if error is not None:
            results[index] = None
            if first_error is None or index < first_error[0]:
                first_error = (index, error)
        elif "result" in entry:
            results[index] = entry["result"]
        else:
            raise MalformedResponse(f"batch entry {entry_id} has neither result nor error")
    if len(doc) != count:  # every id seen is distinct and ours, so some are missing
        raise MalformedResponse(f"batch answer has {len(doc)} entries for {count} calls")
    if first_error is not None:
        index, error = first_error
        raise _rpc_error(calls[index][0], error)
    return results


class RpcClient:
    """Async JSON-RPC over HTTP/1.1 keep-alive, with batches and retried transient faults."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        on_error: Callable[[str, BaseException], None] | None = None,
        transport: Literal["httpx", "aiohttp"] = "httpx",
        connections: int = 64,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry = retry
        self._on_error = on_error
        self._next_id = 1
        self._http: httpx.AsyncClient | None = None
        self._session: aiohttp.ClientSession | None = None
        if transport == "aiohttp":
            # Made in the running loop (aiohttp's session belongs to it); closed by aclose.
            self._session = aiohttp.ClientSession(
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=5.0),
                trust_env=False,
            )
        else:
            self._http = httpx.AsyncClient(
                http1=True,
                http2=False,
                timeout=httpx.Timeout(timeout_s),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                trust_env=False,  # a node URL never goes through $HTTP_PROXY by accident
                follow_redirects=False,
            )
        # The retries after the first attempt (which _exchange makes on its own).
        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, retry.attempts - 1)),
            wait=self._wait,
            retry=retry_if_exception_type(_TRANSIENT),
            reraise=True,
        )

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, params: list[Any]) -> Any:
        """``method(*params)`` on the node: its ``result`` (``None`` when the node says null).

        Raises :class:`RpcError` (or :class:`RangeTooLarge`) when the node answers with an
        error, :class:`NodeUnavailable` when transient faults outlast the retry policy.
        """
        request_id = self._next_id
        self._next_id += 1
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
            separators=_SEPARATORS,
        ).encode()
        return await self._exchange(
            method, body, lambda doc: _single_result(method, request_id, doc)
        )

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Send ``calls`` as one JSON-RPC batch (one HTTP POST); results in call order.

        Answers are matched by id (nodes may reorder them). Any entry answered with an error
        raises :class:`RpcError` for the first such entry in call order; the batch is retried
        as a whole on transient faults. An empty batch returns ``[]`` without a request.
        """
        if not calls:
            return []
        first_id = self._next_id
        self._next_id += len(calls)  # ids stay unique per client
        payload = [
            {"jsonrpc": "2.0", "id": first_id + index, "method": method, "params": params}
            for index, (method, params) in enumerate(calls)
        ]
        body = json.dumps(payload, separators=_SEPARATORS).encode()
        results: list[Any] = await self._exchange(
            calls[0][0], body, lambda doc: _batch_results(calls, first_id, doc)
        )
        return results

    async def _exchange(self, label: str, body: bytes, decode: Callable[[Any], Any]) -> Any:
        """POST ``body`` and ``decode`` the answer, retrying transient faults.

        The first attempt runs outside tenacity: setting up its retry loop costs about as much
        as a small call to a local node, and nearly every call succeeds the first time.
        """
        try:
            return decode(await self._post(body))
        except _TRANSIENT as exc:
            self._report(label, exc)
            if self.retry.attempts == 1:
                raise NodeUnavailable(label, 1, exc) from exc
        except RpcError as exc:
            self._report(label, exc)
            raise
        await asyncio.sleep(self.retry.delay(1))
        try:
            async for attempt in self._retrying.copy():
                with attempt:
                    try:
                        return decode(await self._post(body))
                    except (*_TRANSIENT, RpcError) as exc:
                        self._report(label, exc)
                        raise
        except _TRANSIENT as exc:
            raise NodeUnavailable(label, self.retry.attempts, exc) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _report(self, label: str, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(label, exc)

    async def _post(self, body: bytes) -> Any:
        """One attempt: the parsed JSON body, or a transient fault."""
        if self._session is not None:
            return await self._post_aiohttp(self._session, body)
        assert self._http is not None
        async with asyncio.timeout(self.timeout_s):
            response = await self._http.post(self.url, content=body)
        doc = _answer(response.status_code, response.content)
        if doc is _MISSING:
            raise httpx.HTTPStatusError(
                f"HTTP {response.status_code} {response.reason_phrase}",
                request=response.request,
                response=response,
            )
        return doc

    async def _post_aiohttp(self, session: aiohttp.ClientSession, body: bytes) -> Any:
        async with asyncio.timeout(self.timeout_s):
            async with session.post(self.url, data=body) as response:
                content = await response.read()
                doc = _answer(response.status, content)
                if doc is _MISSING:
                    raise aiohttp.ClientResponseError(
                        response.request_info,
                        response.history,
                        status=response.status,
                        message=f"HTTP {response.status} {response.reason}",
                    )
        return doc

    def _wait(self, state: RetryCallState) -> float:
        # The loop's attempt k is attempt k + 1 overall; the wait after it precedes retry k + 1.
        return self.retry.delay(state.attempt_number + 1)


def _answer(status: int, content: bytes) -> Any:
    """The JSON body of an HTTP answer; :data:`_MISSING` for a status that is a transient
    fault (5xx, 429, 408, a 4xx carrying no JSON-RPC error)."""
    if 200 <= status < 300:
        try:
            return json.loads(content)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise MalformedResponse(f"body is not JSON ({len(content)} bytes): {exc}") from exc
    if 400 <= status < 500 and status not in (408, 429):
        # Some nodes and gateways answer a JSON-RPC error with a 4xx status: keep it.
        try:
            doc = json.loads(content)
        except ValueError:
            doc = None
        if isinstance(doc, dict | list) and _carries_error(doc):
            return doc
    return _MISSING


def _carries_error(doc: dict[str, Any] | list[Any]) -> bool:
    if isinstance(doc, dict):
        return doc.get("error") is not None
    return any(isinstance(entry, dict) and entry.get("error") is not None for entry in doc)


class _Errored:
    """A batch entry answered with a JSON-RPC error (its exception, raised to its caller)."""

    __slots__ = ("exc",)

    def __init__(self, exc: RpcError) -> None:
        self.exc = exc


def _batch_outcomes(calls: Sequence[tuple[str, list[Any]]], first_id: int, doc: Any) -> list[Any]:
    """:func:`_batch_results`, but an entry's error is that entry's outcome (an
    :class:`_Errored`), not the whole batch's: each caller of a coalesced batch gets its own."""
    count = len(calls)
    if type(doc) is not list:
        if isinstance(doc, dict) and doc.get("error") is not None:
            raise _rpc_error("batch", doc["error"])  # the node refused the batch as a whole
        raise MalformedResponse(f"batch answer is a {type(doc).__name__}, not a list")
    outcomes: list[Any] = [_MISSING] * count
    for entry in doc:
        if type(entry) is not dict:
            raise MalformedResponse(f"batch entry is a {type(entry).__name__}, not an object")
        entry_id = entry.get("id")
        if type(entry_id) is not int:
            if entry_id is None and entry.get("error") is not None:
                raise _rpc_error("batch", entry["error"])
            raise MalformedResponse(f"batch entry id {entry_id!r} is not one of ours")
        index = entry_id - first_id
        if not 0 <= index < count or outcomes[index] is not _MISSING:
            raise MalformedResponse(f"batch entry id {entry_id} is unknown or repeated")
        error = entry.get("error")
        if error is not None:
            outcomes[index] = _Errored(_rpc_error(calls[index][0], error))
        elif "result" in entry:
            outcomes[index] = entry["result"]
        else:
            raise MalformedResponse(f"batch entry {entry_id} has neither result nor error")
    if len(doc) != count:
        raise MalformedResponse(f"batch answer has {len(doc)} entries for {count} calls")
    return outcomes


class CoalescingRpcClient(RpcClient):
    """:class:`RpcClient` whose single calls made in one turn of the event loop leave as one
    JSON-RPC batch (one HTTP POST): many concurrent writes' broadcasts and receipt checks
    share a request, its JSON and its system calls, with no delay added (the batch leaves on
    the loop's next turn). Each caller gets its own entry's answer: its result, its
    :class:`RpcError`, or, for a transport fault, :class:`NodeUnavailable` as from
    :meth:`RpcClient.call` (every caller of that batch gets one). A lone call is sent as one.
    """

    #: Calls per coalesced batch at most.
    MAX_BATCH = 64

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._queued: list[tuple[str, list[Any], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._inflight: set[asyncio.Task[None]] = set()

    async def call(self, method: str, params: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((method, params, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        queued, self._queued = self._queued, []
        loop = asyncio.get_running_loop()
        for start in range(0, len(queued), self.MAX_BATCH):
            task = loop.create_task(self._send(queued[start : start + self.MAX_BATCH]))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _send(self, queued: list[tuple[str, list[Any], asyncio.Future[Any]]]) -> None:
        live = [q for q in queued if not q[2].done()]
        if not live:
            return
        if len(live) == 1:
            method, params, future = live[0]
            try:
                result = await super().call(method, params)
            except Exception as exc:  # handed to the caller
                if not future.done():
                    future.set_exception(exc)
                return
            except BaseException:
                future.cancel()
                raise
            if not future.done():
                future.set_result(result)
            return
        calls = [(method, params) for method, params, _ in live]
        first_id = self._next_id
        self._next_id += len(calls)
        body = json.dumps(
            [
                {"jsonrpc": "2.0", "id": first_id + i, "method": m, "params": p}
                for i, (m, p) in enumerate(calls)
            ],
            separators=_SEPARATORS,
        ).encode()
        try:
            outcomes = await self._exchange(
                calls[0][0], body, lambda doc: _batch_outcomes(calls, first_id, doc)
            )
        except Exception as exc:  # handed to every caller
            for _, _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, _, future in live:
                future.cancel()
            raise
        for (_, _, future), outcome in zip(live, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, _Errored):
                future.set_exception(outcome.exc)
            else:
                future.set_result(outcome)

    async def aclose(self) -> None:
        for task in list(self._inflight):
            task.cancel()
        await super().aclose()
