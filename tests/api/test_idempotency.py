"""Idempotency-Key (AP-1) on a real platform: one effect per key, the first answer replayed.

Transactions are counted on chain: the operator's nonce (every transaction it signs) and the
``registerMember`` calls naming the new member's address in the blocks mined meanwhile.

- The same key and body ten times: ten identical answers (status and bytes), the replays
  marked ``Idempotent-Replayed``, the transactions of one creation and one registration.
- The same key with another body: 422 ``idempotency_key_reused``, nothing sent.
- Twenty concurrent duplicates on PostgreSQL, against two API worker processes: one effect;
  every other answer is the identical replay or 409 ``idempotency_in_progress``.
- The same for a split, whose key is claimed late (by the transaction that records its signed
  transaction, docs/performance.md change 34), on SQLite with one worker and on PostgreSQL
  with two: the duplicates run up to that insert, collide, and answer the first's answer;
  the holder's account sends one transaction; another body under the key is refused.
- A crash between broadcasting and recording the outcome: the API process dies right after
  ``registerMember`` left (``tests/support/crash_after_broadcast.py``);
  after a restart and the key's lease (``TIERFLOW_API_IDEMPOTENCY_LEASE_S``, short here), the
  retry finds the first transaction: the same member, one registration, no new transaction.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from bench.stack import Stack
from ledger.anvil import ANVIL_FIRST_KEY, rpc_call
from tests.support.api import Api, core_with_limit, issue, make_api
from tests.support.crash_after_broadcast import CRASH_EXIT_STATUS
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.duplicates import concurrent_split_duplicates

OPERATOR_ADDRESS: str = Account.from_key(ANVIL_FIRST_KEY).address
REGISTER_MEMBER = "0x" + keccak(text="registerMember(address,uint256,uint64)")[:4].hex()
LEASE_S = 2
KYC = (datetime.now(UTC) + timedelta(days=400)).isoformat()


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """This module's platform: idempotency leases of two seconds (the crash test waits one)."""
    extra = {"TIERFLOW_API_IDEMPOTENCY_LEASE_S": str(LEASE_S)}
    async with Stack.start(tmp_path_factory.mktemp("idem"), extra_env=extra) as running:
        yield running


