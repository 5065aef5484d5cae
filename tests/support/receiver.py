"""A real HTTP server receiving webhook deliveries in tests (aiohttp, on 127.0.0.1).

Every request is recorded with its raw body, headers and arrival time; what each path answers
is scripted (``receiver.script("/flaky", [500, 500])``: two 500s, then 200s; a float is a delay
in seconds before answering 200, to provoke the dispatcher's timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ledger.anvil import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    _scripts: dict[str, deque[int | float]] = field(default_factory=lambda: defaultdict(deque))
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, answers: list[int | float]) -> None:
        self._scripts[path].extend(answers)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        got = Received(request.path, dict(request.headers), body, time.time())
        answers = self._scripts[request.path]
        answer = answers.popleft() if answers else 200
        if isinstance(answer, float):
            await asyncio.sleep(answer)
            answer = 200
        if answer < 300:
            # Only an answered 2xx counts as received (a timed-out one is a failed attempt).
            self.received.append(got)
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=answer, text="ok" if answer < 300 else "no")

    async def wait_for(self, path: str, count: int, within_s: float = 30.0) -> list[Received]:
        """Until ``path`` has received ``count`` deliveries (answered 2xx)."""
        return await self.wait_until(path, lambda got: len(got) >= count, within_s)

    async def wait_until(
        self, path: str, done: Callable[[list[Received]], bool], within_s: float = 30.0
    ) -> list[Received]:
        """Until what ``path`` received (answered 2xx) satisfies ``done``."""
        async with asyncio.timeout(within_s), self._arrived:
            await self._arrived.wait_for(lambda: done(self.at(path)))
        return self.at(path)


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(free_port())
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", receiver.port)
    await site.start()
    try:
        yield receiver
    finally:
        await runner.cleanup()
