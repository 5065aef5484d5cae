"""What the first run's demo needs from the API, so it never talks to the node (issue 11):
``GET /v1/deployment`` gives the chain's clock and says whether it is the local development
chain; ``POST /v1/dev/advance-time`` moves that clock, for the operator only, idempotently.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.stack import Stack
from ledger.anvil import rpc_call
from ledger.deployment import DAY
from tests.support.api import Api, problem


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The platform at log level info, so its access log is written."""
    extra = {"TIERFLOW_LOG_LEVEL": "info"}
    async with Stack.start(tmp_path_factory.mktemp("stack"), extra_env=extra) as running:
        yield running


def head_time(stack: Stack) -> int:
    block = rpc_call(stack.rpc_url, "eth_getBlockByNumber", ["latest", False])
    return int(block["timestamp"], 16)


async def deployment(api: Api) -> dict[str, Any]:
    r = await api.operator.get("/v1/deployment")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_deployment_gives_the_chain_clock_and_says_it_is_local(api: Api) -> None:
    body = await deployment(api)
    assert body["local_chain"] is True
    assert body["chain_time"] == head_time(api.stack)
    # Public, like the contracts' addresses.
    async with api.stack.client() as anonymous:
        r = await anonymous.get("/v1/deployment")
    assert r.status_code == 200
    assert r.json()["chain_time"] == body["chain_time"]


async def test_the_operator_moves_the_local_clock_once(api: Api) -> None:
    before = (await deployment(api))["chain_time"]
    until = before + 90 * DAY
    r = await api.operator.http.post("/v1/dev/advance-time", json={"until": until})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["chain_time"] == until
    assert moved["previous_chain_time"] == before
    assert moved["advanced_by"] == until - before
    block = moved["block_number"]
    assert block == int(rpc_call(api.stack.rpc_url, "eth_blockNumber"), 16)
    assert head_time(api.stack) == until
    assert (await deployment(api))["chain_time"] == until

    # A retry (or an earlier time) changes nothing: no block, no step back.
    for again in (until, until - DAY):
        r = await api.operator.http.post("/v1/dev/advance-time", json={"until": again})
        assert r.status_code == 200, r.text
        assert r.json()["advanced_by"] == 0
        assert r.json()["block_number"] is None
    assert int(rpc_call(api.stack.rpc_url, "eth_blockNumber"), 16) == block

    # Later blocks are dated after it (the clock stays moved).
    member = await api.member("clock watcher", ["supplier"])
    assert member.address
    assert head_time(api.stack) >= until


async def test_advance_time_is_the_operators_and_checks_its_input(api: Api) -> None:
    supplier = await api.member("clock mover", ["supplier"])
    before = (await deployment(api))["chain_time"]
    r = await supplier.http.post("/v1/dev/advance-time", json={"until": before + DAY})
    problem(r, 403, "role_missing")
    async with api.stack.client() as anonymous:
        r = await anonymous.post("/v1/dev/advance-time", json={"until": before + DAY})
    assert r.status_code == 401, r.text
    # Not past 3000-01-01 either: moved to 9999-12-31T23:59:59Z, the next block's time could not
    # be written as a date, and the clock's next answer was a 500 (schemathesis found it).
    too_late = (253_402_300_799, 32_503_680_001)
    for bad in (
        {"until": -1},
        {"until": 2**64},
        {},
        {"until": before + DAY, "holder": "x"},
        *({"until": t} for t in too_late),
    ):
        r = await api.operator.http.post("/v1/dev/advance-time", json=bad)
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await deployment(api))["chain_time"] == before


async def test_the_openapi_documents_the_clock(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.stack.base_url) as client:
        doc = (await client.get("/openapi.json")).json()
    assert "/v1/dev/advance-time" in doc["paths"]
    props = doc["components"]["schemas"]["DeploymentPublic"]["properties"]
    assert {"chain_time", "local_chain"} <= set(props)


async def test_docs_work_offline(api: Api) -> None:
    async with api.stack.client() as anonymous:
        r = await anonymous.get("/docs")
        assert r.status_code == 200
        page = r.text
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
        assert assets, page
        for url in assets:
            assert url.startswith("/"), f"/docs loads {url} from elsewhere"
            got = await anonymous.get(url)
            assert got.status_code == 200, url
            assert len(got.content) > 100, url
        assert "/openapi.json" in page
        assert (await anonymous.get("/openapi.json")).status_code == 200


async def test_answers_carry_the_rate_limit(api: Api) -> None:
    r = await api.operator.get("/v1/members")
    assert r.status_code == 200
    assert int(r.headers["X-RateLimit-Limit"]) >= 1
    async with api.stack.client("tf_000000000000_wrong") as stranger:
        r = await stranger.get("/v1/members")
    assert r.status_code == 401
    assert "X-RateLimit-Limit" in r.headers


async def test_request_id_in_the_answer_the_problem_and_the_log(api: Api) -> None:
    async with api.stack.client() as anonymous:
        r = await anonymous.get("/v1/members", headers={"X-Request-Id": "mine"})
        assert r.status_code == 401
        made = r.headers["X-Request-Id"]
        # Always the API's own (it keys the request's records): a caller's is not taken.
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        assert r.json()["request_id"] == made
        again = await anonymous.get("/v1/members")
        assert again.headers["X-Request-Id"] != made
    r = await api.operator.get("/v1/deployment")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])
    # The API's log is JSON lines, the access log among them, with the request id.
    lines = (api.stack.data_dir / "api.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records
    access = [rec for rec in records if rec.get("logger") == "tierflow.access"]
    assert any(f"request_id={made}" in rec["event"] for rec in access), access[-5:]


async def test_the_audit_record_names_the_request_id(api: Api) -> None:
    r = await api.operator.http.post("/v1/dev/advance-time", json={"until": 0})
    assert r.status_code == 200, r.text
    made = r.headers["X-Request-Id"]
    log = await api.operator.get("/v1/audit/log", method="POST", limit=200)
    assert log.status_code == 200, log.text
    mine = [rec for rec in log.json()["items"] if rec["request_id"] == made]
    assert len(mine) == 1, log.json()["items"][-3:]
    assert mine[0]["path"] == "/v1/dev/advance-time"
    verified = await api.operator.get("/v1/audit/log/verify")
    assert verified.json()["ok"] is True, verified.text