@pytest.fixture(scope="module")
async def pg_workers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The platform on PostgreSQL with two API worker processes."""
    name = await create_pg_database()
    try:
        url = f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
        async with Stack.start(
            tmp_path_factory.mktemp("idem-pg"),
            database_url=url,
            extra_env={"TIERFLOW_API_WORKERS": "2"},
        ) as running:
            yield running
    finally:
        await drop_pg_database(name)


def nonce(stack: Stack) -> int:
    return int(rpc_call(stack.rpc_url, "eth_getTransactionCount", [OPERATOR_ADDRESS, "latest"]), 16)


def head(stack: Stack) -> int:
    return int(rpc_call(stack.rpc_url, "eth_blockNumber"), 16)


def registrations(stack: Stack, since_block: int) -> list[str]:
    """The addresses ``registerMember`` was called for in blocks after ``since_block``."""
    found = []
    for number in range(since_block + 1, head(stack) + 1):
        block = rpc_call(stack.rpc_url, "eth_getBlockByNumber", [hex(number), True])
        for tx in block["transactions"]:
            data: str = tx["input"]
            if data.startswith(REGISTER_MEMBER):
                found.append("0x" + data[10 + 24 : 10 + 64].lower())
    return found


def member_body(name: str) -> dict[str, Any]:
    return {"name": name, "roles": ["supplier"], "kyc_expires_at": KYC}


async def test_ten_times_the_same_request_is_one_effect(stack: Stack, api: Api) -> None:
    key = "idem-ten-" + Stack.idem()["Idempotency-Key"]
    body = member_body("ten times")
    block, sent = head(stack), nonce(stack)
    answers = [await api.operator.post("/v1/members", body, key=key) for _ in range(10)]
    first = answers[0]
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert first.json()["api_key"].startswith("tf_")
    for again in answers[1:]:
        assert again.status_code == first.status_code
        # The same answer, but the new API key is shown once: a replay carries none, and it
        # is not stored where replays come from.
        assert again.json() == {**first.json(), "api_key": None}
        assert again.content == answers[1].content
        assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["api_key"] not in stored_responses(stack)
    address = first.json()["address"]
    assert registrations(stack, block) == [address.lower()]
    # One creation: its gas money (where gas has a price) and its registration, nothing more.
    spent = nonce(stack) - sent
    assert spent in (1, 2)
    # A new key for the same body is a second, separate effect (the control).
    other = await api.operator.post("/v1/members", body)
    assert other.status_code == 201, other.text
    assert other.json()["address"] != address
    assert nonce(stack) - sent == 2 * spent


async def test_same_key_other_body_is_refused(stack: Stack, api: Api) -> None:
    key = "idem-reused-" + Stack.idem()["Idempotency-Key"]
    first = await api.operator.post("/v1/members", member_body("first body"), key=key)
    assert first.status_code == 201, first.text
    block, sent = head(stack), nonce(stack)
    for other in (
        member_body("second body"),
        {**member_body("first body"), "roles": ["financier"]},
    ):
        r = await api.operator.post("/v1/members", other, key=key)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "idempotency_key_reused"
    # Another path with the same key is another request too.
    address = first.json()["address"]
    r = await api.operator.post(f"/v1/members/{address}/suspend", {"reason": "x"}, key=key)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "idempotency_key_reused"
    assert (nonce(stack), head(stack)) == (sent, block)
    # The first answer is still what the key gives.
    again = await api.operator.post("/v1/members", member_body("first body"), key=key)
    assert again.json() == {**first.json(), "api_key": None}  # the key was shown once


async def test_a_key_belongs_to_its_member(stack: Stack, api: Api) -> None:
    """Two members may use the same key string: each gets its own effect."""
    supplier = await api.member("key-owner", ["supplier"])
    other = await api.member("key-owner-2", ["supplier"])
    key = "idem-shared-" + Stack.idem()["Idempotency-Key"]
    mine = await supplier.post(f"/v1/members/{supplier.address}/api-keys", {"label": "a"}, key)
    theirs = await other.post(f"/v1/members/{other.address}/api-keys", {"label": "a"}, key)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.postgres
async def test_twenty_concurrent_duplicates_one_effect(pg_workers: Stack) -> None:
    api = await make_api(pg_workers)
    try:
        warm = await api.operator.post("/v1/members", member_body("warm-up"))
        assert warm.status_code == 201, warm.text
        key = "idem-20-" + Stack.idem()["Idempotency-Key"]
        body = member_body("twenty at once")
        block, sent = head(pg_workers), nonce(pg_workers)
        clients = [pg_workers.client(pg_workers.operator_key) for _ in range(20)]
        try:
            headers = {"Idempotency-Key": key}
            answers = await asyncio.gather(
                *(c.post("/v1/members", json=body, headers=headers) for c in clients)
            )
        finally:
            for c in clients:
                await c.aclose()
        created = [r for r in answers if r.status_code == 201]
        busy = [r for r in answers if r.status_code == 409]
        assert len(created) + len(busy) == 20, [(r.status_code, r.text) for r in answers]
        assert created, "no request completed"
        # One answer; the new API key in the first only (shown once).
        assert len({json.dumps({**r.json(), "api_key": None}) for r in created}) == 1
        assert len([r for r in created if r.json()["api_key"] is not None]) == 1
        assert all(r.json()["code"] == "idempotency_in_progress" for r in busy)
        address = created[0].json()["address"]
        assert registrations(pg_workers, block) == [address.lower()]
        assert nonce(pg_workers) - sent == (
            2 if int(rpc_call(pg_workers.rpc_url, "eth_gasPrice"), 16) else 1
        )
        later = await api.operator.post("/v1/members", body, key=key)
        assert later.status_code == 201
        assert later.json() == {**created[0].json(), "api_key": None}
    finally:
        await api.close()


async def test_concurrent_duplicates_of_a_split_claimed_late_one_effect(
    stack: Stack, api: Api
) -> None:
    await concurrent_split_duplicates(stack, api, "sqlite")


@pytest.mark.postgres
async def test_concurrent_duplicates_of_a_split_claimed_late_on_two_workers(
    pg_workers: Stack,
) -> None:
    api = await make_api(pg_workers)
    try:
        await concurrent_split_duplicates(pg_workers, api, "pg")
    finally:
        await api.close()


def stored_responses(stack: Stack) -> str:
    """Every stored idempotent answer, as one text."""
    with sqlite3.connect(stack.data_dir / "tierflow.db") as db:
        rows = db.execute("SELECT response FROM idempotency_records").fetchall()
    return "\n".join(r for (r,) in rows if r)


def interrupted_citations(stack: Stack, key: str) -> list[str]:
    """The transactions cited by ``request_interrupted`` records of requests under ``key``."""
    with sqlite3.connect(stack.data_dir / "tierflow.db") as db:
        rows = db.execute(
            "SELECT tx_hashes FROM audit_log WHERE code = 'request_interrupted' "
            "AND idempotency_key = ?",
            (key,),
        ).fetchall()
    return [h for (hashes,) in rows for h in json.loads(hashes)]


async def test_crash_after_broadcast_resumes_without_a_second_transaction(
    stack: Stack, api: Api
) -> None:
    stack.procs["api"].stop()
    stack.start_api(module=["tests.support.crash_after_broadcast", "registerMember"])
    await stack.wait_ready()
    crashing = stack.procs["api"]
    key = "idem-crash-" + Stack.idem()["Idempotency-Key"]
    body = member_body("crashed once")
    block, sent = head(stack), nonce(stack)
    async with stack.client(stack.operator_key) as client:
        with pytest.raises(httpx.TransportError):
            await client.post("/v1/members", json=body, headers={"Idempotency-Key": key})
    assert await asyncio.to_thread(crashing.popen.wait, 30) == CRASH_EXIT_STATUS
    # The registration left before the process died, and was mined.
    registered = registrations(stack, block)
    assert len(registered) == 1
    spent = nonce(stack) - sent

    # The dead request's audit_pending row becomes a request_interrupted record citing it.
    stack.start_api(extra_env={"TIERFLOW_API_AUDIT_SWEEP_AFTER_S": "1"})
    await stack.wait_ready()
    deadline = asyncio.get_running_loop().time() + 30
    while not (cited := interrupted_citations(stack, key)):
        assert asyncio.get_running_loop().time() < deadline, "no request_interrupted record"
        await asyncio.sleep(0.5)
    async with stack.client(stack.operator_key) as client:
        r = await client.post("/v1/members", json=body, headers={"Idempotency-Key": key})
        assert r.status_code == 201, r.text
        assert r.json()["address"].lower() == registered[0]
        again = await client.post("/v1/members", json=body, headers={"Idempotency-Key": key})
        assert again.json() == {**r.json(), "api_key": None}
        # The transaction the dead worker broadcast is the one the interrupted record cites.
        receipt = rpc_call(stack.rpc_url, "eth_getTransactionReceipt", [cited[-1]])
        assert receipt is not None
        # Its API key works: the resumed run finished the creation.
        made = stack.client(r.json()["api_key"])
        try:
            me = await made.get(f"/v1/members/{r.json()['address']}")
            assert me.status_code == 200
            assert me.json()["roles"] == ["supplier"]
        finally:
            await made.aclose()
    assert registrations(stack, block) == registered
    assert nonce(stack) - sent == spent


async def crash_after_broadcast(
    stack: Stack, function: str, member: Any, path: str, body: Any, key: dict[str, str]
) -> None:
    """POST ``body`` to ``path`` as ``member`` on a worker that dies right after broadcasting
    a call of ``function``; the worker is gone when this returns (start another)."""
    stack.procs["api"].stop()
    stack.start_api(module=["tests.support.crash_after_broadcast", function])
    await stack.wait_ready()
    crashing = stack.procs["api"]
    async with stack.client(member.key) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(path, json=body, headers=key)
    assert await asyncio.to_thread(crashing.popen.wait, 30) == CRASH_EXIT_STATUS


async def retried(client: httpx.AsyncClient, path: str, body: Any, key: dict[str, str]) -> Any:
    """The POST again under its key, once the dead worker's lease has run out (409 until
    then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (r := await client.post(path, json=body, headers=key)).status_code == 409:
        assert loop.time() < deadline, r.text
        await asyncio.sleep(0.5)
    return r


