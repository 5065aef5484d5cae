"""The node's latest block, one request for every caller waiting on it (:class:`LatestBlock`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any


class LatestBlock:
    """The node's latest block (``eth_getBlockByNumber("latest")``, unformatted), one request
    for every caller waiting on it.

    A caller never gets an answer older than its own call: it waits for the next request
    *sent* (not one already in flight, which may have been answered before the caller came),
    and every caller that arrives meanwhile shares that request. With nothing in flight a
    caller's request leaves at once, as before; under many concurrent reads of the chain's
    clock (``GET /v1/deployment``, the payables list's overdue dates) the node is asked once
    per round trip instead of once per read."""

    def __init__(self, fetch: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._fetch = fetch
        self._next: asyncio.Future[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> dict[str, Any]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            # Retrieved here so that an answer nobody waits for any more (every caller
            # cancelled) is not reported as never retrieved.
            self._next.add_done_callback(_retrieved)
        waiting = self._next
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send(), name="tierflow-latest-block")
        return await asyncio.shield(waiting)

    async def _send(self) -> None:
        while self._next is not None:
            answer, self._next = self._next, None  # later callers wait for the next request
            try:
                answer.set_result(await self._fetch())
            except asyncio.CancelledError:
                answer.cancel()
                raise
            except Exception as exc:
                answer.set_exception(exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._next is not None:
            self._next.cancel()
            self._next = None


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
