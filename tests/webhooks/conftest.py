"""Fixtures of the webhook tests: a platform with a dispatcher, and a real HTTP receiver.

- ``stack`` (module): :class:`bench.stack.Stack` (anvil, ``tierflow index``, ``tierflow
  serve``) plus ``tierflow webhooks``, retrying fast: first retry after 0.2 s, at most 0.5 s
  apart, given up after 4 s, 1 s per attempt (the production defaults are 5 s, 1 h, 25 h, 10 s).
- ``receiver`` (module): :class:`tests.support.receiver.Receiver` on 127.0.0.1 (the local
  chain allows loopback targets).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.stack import Stack
from tests.support.api import api  # noqa: F401  (the module-scoped ``api`` fixture)
from tests.support.receiver import Receiver, running_receiver

FAST_RETRIES = {
    "TIERFLOW_WEBHOOKS_BACKOFF_S": "0.2",
    "TIERFLOW_WEBHOOKS_MAX_BACKOFF_S": "0.5",
    "TIERFLOW_WEBHOOKS_RETRY_FOR_S": "4",
    "TIERFLOW_WEBHOOKS_TIMEOUT_S": "1",
}


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with Stack.start(
        tmp_path_factory.mktemp("webhooks"), extra_env=FAST_RETRIES, webhooks=True
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running
