"""Database transactions per write: ``POST /v1/claims/{id}/transfers`` by a hosted member.

The API runs as ``tests.support.commit_counter`` (``tierflow serve`` that logs every commit
with the tables it wrote); splits alone on the platform are counted. A hosted keyed write
commits four times (six before): the idempotency claim; the nonce allocation; the journal's
record of the signed transaction together with its audit citation (``audit_pending``), both
durable before the bytes leave; the answer together with the request's audit record. Why the
first three cannot be merged further: docs/performance.md, change 8.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench.stack import Stack
from tests.api.conftest import TEST_ENV
from tests.support.api import Api, core_with_limit, issue, make_api, transfer
from tests.support.commit_counter import read


@pytest.fixture(scope="module")
async def counted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Stack, Path]]:
    data = tmp_path_factory.mktemp("counted")
    log = data / "commits.jsonl"
    async with Stack.start(data / "stack", extra_env=TEST_ENV) as stack:
        stack.procs["api"].stop()
        stack.start_api(module=["tests.support.commit_counter", str(log)])
        await stack.wait_ready()
        yield stack, log


@pytest.fixture(scope="module")
async def api(counted: tuple[Stack, Path]) -> AsyncIterator[Api]:
    made = await make_api(counted[0])
    try:
        yield made
    finally:
        await made.close()


async def test_a_hosted_split_commits_its_bookkeeping_in_few_transactions(
    counted: tuple[Stack, Path], api: Api
) -> None:
    stack, log = counted
    core = await core_with_limit(api, "core", 10_000_000)
    s1 = await api.member("s1", ["supplier"])
    s2 = await api.member("s2", ["supplier"])
    root = (await issue(api, core, s1, 10_000))["root_claim_id"]
    # A first split warms the worker (the sender's first nonce sync, caches).
    first = await transfer(s1, root, s2, 10)
    assert first.status_code == 201, first.text

    counts: list[list[dict[str, Any]]] = []
    for _ in range(3):
        before = len(read(log))
        r = await transfer(s1, root, s2, 10)
        assert r.status_code == 201, r.text
        # The background tasks' own commits (the auto-approval poll) are not the write's.
        counts.append([c for c in read(log)[before:] if not c["task"].startswith("tierflow-")])
        # One audit record, appended with the answer, citing the mined transaction.
        with sqlite3.connect(stack.data_dir / "tierflow.db") as db:
            rows = db.execute(
                "SELECT status, tx_hashes FROM audit_log WHERE request_id = ?",
                (r.headers["x-request-id"],),
            ).fetchall()
        assert [(status, json.loads(hashes)) for status, hashes in rows] == [
            (201, [r.json()["tx_hash"]])
        ]
    for commits in counts:
        assert [set(c["writes"]) for c in commits] == EXPECTED, commits


#: The tables each transaction of a split writes, in commit order.
EXPECTED: list[set[str]] = [
    {"idempotency_records"},  # the key claimed: a duplicate collides here
    {"nonces"},  # the nonce, allocated under the account's lock
    {"idempotency_records", "audit_pending"},  # the signed tx recorded and cited
    {"idempotency_records", "audit_pending", "audit_head", "audit_log"},  # answer and record
]
