"""Fixtures of the API tests: a whole platform per test module, and members made through it.

- ``stack`` (module): :class:`tests.support.stack.Stack` on SQLite — anvil, the deployed suite,
  ``tierflow index`` and ``tierflow serve`` as real processes.
- ``api``: an :class:`Api` for it: ``await api.member("core", ["core_enterprise"])`` onboards a
  member through ``POST /v1/members`` (once per name and module) and returns a :class:`Member`
  with its address, API key and an HTTP client; ``api.operator`` is the operator.
- ``pg_stack`` (module): the same on a fresh PostgreSQL database (marked ``postgres``).

Amounts and times come from the tests themselves; this only saves typing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ledger.anvil import rpc_call
from tests.indexer.conftest import create_pg_database, drop_pg_database
from tests.support.stack import Stack

KYC_UNTIL = (datetime.now(UTC) + timedelta(days=3650)).isoformat()


@dataclass
class Member:
    name: str
    address: str
    key: str
    http: httpx.AsyncClient
    roles: list[str] = field(default_factory=list)

    async def post(self, path: str, body: Any = None, key: str | None = None) -> httpx.Response:
        """POST with a fresh (or the given) Idempotency-Key."""
        return await self.http.post(path, json=body, headers=Stack.idem(key))

    async def put(self, path: str, body: Any = None, key: str | None = None) -> httpx.Response:
        return await self.http.put(path, json=body, headers=Stack.idem(key))

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params or None)


@dataclass
class Api:
    stack: Stack
    operator: Member
    members: dict[str, Member] = field(default_factory=dict)

    async def member(self, name: str, roles: list[str]) -> Member:
        """The member ``name``, onboarded through the API the first time it is asked for."""
        existing = self.members.get(name)
        if existing is not None:
            return existing
        r = await self.operator.post(
            "/v1/members", {"name": name, "roles": roles, "kyc_expires_at": KYC_UNTIL}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        made = Member(
            name, body["address"], body["api_key"], self.stack.client(body["api_key"]), roles
        )
        self.members[name] = made
        return made

    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block (the indexer follows)."""
        rpc_call(self.stack.rpc_url, "evm_increaseTime", [seconds])
        rpc_call(self.stack.rpc_url, "evm_mine")

    async def chain_time(self) -> int:
        block = rpc_call(self.stack.rpc_url, "eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16)

    async def close(self) -> None:
        for m in (self.operator, *self.members.values()):
            await m.http.aclose()


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with Stack.start(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
async def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    name = await create_pg_database()
    try:
        url = f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
        async with Stack.start(tmp_path_factory.mktemp("pgstack"), database_url=url) as running:
            yield running
    finally:
        await drop_pg_database(name)


async def make_api(stack: Stack) -> Api:
    operator = Member("operator", "", stack.operator_key, stack.client(stack.operator_key))
    return Api(stack, operator)


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[Api]:
    made = await make_api(stack)
    try:
        yield made
    finally:
        await made.close()


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"
