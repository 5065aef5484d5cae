"""A member speaking to the HTTP API with its own key, for the API benchmark.

A copy of the demo's ``Actor`` (:mod:`tierflow.demo`), made so that the benchmarks import
nothing of the command line; both give way to the typed client (``client/``) when it lands.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx


class RequestRefused(RuntimeError):
    """The API refused a request (the message names the request and the problem)."""


@dataclass
class Actor:
    """A member (or the operator) speaking to the API with its own key."""

    name: str
    roles: tuple[str, ...]
    key: str
    http: httpx.AsyncClient
    address: str = ""

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        expect: Iterable[int] = (200, 201),
    ) -> Any:
        """One call; a write carries a fresh ``Idempotency-Key``. Raises :class:`RequestRefused`
        (with the problem's code and detail) on an unexpected status."""
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method != "GET" else {}
        r = await self.http.request(method, path, json=body, params=params, headers=headers)
        if r.status_code not in tuple(expect):
            try:
                problem = r.json()
                why = f"{problem.get('code')}: {problem.get('detail') or problem.get('title')}"
            except ValueError:
                why = r.text[:300]
            raise RequestRefused(f"{self.name}: {method} {path} → {r.status_code} {why}")
        return r.json() if r.content else None

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, body)

    async def put(self, path: str, body: Any = None) -> Any:
        return await self.request("PUT", path, body)
