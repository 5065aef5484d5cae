"""A programmable JSON-RPC proxy in front of a real node, for testing how clients take faults.

:class:`FaultyNode` is an ``aiohttp.web`` server on ``127.0.0.1`` (a free port) in the
test's own event loop. It forwards every POST to the upstream node (a batch as a batch)
and, when told to, misbehaves instead::

    async with FaultyNode(anvil_url) as node:
        node.fail_next(2, Fault.HTTP_502, method="eth_getLogs")
        node.fail_randomly(0.2, [Fault.DROP, Fault.TIMEOUT], seed=7)
        node.set_head_lag(3)
        rpc = RpcClient(node.url)

Faults apply to a whole HTTP request. ``fail_next`` rules are used first, oldest first: a
rule matches a request whose (for a batch: first) method is its ``method`` (any request when
``None``) and is used up after ``n`` matches. A request no rule takes gets a random fault
with the configured probability (``random.Random(seed)``: the same traffic gets the same
faults). See :class:`Fault` for what each does.

``set_head_lag(k)`` makes the proxy answer like a node ``k`` blocks behind the upstream (it
asks the upstream for its head on every request): ``eth_blockNumber`` is ``head - k``; block
tags (``latest``, ``pending``, ``safe``, ``finalized``) mean that block; a block above it is
``null`` (``eth_getBlockByNumber``, ``eth_getBlockByHash``, ``eth_getBlockReceipts``,
transactions and receipts mined there) or ``-32000 header not found`` (state reads such as
``eth_call`` or ``eth_getBalance`` at that block); ``eth_getLogs`` clamps ``toBlock`` to the
lagging head, answers ``[]`` when ``fromBlock`` is above it, and drops logs above it. Batch
entries are treated one by one and the rest goes upstream as one batch.

``node.range_error`` is the error object ``Fault.RANGE_TOO_LARGE`` answers;
``node.reorder_batches = True`` answers batches in reverse order.

Overlapping and repeated delivery (for consumers that must not apply a log twice):
``node.widen_logs = k`` forwards every ``eth_getLogs`` over numeric blocks with ``fromBlock``
lowered and ``toBlock`` raised by ``k`` (``fromBlock`` not below 0), so the answer holds logs
outside the range asked for; ``node.duplicate_logs = True`` answers every ``eth_getLogs``
with each log twice (the list, then the list reversed). Both apply after the head lag (a
lagging node still drops the logs above its head).

Counters: ``requests`` (HTTP requests), ``faults_injected``, ``methods`` (a ``Counter`` of
JSON-RPC methods, batch entries counted one by one).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

#: Block tags a lagging node resolves to its own head.
_HEAD_TAGS = frozenset({"latest", "pending", "safe", "finalized"})
#: State reads: method → position of the block parameter.
_STATE_READS = {
    "eth_call": 1,
    "eth_getBalance": 1,
    "eth_getCode": 1,
    "eth_getTransactionCount": 1,
    "eth_getStorageAt": 2,
    "eth_getProof": 2,
}
RANGE_TOO_LARGE_ERROR = {"code": -32005, "message": "query returned more than 10000 results"}
HEADER_NOT_FOUND_ERROR = {"code": -32000, "message": "header not found"}


class Fault(enum.Enum):
    """What the proxy does instead of answering a request."""

    #: Wait ``node.timeout_delay_s`` (30 s unless set; cut short by ``stop()``), then close
    #: the connection without an answer. Set the delay above the client's timeout.
    TIMEOUT = "timeout"
    HTTP_500 = "http-500"
    HTTP_502 = "http-502"
    HTTP_429 = "http-429"
    #: Forward, then answer 200 with the first half of the upstream body.
    TRUNCATED_JSON = "truncated-json"
    #: Answer 200 with ``<html>oops`` (text/html).
    MALFORMED_JSON = "malformed-json"
    #: Close the connection without an answer.
    DROP = "drop"
    #: Answer ``eth_getLogs`` with ``-32005 query returned more than 10000 results`` (in a
    #: batch: its ``eth_getLogs`` entries, or every entry when there are none; the rest is
    #: forwarded).
    RANGE_TOO_LARGE = "range-too-large"


@dataclass
class _Rule:
    remaining: int
    fault: Fault
    method: str | None


#: A lag rewrite of one request: either a local answer, or what to forward and how to
#: post-process the upstream result.
_Post = Callable[[Any], Any]


@dataclass
class _Local:
    result: Any = None
    error: dict[str, Any] | None = None


@dataclass
class _Forward:
    entry: dict[str, Any]
    post: _Post | None = None


class FaultyNode:
    """An HTTP JSON-RPC proxy that injects faults and can pretend to lag behind the chain."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url
        #: How long a ``Fault.TIMEOUT`` request hangs before its connection is closed.
        self.timeout_delay_s = 30.0
        #: The error object ``Fault.RANGE_TOO_LARGE`` answers (change it to mimic a provider).
        self.range_error: dict[str, Any] = dict(RANGE_TOO_LARGE_ERROR)
        #: Answer batches in reverse order (JSON-RPC allows any order; some nodes do it).
        self.reorder_batches = False
        #: eth_getLogs also answers the logs of this many blocks either side of the range.
        self.widen_logs = 0
        #: eth_getLogs asking for this many addresses or more is refused as too large (0: off),
        #: as a provider capping answer sizes refuses a busy block over all contracts.
        self.refuse_logs_over_addresses = 0
        self.refused_log_queries = 0
        #: eth_getLogs answers every log twice.
        self.duplicate_logs = False
        self.requests = 0
        self.faults_injected = 0
        self.methods: Counter[str] = Counter()
        self._rules: list[_Rule] = []
        self._random: tuple[float, tuple[Fault, ...], random.Random] | None = None
        self._head_lag = 0
        self._url: str | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FaultyNode is not started")
        return self._url

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; return the proxy's URL."""
        if self._url is not None:
            return self._url
        self._stopping = asyncio.Event()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._url = f"http://127.0.0.1:{port}"
        return self._url

    async def stop(self) -> None:
        """Stop listening, cut hanging ``TIMEOUT`` requests short, close upstream connections."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._url = None

    async def __aenter__(self) -> FaultyNode:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- programming -------------------------------------------------------------------------

    def fail_next(self, n: int, fault: Fault, *, method: str | None = None) -> None:
        """The next ``n`` requests (whose first method is ``method``, if given) get ``fault``."""
        if n > 0:
            self._rules.append(_Rule(n, fault, method))

    def fail_randomly(self, probability: float, faults: Sequence[Fault], seed: int) -> None:
        """Each request no ``fail_next`` rule takes gets one of ``faults`` with ``probability``."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        if probability > 0 and not faults:
            raise ValueError("no faults to choose from")
        self._random = (probability, tuple(faults), random.Random(seed))

    def set_head_lag(self, blocks: int) -> None:
        """Answer as a node ``blocks`` behind the upstream head (0: no lag)."""
        if blocks < 0:
            raise ValueError(f"lag must not be negative, got {blocks}")
        self._head_lag = blocks

    def clear(self) -> None:
        """Back to a plain proxy: no faults, no lag, counters at zero."""
        self._rules.clear()
        self._random = None
        self._head_lag = 0
        self.widen_logs = 0
        self.duplicate_logs = False
        self.refuse_logs_over_addresses = 0
        self.refused_log_queries = 0
        self.requests = 0
        self.faults_injected = 0
        self.methods.clear()

    # -- serving -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests += 1
        try:
            doc: Any = json.loads(body)
        except ValueError:
            doc = None  # forwarded as is: the upstream answers what it answers
        entries = doc if isinstance(doc, list) else [doc]
        methods = [e["method"] for e in entries if isinstance(e, dict) and "method" in e]
        self.methods.update(m for m in methods if isinstance(m, str))
        if self._refuses(doc):
            self.refused_log_queries += 1
            status, data = await self._respond(body, doc, {0: self.range_error})
            return _json_response(status, data)
        fault = self._pick_fault(methods[0] if methods else None)
        if fault is None:
            status, data = await self._respond(body, doc)
            return _json_response(status, data)
        self.faults_injected += 1
        return await self._inject(fault, request, body, doc)

    def _refuses(self, doc: Any) -> bool:
        if not self.refuse_logs_over_addresses or not isinstance(doc, dict):
            return False
        if doc.get("method") != "eth_getLogs" or not doc.get("params"):
            return False
        query = doc["params"][0]
        addresses = query.get("address") if isinstance(query, dict) else None
        return isinstance(addresses, list) and len(addresses) >= self.refuse_logs_over_addresses

    def _pick_fault(self, method: str | None) -> Fault | None:
        for rule in self._rules:
            if rule.method is None or rule.method == method:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
                return rule.fault
        if self._random is not None:
            probability, faults, rng = self._random
            if rng.random() < probability:
                return rng.choice(faults)
        return None

    async def _inject(
        self, fault: Fault, request: web.Request, body: bytes, doc: Any
    ) -> web.StreamResponse:
        if fault is Fault.TIMEOUT:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout_delay_s):
                    await self._stopping.wait()
            return _drop(request)
        if fault is Fault.DROP:
            return _drop(request)
        if fault is Fault.HTTP_500:
            return web.Response(status=500, text="internal server error")
        if fault is Fault.HTTP_502:
            return web.Response(status=502, text="bad gateway")
        if fault is Fault.HTTP_429:
            return web.Response(status=429, text="too many requests", headers={"Retry-After": "0"})
        if fault is Fault.MALFORMED_JSON:
            return web.Response(status=200, body=b"<html>oops", content_type="text/html")
        if fault is Fault.TRUNCATED_JSON:
            status, data = await self._respond(body, doc)
            return _json_response(status, data[: len(data) // 2])
        assert fault is Fault.RANGE_TOO_LARGE
        entries = doc if isinstance(doc, list) else [doc]
        logs = {i for i, e in enumerate(entries) if _method(e) == "eth_getLogs"}
        failing = logs or set(range(len(entries)))
        status, data = await self._respond(body, doc, dict.fromkeys(failing, self.range_error))
        return _json_response(status, data)

    async def _forward(self, body: bytes) -> tuple[int, bytes]:
        assert self._session is not None, "FaultyNode is not started"
        try:
            async with self._session.post(
                self.upstream_url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 502, f"upstream: {type(exc).__name__}: {exc}".encode()

    async def _respond(
        self, body: bytes, doc: Any, errors: dict[int, dict[str, Any]] | None = None
    ) -> tuple[int, bytes]:
        """The answer to ``body`` (parsed: ``doc``): lag and per-entry ``errors`` applied."""
        batch = isinstance(doc, list)
        entries: list[Any] = doc if batch else [doc]
        noisy = bool(self.widen_logs or self.duplicate_logs)
        if (
            not self._head_lag and not errors and not noisy and not (batch and self.reorder_batches)
        ) or not entries:
            return await self._forward(body)
        if not all(isinstance(e, dict) for e in entries):
            return await self._forward(body)
        head = await self._lagging_head() if self._head_lag else None
        answers: list[Any] = [None] * len(entries)
        forwards: list[tuple[int, _Forward]] = []
        for index, entry in enumerate(entries):
            if errors and index in errors:
                answers[index] = _reply(entry, error=errors[index])
                continue
            plan: _Local | _Forward = _Forward(entry) if head is None else _lag(entry, head)
            if isinstance(plan, _Local):
                answers[index] = _reply(entry, result=plan.result, error=plan.error)
            else:
                if noisy:
                    plan = _noisy_logs(plan, self.widen_logs, self.duplicate_logs)
                forwards.append((index, plan))
        if forwards:
            upstream = [plan.entry for _, plan in forwards]
            status, data = await self._forward(
                json.dumps(upstream if batch else upstream[0]).encode()
            )
            if status != 200:
                return status, data
            try:
                replies = json.loads(data)
            except ValueError:
                return status, data
            by_id = {
                r.get("id"): r
                for r in (replies if isinstance(replies, list) else [replies])
                if isinstance(r, dict)
            }
            for index, plan in forwards:
                reply = by_id.get(plan.entry.get("id"))
                if reply is not None and plan.post is not None and "result" in reply:
                    reply = {**reply, "result": plan.post(reply["result"])}
                answers[index] = reply
        out = [a for a in answers if a is not None]
        if self.reorder_batches:
            out.reverse()
        return 200, json.dumps(out if batch else out[0]).encode()

    async def _lagging_head(self) -> int:
        status, data = await self._forward(
            b'{"jsonrpc":"2.0","id":0,"method":"eth_blockNumber","params":[]}'
        )
        if status != 200:
            raise web.HTTPBadGateway(text="upstream eth_blockNumber failed")
        return max(0, int(json.loads(data)["result"], 16) - self._head_lag)


def _noisy_logs(plan: _Forward, widen: int, duplicate: bool) -> _Forward:
    """``plan`` for an ``eth_getLogs`` widened by ``widen`` blocks and/or answered twice."""
    entry = plan.entry
    params = entry.get("params")
    if entry.get("method") != "eth_getLogs" or not isinstance(params, list) or not params:
        return plan
    query = params[0]
    if not isinstance(query, dict):
        return plan
    start, end = _number(query.get("fromBlock")), _number(query.get("toBlock"))
    if widen and start is not None and end is not None:
        query = {**query, "fromBlock": hex(max(0, start - widen)), "toBlock": hex(end + widen)}
        entry = {**entry, "params": [query, *params[1:]]}
    inner = plan.post

    def post(result: Any) -> Any:
        if inner is not None:
            result = inner(result)
        if duplicate and isinstance(result, list):
            result = result + result[::-1]
        return result

    return _Forward(entry, post)


def _method(entry: Any) -> Any:
    return entry.get("method") if isinstance(entry, dict) else None


def _reply(entry: dict[str, Any], *, result: Any = None, error: Any = None) -> dict[str, Any]:
    if error is not None:
        return {"jsonrpc": "2.0", "id": entry.get("id"), "error": error}
    return {"jsonrpc": "2.0", "id": entry.get("id"), "result": result}


def _json_response(status: int, data: bytes) -> web.Response:
    return web.Response(status=status, body=data, content_type="application/json")


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection; aiohttp then sends nothing (it ignores the returned response)."""
    request.protocol.force_close()
    return web.Response(status=204)


def _block(tag: Any, head: int) -> int | None:
    """The block number a tag names on a node whose head is ``head`` (None: not a plain tag)."""
    if isinstance(tag, int):
        return tag
    if not isinstance(tag, str):
        return None  # EIP-1898 object: left to the upstream
    if tag in _HEAD_TAGS:
        return head
    if tag == "earliest":
        return 0
    try:
        return int(tag, 16)
    except ValueError:
        return None


def _number(value: Any) -> int | None:
    return int(value, 16) if isinstance(value, str) else None


def _lag(entry: dict[str, Any], head: int) -> _Local | _Forward:
    """How a node whose head is ``head`` answers ``entry``."""
    method = entry.get("method")
    params = entry.get("params")
    params = list(params) if isinstance(params, list) else []

    def with_params(new: list[Any], post: _Post | None = None) -> _Forward:
        return _Forward({**entry, "params": new}, post)

    def unseen(field: str) -> _Post:
        def post(result: Any) -> Any:
            if isinstance(result, dict):
                number = _number(result.get(field))
                if number is not None and number > head:
                    return None
            return result

        return post

    def logs_up_to_head(result: Any) -> Any:
        if not isinstance(result, list):
            return result
        return [log for log in result if (_number(log.get("blockNumber")) or 0) <= head]

    if method == "eth_blockNumber":
        return _Local(result=hex(head))
    if method in ("eth_getBlockByNumber", "eth_getBlockReceipts") and params:
        number = _block(params[0], head)
        if number is None:
            return _Forward(entry)
        if number > head:
            return _Local(result=None)
        return with_params([hex(number), *params[1:]])
    if method == "eth_getBlockByHash":
        return _Forward(entry, unseen("number"))
    if method in ("eth_getTransactionByHash", "eth_getTransactionReceipt"):
        return _Forward(entry, unseen("blockNumber"))
    if method == "eth_getLogs" and params and isinstance(params[0], dict):
        query = dict(params[0])
        if "blockHash" in query:
            return _Forward(entry, logs_up_to_head)
        start = _block(query.get("fromBlock", "latest"), head)
        end = _block(query.get("toBlock", "latest"), head)
        if start is None or end is None:
            return _Forward(entry, logs_up_to_head)
        if start > head:
            return _Local(result=[])
        query["fromBlock"], query["toBlock"] = hex(start), hex(min(end, head))
        return with_params([query, *params[1:]], logs_up_to_head)
    if isinstance(method, str) and method in _STATE_READS:
        position = _STATE_READS[method]
        tag = params[position] if len(params) > position else "latest"
        number = _block(tag, head)
        if number is None:
            return _Forward(entry)
        if number > head:
            return _Local(error=HEADER_NOT_FOUND_ERROR)
        padded = params + ["latest"] * (position + 1 - len(params))
        padded[position] = hex(number)
        return with_params(padded)
    return _Forward(entry)
