"""Rate limits per API key on a platform started with ``TIERFLOW_API_RATE_LIMIT=60``.

Sixty requests a minute means a burst of ten and one token a second back. Over the limit a
key gets 429 ``rate_limited`` as problem details with ``Retry-After`` in whole seconds (the
body's ``retry_after`` says the same); a refused write has no effect (its Idempotency-Key is
still free afterwards); another member's key is unaffected; after waiting ``Retry-After`` the
key works again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bench.stack import Stack
from tests.support.api import Api, Member

PER_MINUTE = 60
BURST = 10  # max(10, PER_MINUTE // 10): see backend/ratelimit.py


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    extra = {"TIERFLOW_API_RATE_LIMIT": str(PER_MINUTE)}
    async with Stack.start(tmp_path_factory.mktemp("ratelimit"), extra_env=extra) as running:
        yield running


async def exhaust(member: Member, limit: int = 3 * BURST) -> tuple[int, httpx.Response]:
    """Requests until the first 429: (how many succeeded before it, the 429)."""
    for ok in range(limit):
        r = await member.get("/v1/members")
        if r.status_code == 429:
            return ok, r
        assert r.status_code == 200, r.text
    raise AssertionError(f"{limit} requests and no 429")


def retry_after(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    header = r.headers["retry-after"]
    assert header.isdigit(), header
    body = r.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    assert body["retry_after"] == int(header)
    assert 1 <= int(header) <= 60
    return int(header)


async def test_over_the_limit_429_then_back_after_retry_after(api: Api) -> None:
    busy = await api.member("busy", ["supplier"])
    calm = await api.member("calm", ["supplier"])
    ok, refused = await exhaust(busy)
    # The burst, plus what came back while it ran (one a second).
    assert BURST - 1 <= ok <= BURST + 2, ok
    wait = retry_after(refused)

    # A write over the limit is refused before it does anything: its key stays unused.
    key = "rate-" + Stack.idem()["Idempotency-Key"]
    path = f"/v1/members/{busy.address}/api-keys"
    write = await busy.post(path, {"label": "over the limit"}, key=key)
    retry_after(write)

    # Another member's key is not affected.
    for _ in range(3):
        assert (await calm.get("/v1/members")).status_code == 200

    await asyncio.sleep(wait)
    again = await busy.get("/v1/members")
    assert again.status_code == 200, again.text
    await asyncio.sleep(wait)
    made = await busy.post(path, {"label": "over the limit"}, key=key)
    assert made.status_code == 201, made.text
    assert "idempotent-replayed" not in made.headers


async def test_retry_after_is_what_it_takes(api: Api) -> None:
    """Retrying as told works; sooner than that does not."""
    member = await api.member("patient", ["supplier"])
    _, refused = await exhaust(member)
    wait = retry_after(refused)
    assert (await member.get("/v1/members")).status_code == 429
    await asyncio.sleep(wait)
    assert (await member.get("/v1/members")).status_code == 200
