"""Auto-approval on a real platform with two API workers on one PostgreSQL database.

A financier's policy approves a matching request within seconds, with the policy's rate and
fees and the credit line's registration number, and exactly once although both workers poll;
a request outside the policy stays Applied with the reason, for a person, until the policy
changes; the quote says beforehand which it will be.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.stack import Stack
from ledger.anvil import rpc_call
from ledger.deployment import DAY
from tests.support.api import Api, Ledger, Member, problem
from tests.support.databases import create_pg_database, drop_pg_database

pytestmark = pytest.mark.postgres

REGISTRATION = "ZD-AUTO-0001"
POLICY = {
    "enabled": True,
    "max_amount": 100_000,
    "max_tenor_days": 90,
    "annual_rate_bps": 500,
    "fee_bps": 10,
    "recourse": True,
}
#: Auto-approval should act well within this (it polls every 0.5 s).
WITHIN_S = 10.0


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """This module's platform: PostgreSQL, and `tierflow serve` with two worker processes."""
    name = await create_pg_database()
    try:
        async with Stack.start(
            tmp_path_factory.mktemp("auto"),
            database_url=f"postgresql+asyncpg://root@127.0.0.1:5432/{name}",
            extra_env={"TIERFLOW_API_WORKERS": "2"},
        ) as running:
            yield running
    finally:
        await drop_pg_database(name)


@dataclass
class Cast:
    api: Api
    chain: Ledger
    core: Member
    supplier: Member
    bank: Member


@pytest.fixture(scope="module")
async def cast(stack: Stack, api: Api) -> AsyncIterator[Cast]:
    async with Ledger.open(stack, api) as chain:
        core = await api.member("core", ["core_enterprise"])
        made = Cast(
            api,
            chain,
            core,
            await api.member("supplier", ["supplier"]),
            await api.member("bank", ["financier"]),
        )
        r = await api.operator.put(
            f"/v1/members/{core.address}/program-limit", {"program_limit": 10**12}
        )
        assert r.status_code == 200, r.text
        r = await made.bank.put(
            f"/v1/credit-lines/{core.address}", {"limit": 10**9, "registration_no": REGISTRATION}
        )
        assert r.status_code == 200, r.text
        r = await made.bank.put(
            "/v1/financing-policy", {**POLICY, "allowed_obligors": [core.address]}
        )
        assert r.status_code == 200, r.text
        yield made


