"""Fixtures of the fault tests: a whole platform per module whose writes wait for the mirror
only briefly (so a stopped indexer shows quickly) and whose API gives up on the node fast."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.stack import Stack
from tests.support.api import api  # noqa: F401  (the module-scoped ``api`` fixture)

FAULT_ENV = {
    "TIERFLOW_API_MIRROR_WAIT_S": "1",
    "TIERFLOW_API_NODE_TIMEOUT_S": "2",
    "TIERFLOW_API_NODE_UNAVAILABLE_S": "3",
    "TIERFLOW_API_RECEIPT_TIMEOUT_S": "10",
    "TIERFLOW_API_INDEXER_STALE_S": "3",
    "TIERFLOW_API_IDEMPOTENCY_LEASE_S": "2",
    "TIERFLOW_API_DATABASE_LOCK_WAIT_S": "2",
}


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with Stack.start(tmp_path_factory.mktemp("faults"), extra_env=FAULT_ENV) as running:
        yield running
