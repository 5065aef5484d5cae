"""Rate limits per member on a platform started with ``TIERFLOW_API_RATE_LIMIT=60``.

Sixty requests a minute means a burst of ten and one token a second back. Over the limit a
key gets 429 ``rate_limited`` as problem details with ``Retry-After`` in whole seconds (the
body's ``retry_after`` says the same); a refused write has no effect (its Idempotency-Key is
still free afterwards); another member's key is unaffected; after waiting ``Retry-After`` the
key works again. The buckets are in the database: a second API process on the same database
shares them (one burst between the two, for a member and for keyless writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from bench.stack import Stack
from ledger.anvil import free_port
from tests.support.api import Api, Member
from tests.support.console_demo import csrf_field

PER_MINUTE = 60
BURST = 10  # max(10, PER_MINUTE // 10): see backend/ratelimit.py


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    extra = {
        "TIERFLOW_API_RATE_LIMIT": str(PER_MINUTE),
        "TIERFLOW_API_KEYLESS_LIMIT": str(PER_MINUTE),
    }
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


async def test_more_keys_are_not_more_requests(api: Api) -> None:
    """The limit is the member's: a second key of the same member shares its bucket."""
    member = await api.member("two-keys", ["supplier"])
    made = await member.post(f"/v1/members/{member.address}/api-keys", {"label": "second"})
    assert made.status_code == 201, made.text
    _, refused = await exhaust(member)
    wait = retry_after(refused)
    async with api.stack.client(made.json()["api_key"]) as second:
        r = await second.get("/v1/members")
        assert r.status_code == 429, r.text
    await asyncio.sleep(wait)


async def test_the_console_shares_the_members_bucket(api: Api) -> None:
    """A console session signed in with another key of the member is limited with it."""
    member = await api.member("console-keys", ["supplier"])
    made = await member.post(f"/v1/members/{member.address}/api-keys", {"label": "console"})
    assert made.status_code == 201, made.text
    async with httpx.AsyncClient(base_url=api.stack.base_url, timeout=60.0) as browser:
        form = await browser.get("/console/sign-in")
        signed = await browser.post(
            "/console/sign-in",
            data={"api_key": made.json()["api_key"], "csrf_token": csrf_field(form.text)},
        )
        assert signed.status_code == 303, signed.text
        _, refused = await exhaust(member)
        wait = retry_after(refused)
        # The bucket refills one token a second, so on a slow machine a page or two may pass;
        # a bucket of the console's own would let a whole burst through.
        pages = [(await browser.get("/console")).status_code for _ in range(BURST // 2)]
        assert 429 in pages, pages
        assert pages.count(200) < BURST // 2, pages
    await asyncio.sleep(wait)


async def test_a_flood_without_a_key_is_limited_and_not_recorded_one_by_one(
    api: Api,
) -> None:
    def records_without_member() -> int:
        with sqlite3.connect(api.stack.data_dir / "tierflow.db") as db:
            (n,) = db.execute("SELECT count(*) FROM audit_log WHERE member IS NULL").fetchone()
        return int(n)

    before = records_without_member()
    body = b"x" * 60_000
    async with httpx.AsyncClient(base_url=api.stack.base_url) as anonymous:
        answers = [
            await anonymous.post("/v1/members", content=body, headers=Stack.idem())
            for _ in range(3 * BURST)
        ]
    statuses = [r.status_code for r in answers]
    assert set(statuses) == {401, 429}, statuses
    assert all(r.headers["retry-after"].isdigit() for r in answers if r.status_code == 429)
    # Only the refusals within the limit are recorded; the rest are counted.
    assert records_without_member() - before == statuses.count(401) <= BURST + 2


async def test_the_limits_hold_across_api_processes(api: Api) -> None:
    """A second API process on the same database: the member's requests spread over both
    get one burst between them, not one each, and so do keyless writes from one address."""
    stack = api.stack
    port = free_port()
    second = stack.spawn("api-2", "serve", extra_env={"TIERFLOW_API_PORT": str(port)})
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60.0) as probe:
            deadline = time.monotonic() + 180
            while True:
                assert second.popen.poll() is None, second.tail()
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/health")).status_code == 200:
                        break
                assert time.monotonic() < deadline, second.tail()
                await asyncio.sleep(0.3)
        member = await api.member("two-processes", ["supplier"])
        headers = {"Authorization": f"Bearer {member.key}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60.0
        ) as other:
            ok = 0
            for n in range(4 * BURST):
                r = await (member.get("/v1/members") if n % 2 else other.get("/v1/members"))
                if r.status_code == 429:
                    break
                assert r.status_code == 200, r.text
                ok += 1
            assert BURST - 1 <= ok <= BURST + 2, ok  # not twice the burst
            assert (await other.get("/v1/members")).status_code == 429
            wait = retry_after(await member.get("/v1/members"))

        async with (
            httpx.AsyncClient(base_url=stack.base_url) as first_keyless,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as second_keyless,
        ):
            statuses = [
                (
                    await (first_keyless if n % 2 else second_keyless).post(
                        "/v1/members", content=b"{}", headers=Stack.idem()
                    )
                ).status_code
                for n in range(4 * BURST)
            ]
        assert set(statuses) == {401, 429}, statuses
        assert statuses.count(401) <= BURST + 2, statuses
        await asyncio.sleep(wait)
    finally:
        second.stop()
        stack.procs.pop("api-2", None)