def account_nonce(stack: Stack, address: str) -> int:
    return int(rpc_call(stack.rpc_url, "eth_getTransactionCount", [address, "latest"]), 16)


async def test_a_split_of_half_resumed_after_its_broadcast_answers_the_split(
    stack: Stack, api: Api
) -> None:
    """The worker dies right after broadcasting a split of half a piece. By the retry the
    mirror shows the piece at the amount the split asked, which alone reads as a whole
    transfer: the answer must still be the split the chain made (an executed write is never
    answered as failed), with no second transaction."""
    core = await core_with_limit(api, "half-core", 10**12)
    a = await api.member("half-a", ["supplier"])
    b = await api.member("half-b", ["supplier"])
    root = int((await issue(api, core, a, 1_000))["root_claim_id"])
    path, body = f"/v1/claims/{root}/transfers", {"to": b.address, "amount": 500}
    key = {"Idempotency-Key": "idem-half-" + Stack.idem()["Idempotency-Key"]}
    await crash_after_broadcast(stack, "split", a, path, body, key)
    stack.start_api()
    await stack.wait_ready()
    sent = account_nonce(stack, a.address)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    async with stack.client(a.key) as client:
        while (await client.get(f"/v1/claims/{root}")).json()["amount"] != 500:
            assert loop.time() < deadline, "the mirror never showed the split"
            await asyncio.sleep(0.2)
        r = await retried(client, path, body, key)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["kind"] == "split", answer
    assert answer["claim_id"] != root
    assert answer["from_claim_id"] == root
    assert answer["amount"] == 500
    assert answer["claim"]["holder"] == b.address
    assert account_nonce(stack, a.address) == sent


