"""A member of the demo's story speaking to the HTTP API with its own key, through the typed
client (``client/``): its transport (an ``Idempotency-Key`` per write, retried under the same
key), its problem+json errors, and, for a ``self`` member, its signer: a write that answers
``202 awaiting_signature`` is verified against the deployment, decoded and signed with the
member's own key, and the answer is the write's own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from client import TierflowClient
from client.errors import TierflowError
from client.intents import Intent


class DemoError(RuntimeError):
    """A step of the story was refused (the message names the request and the problem)."""


@dataclass
class Actor:
    """A member (or the operator) speaking to the API with its own key."""

    name: str
    roles: tuple[str, ...]
    key: str
    client: TierflowClient
    address: str = ""
    custody: str = "hosted"  # "self": its key is its own (client.signer), never the platform's

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        expect: Iterable[int] = (200, 201),
    ) -> Any:
        """One call (a write carries a fresh ``Idempotency-Key``); a ``self`` member's write
        is signed when it asks for it. Raises :class:`DemoError` (with the problem's code and
        detail) when refused or answered with an unexpected status."""
        try:
            r = await self.client.request(method, path, json=body, params=params)
            answer = r.json() if r.content else None
            if (
                r.status_code == 202
                and isinstance(answer, dict)
                and answer.get("status") == "awaiting_signature"
            ):
                intent = Intent.model_validate(answer["intent"])
                return await self.client.sign_intent(intent)
        except TierflowError as exc:
            raise DemoError(f"{self.name}: {method} {path} → {exc}") from exc
        if r.status_code not in tuple(expect):
            raise DemoError(f"{self.name}: {method} {path} → {r.status_code} {r.text[:300]}")
        return answer

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, body)

    async def put(self, path: str, body: Any = None) -> Any:
        return await self.request("PUT", path, body)
