"""Fixtures of the API tests: a whole platform per test module, and members made through it.

- ``stack`` (module): :class:`bench.stack.Stack` on SQLite — anvil, the deployed suite,
  ``tierflow index`` and ``tierflow serve`` as real processes.
- ``api``: an :class:`Api` for it: ``await api.member("core", ["core_enterprise"])`` onboards a
  member through ``POST /v1/members`` (once per name and module) and returns a :class:`Member`
  with its address, API key and an HTTP client; ``api.operator`` is the operator.
- ``pg_stack`` (module): the same on a fresh PostgreSQL database (marked ``postgres``).
- ``db``: an engine on the platform's database, for a test that reads or writes it behind the
  API's and the indexer's backs.

Both let a write wait up to ``MIRROR_WAIT_S`` for the mirror (the platform's default is 15 s):
on two shared cores a restarted indexer can take longer than that to catch up, and a write
answered ``mirror_behind`` then makes a test's next read flaky. What a write answers when the
wait runs out is tested in tests/faults (a 1 s wait).

Amounts and times come from the tests themselves; this only saves typing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.stack import Stack
from db.engine import create_engine
from tests.support.api import (
    TEST_ENV,
    api,  # noqa: F401  (the module-scoped ``api`` fixture)
)
from tests.support.databases import create_pg_database, drop_pg_database


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with Stack.start(tmp_path_factory.mktemp("stack"), extra_env=TEST_ENV) as running:
        yield running


@pytest.fixture(scope="module")
async def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    name = await create_pg_database()
    try:
        url = f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
        async with Stack.start(
            tmp_path_factory.mktemp("pgstack"), database_url=url, extra_env=TEST_ENV
        ) as running:
            yield running
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(stack.database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
