"""Fixtures of the API tests: a whole platform per test module, and members made through it.

- ``stack`` (module): :class:`bench.stack.Stack` on SQLite — anvil, the deployed suite,
  ``tierflow index`` and ``tierflow serve`` as real processes.
- ``api``: an :class:`Api` for it: ``await api.member("core", ["core_enterprise"])`` onboards a
  member through ``POST /v1/members`` (once per name and module) and returns a :class:`Member`
  with its address, API key and an HTTP client; ``api.operator`` is the operator.
- ``pg_stack`` (module): the same on a fresh PostgreSQL database (marked ``postgres``).

Amounts and times come from the tests themselves; this only saves typing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.stack import Stack
from tests.support.api import Api, make_api
from tests.support.databases import create_pg_database, drop_pg_database


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


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[Api]:
    made = await make_api(stack)
    try:
        yield made
    finally:
        await made.close()
