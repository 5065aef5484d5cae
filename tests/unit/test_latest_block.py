"""The gateway's shared read of the latest block
(:class:`backend.gateway.latest_block.LatestBlock`): callers waiting at once share one request,
but none is answered by a request sent before it called (the answer is never older than the
call), errors reach every caller of that request, and a caller that gives up leaves the others
their answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backend.gateway.latest_block import LatestBlock


class Node:
    """Answers each request with the number of requests sent so far, when released."""

    def __init__(self) -> None:
        self.sent = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def fetch(self) -> dict[str, Any]:
        self.sent += 1
        number = self.sent
        await self.release.wait()
        self.release.clear()
        if self.fail is not None:
            raise self.fail
        return {"number": number}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_share_a_request_never_one_sent_before_they_called() -> None:
    node = Node()
    latest = LatestBlock(node.fetch)
    first = asyncio.create_task(latest.read())
    await settle()
    assert node.sent == 1  # nothing in flight: sent at once
    # Three callers while request 1 is in flight: all wait for request 2, which is one.
    later = [asyncio.create_task(latest.read()) for _ in range(3)]
    await settle()
    assert node.sent == 1
    node.release.set()
    assert await first == {"number": 1}
    await settle()
    assert node.sent == 2
    node.release.set()
    assert [await t for t in later] == [{"number": 2}] * 3
    await latest.close()


async def test_an_error_reaches_the_callers_of_that_request_only() -> None:
    node = Node()
    latest = LatestBlock(node.fetch)
    node.fail = ConnectionError("node down")
    failing = [asyncio.create_task(latest.read()) for _ in range(2)]
    await settle()
    node.release.set()
    for task in failing:
        with pytest.raises(ConnectionError):
            await task
    node.fail = None
    again = asyncio.create_task(latest.read())
    await settle()
    node.release.set()
    assert await again == {"number": 2}
    await latest.close()


async def test_a_caller_that_gives_up_leaves_the_others_their_answer() -> None:
    node = Node()
    latest = LatestBlock(node.fetch)
    quitter = asyncio.create_task(latest.read())
    stayer = asyncio.create_task(latest.read())
    await settle()
    quitter.cancel()
    await settle()
    node.release.set()
    assert await stayer == {"number": 1}
    assert quitter.cancelled()
    # An answer nobody waits for any more is dropped quietly.
    alone = asyncio.create_task(latest.read())
    await settle()
    alone.cancel()
    node.fail = ConnectionError("unheard")
    node.release.set()
    await settle()
    await latest.close()