async def apply(cast: Cast, claim_id: int, amount: int, **commit: Any) -> int:
    """Apply; ``commit``: the applicant's ``min_advance`` and ``recourse``."""
    r = await cast.supplier.post(
        "/v1/financing-requests",
        {"claim_id": claim_id, "financier": cast.bank.address, "amount": amount, **commit},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def decided(cast: Cast, financing_id: int, outcome: str) -> dict[str, Any]:
    """The request once its auto-decision reads ``outcome`` (within :data:`WITHIN_S`)."""
    deadline = time.monotonic() + WITHIN_S
    while True:
        r = await cast.supplier.get(f"/v1/financing-requests/{financing_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        decision = body["auto_decision"]
        seen = decision["outcome"] if decision is not None else None
        if seen == outcome and (outcome != "approved" or body["status"] == "approved"):
            return body
        assert time.monotonic() < deadline, f"no {outcome} decision in {WITHIN_S} s: {body}"
        await asyncio.sleep(0.1)


def worker_processes(stack: Stack) -> int:
    """uvicorn's worker processes under `tierflow serve` (its other child is
    multiprocessing's resource tracker)."""
    pid = stack.procs["api"].popen.pid
    workers = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            workers += b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    return workers


def tx_count(stack: Stack, address: str) -> int:
    return int(rpc_call(stack.rpc_url, "eth_getTransactionCount", [address, "latest"]), 16)


async def test_the_quote_says_what_auto_approval_will_do(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 500_000, 60 * DAY)
    base = {"claim_id": root, "financier": cast.bank.address}
    r = await cast.supplier.get("/v1/financing-quotes", **base, amount=80_000)
    assert r.status_code == 200, r.text
    quote = r.json()
    assert (quote["annual_rate_bps"], quote["fee_bps"]) == (500, 10)  # the policy's
    assert quote["discount"] == await cast.chain.suite.discount_for(80_000, 500, 60)
    assert quote["fees"] == 80
    assert quote["auto_approval"] == {"would_approve": True, "reason": None}
    r = await cast.supplier.get("/v1/financing-quotes", **base, amount=100_001)
    outlook = r.json()["auto_approval"]
    assert outlook["would_approve"] is False
    assert "above" in outlook["reason"]


async def test_matching_requests_are_approved_once_within_seconds(stack: Stack, cast: Cast) -> None:
    assert worker_processes(stack) == 2
    sent_before = tx_count(stack, cast.bank.address)
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 400_000, 60 * DAY)
    started = time.monotonic()
    ids = [await apply(cast, root, 50_000) for _ in range(4)]
    bodies = [await decided(cast, fid, "approved") for fid in ids]
    elapsed = time.monotonic() - started
    assert elapsed < WITHIN_S
    discount = await cast.chain.suite.discount_for(50_000, 500, 60)
    for body in bodies:
        assert body["status"] == "approved"
        assert (body["advance"], body["discount"], body["fees"]) == (
            50_000 - discount - 50,
            discount,
            50,
        )
        assert body["annual_rate_bps"] == 500
        assert body["recourse"] is True
        # its own number under the credit line's programme: a number backs one financing
        assert body["registration_no"] == f"{REGISTRATION}-{body['id']}"
        # the applicant committed by default to the quote's advance, and got it
        assert body["min_advance"] == body["advance"]
        assert body["auto_decision"]["tx_hash"].startswith("0x")
        financed = await cast.chain.suite.claim(body["financed_claim_id"])
        assert financed.holder == cast.bank.address
    # Exactly one approval transaction per request, though both workers poll.
    assert tx_count(stack, cast.bank.address) - sent_before == len(ids)
    # AP-3: each approval transaction is cited by the audit record of the policy's decision
    # (the financier as member, "auto-approval" as its key), one record per request.
    r = await cast.api.operator.get("/v1/audit/log", member=cast.bank.address, limit=200)
    assert r.status_code == 200, r.text
    auto = [rec for rec in r.json()["items"] if rec["api_key_id"] == "auto-approval"]
    for fid, body in zip(ids, bodies, strict=True):
        (record,) = [rec for rec in auto if rec["idempotency_key"] == f"auto-approval-{fid}"]
        assert record["status"] == 200
        assert record["method"] == "POST"
        assert record["path"] == f"/v1/financing-requests/{fid}/approve"
        assert body["auto_decision"]["tx_hash"].lower() in {h.lower() for h in record["tx_hashes"]}
    assert (await cast.api.operator.get("/v1/audit/log/verify")).json()["ok"] is True
    log = stack.procs["api"].log.read_text(errors="replace")
    assert "did not complete" not in log
    assert "pass failed" not in log
    r = await cast.bank.get("/v1/credit-lines")
    (line,) = r.json()["items"]
    assert line["outstanding"] == 200_000


async def test_others_are_left_for_a_person_with_the_reason(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 500_000, 60 * DAY)
    large = await apply(cast, root, 150_000)
    long_root, _ = await cast.chain.payable(cast.core, cast.supplier, 10_000, 120 * DAY)
    long = await apply(cast, long_root, 10_000)

    body = await decided(cast, large, "declined")
    assert body["status"] == "applied"
    assert "amount is above" in body["auto_decision"]["detail"]
    body = await decided(cast, long, "declined")
    assert body["status"] == "applied"
    assert "term is longer" in body["auto_decision"]["detail"]
    financier_view = await cast.bank.get(f"/v1/financing-requests/{large}")
    assert financier_view.json()["auto_decision"]["outcome"] == "declined"
    await asyncio.sleep(1.0)  # several more polls: still nobody approves it
    r = await cast.supplier.get(f"/v1/financing-requests/{large}")
    assert r.json()["status"] == "applied"

    # A wider policy is applied to the pending requests it now covers.
    r = await cast.bank.put(
        "/v1/financing-policy",
        {**POLICY, "max_amount": 200_000, "allowed_obligors": [cast.core.address]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["max_amount"] == 200_000
    await decided(cast, large, "approved")
    assert (await decided(cast, long, "declined"))["status"] == "applied"

    # The person decides the other one.
    r = await cast.bank.post(
        f"/v1/financing-requests/{long}/approve", {"annual_rate_bps": 450, "fees": 0}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert r.json()["auto_decision"]["outcome"] == "declined"


async def test_policy_reads_and_input(cast: Cast) -> None:
    r = await cast.bank.get("/v1/financing-policy")
    assert r.status_code == 200, r.text
    assert r.json()["allowed_obligors"] == [cast.core.address]
    problem(await cast.supplier.get("/v1/financing-policy"), 403, "role_missing")
    problem(await cast.supplier.put("/v1/financing-policy", POLICY), 403, "role_missing")
    for bad in (
        {**POLICY, "fee_bps": 10_001},
        {**POLICY, "max_amount": -1},
        {**POLICY, "allowed_obligors": ["0x12"]},
        {**POLICY, "surprise": 1},
        {k: v for k, v in POLICY.items() if k != "enabled"},
    ):
        r = await cast.bank.put("/v1/financing-policy", bad)
        assert r.status_code == 422, r.text


async def test_the_applicants_commitments_are_never_overridden(cast: Cast) -> None:
    """A request whose committed min_advance is above the policy's advance, or whose recourse
    is not the policy's, stays for a person with the reason."""
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 100_000, 30 * DAY)
    greedy = await apply(cast, root, 10_000, min_advance=10_000)  # no discount, no fees
    other = await apply(cast, root, 10_000, recourse=False)  # the policy's is with recourse
    body = await decided(cast, greedy, "declined")
    assert body["status"] == "applied"
    assert "min_advance" in body["auto_decision"]["detail"]
    body = await decided(cast, other, "declined")
    assert body["status"] == "applied"
    assert "recourse" in body["auto_decision"]["detail"]
    # the person may approve the second on the terms the applicant committed to
    r = await cast.bank.post(
        f"/v1/financing-requests/{other}/approve", {"annual_rate_bps": 500, "fees": 10}
    )
    assert r.status_code == 200, r.text
    assert r.json()["recourse"] is False