async def test_an_application_resumed_after_its_broadcast_is_the_one_sent(
    stack: Stack, api: Api
) -> None:
    """The worker dies right after broadcasting a financing application whose expiry the API
    derived from the chain's clock, and the clock moves on before the retry: the retry must
    find the application sent (one effect, its answer), not derive another expiry and send
    a second application beside it."""
    core = await core_with_limit(api, "clock-core", 10**12)
    supplier = await api.member("clock-supplier", ["supplier"])
    bank = await api.member("clock-bank", ["financier"])
    r = await bank.put(f"/v1/credit-lines/{core.address}", {"limit": 10**9})
    assert r.status_code == 200, r.text
    root = int((await issue(api, core, supplier, 1_000_000))["root_claim_id"])
    path, body = (
        "/v1/financing-requests",
        {"claim_id": root, "financier": bank.address, "amount": 100_000},
    )
    key = {"Idempotency-Key": "idem-clock-" + Stack.idem()["Idempotency-Key"]}
    await crash_after_broadcast(stack, "applyForFinancing", supplier, path, body, key)
    api.advance_time(600)  # the default expiry, a week from "now", would now differ
    stack.start_api()
    await stack.wait_ready()
    sent = account_nonce(stack, supplier.address)
    async with stack.client(supplier.key) as client:
        r = await retried(client, path, body, key)
        assert r.status_code == 201, r.text
        mine = await client.get("/v1/financing-requests", params={"claim_id": root})
    assert account_nonce(stack, supplier.address) == sent, "the retry sent a second application"
    assert [f["id"] for f in mine.json()["items"]] == [r.json()["id"]]
