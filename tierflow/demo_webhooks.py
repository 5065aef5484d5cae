"""The demo's webhook: the tier-1 supplier registers an endpoint served by the demo itself
(aiohttp on 127.0.0.1), every delivery is verified with the client's ``verify_webhook``, and
the end of the story shows what arrived and what the API says it delivered.

A platform that does not allow loopback targets (off the local chain) refuses the endpoint;
the demo then says so and goes on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from client.webhooks import WebhookVerificationError, verify_webhook
from tierflow.demo_actor import Actor, DemoError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class DemoWebhook:
    """The receiver, and once registered, the endpoint and its secret."""

    port: int = field(default_factory=_free_port)
    webhook_id: str | None = None
    secret: str = ""
    refused: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    forged: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/tierflow-demo", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = verify_webhook(self.secret, request.headers.get("Tierflow-Signature"), body)
        except WebhookVerificationError:
            self.forged += 1
            return web.Response(status=400, text="bad signature")
        self.events.append(event)
        return web.Response(text="ok")

    async def register(self, member: Actor) -> str:
        url = f"http://127.0.0.1:{self.port}/tierflow-demo"
        try:
            made = await member.post("/v1/webhooks", {"url": url, "event_types": ["*"]})
        except DemoError as exc:
            self.refused = str(exc)
            return f"no webhook: the platform refused {url} ({exc})"
        self.webhook_id, self.secret = made["id"], made["secret"]
        return f"{member.name} registered a webhook for every event it may see ({url})"

    async def summary(self, member: Actor, within_s: float = 20.0) -> dict[str, Any]:
        """Once nothing is pending (or ``within_s`` passed): what arrived and what the API
        lists."""
        if self.webhook_id is None:
            return {"refused": self.refused}
        deliveries: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while True:
                    page = await member.get(f"/v1/webhooks/{self.webhook_id}/deliveries", limit=200)
                    deliveries = page["items"]
                    if deliveries and all(d["status"] != "pending" for d in deliveries):
                        break
                    await asyncio.sleep(0.25)
        statuses = Counter(d["status"] for d in deliveries)
        return {
            "received": len(self.events),
            "forged": self.forged,
            "types": dict(Counter(e["type"] for e in self.events).most_common()),
            "deliveries": dict(statuses),
            "attempts": sum(d["attempts"] for d in deliveries),
        }
