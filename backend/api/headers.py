"""Headers every answer carries: ``X-RateLimit-Limit``, the requests a minute an API key may
make (``TIERFLOW_API_RATE_LIMIT``; the OpenAPI document declares it on every answer)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RateLimitHeaders:
    """Pure ASGI (no buffering of bodies): adds the header to the answer's start."""

    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        self.app = app
        self.value = str(per_minute).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-ratelimit-limit", self.value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)
