"""Database transactions per write: ``POST /v1/claims/{id}/transfers`` by a hosted member and
by a ``self`` member (the 202 intent, then the signature that relays it).

The API runs as ``tests.support.commit_counter`` (``tierflow serve`` that logs every commit
with the tables it wrote); splits alone on the platform are counted. A hosted keyed write
commits twice (four before, six before that): before the broadcast, the Idempotency-Key's
record inserted (the key claimed: a duplicate collides here) with the journal's record of the
signed transaction, its nonce and its audit citation (``audit_pending``), all durable before
the bytes leave; after it, the answer together with the request's audit record. Why it cannot
be fewer: docs/performance.md, change 34. A ``self`` member's split commits once for its 202
and three times for its signature (two and four before, nine before that, thirteen before
that).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from bench.stack import Stack
from tests.support.api import (
    KYC_UNTIL,
    TEST_ENV,
    Api,
    Member,
    core_with_limit,
    issue,
    make_api,
    transfer,
)
from tests.support.commit_counter import read
from tests.support.intents import issue_to_self, sign


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
        # At most two transactions write (four before change 34, six before change 16).
        assert len(commits) <= 2, commits
        assert [set(c["writes"]) for c in commits] == EXPECTED, commits


#: The tables each transaction of a split writes, in commit order.
EXPECTED: list[set[str]] = [
    # Before the broadcast: the key claimed (a duplicate's insert collides here) with the
    # signed transaction recorded, its nonce allocated and its citation kept.
    {"nonces", "idempotency_records", "audit_pending"},
    {"idempotency_records", "audit_pending", "audit_head", "audit_log"},  # answer and record
]


async def test_a_self_members_split_commits_its_bookkeeping_in_few_transactions(
    counted: tuple[Stack, Path], api: Api
) -> None:
    """A ``self`` member's split: the 202 (the intent) in one transaction, the signature (the
    relay) in three."""
    stack, log = counted
    account = Account.create()
    r = await api.operator.post(
        "/v1/members",
        {"name": "self s1", "roles": ["supplier"], "kyc_expires_at": KYC_UNTIL,
         "address": account.address},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    member = Member(
        "self s1", account.address, r.json()["api_key"], stack.client(r.json()["api_key"])
    )
    api.members[member.name] = member
    core = await core_with_limit(api, "self-core", 10_000_000)
    s2 = await api.member("s2", ["supplier"])
    root = await issue_to_self(api, core, member, account, 10_000)

    def ours() -> list[dict[str, Any]]:
        return [c for c in read(log) if not c["task"].startswith("tierflow-")]

    for _ in range(2):
        before = len(ours())
        answer = await transfer(member, root, s2, 10)
        assert answer.status_code == 202, answer.text
        asked = ours()[before:]
        intent = answer.json()["intent"]
        before = len(ours())
        relayed = await member.post(
            f"/v1/intents/{intent['id']}/signature", {"signature": sign(account, intent)}
        )
        assert relayed.status_code == 201, relayed.text
        assert [set(c["writes"]) for c in asked] == ASKED, asked
        assert [set(c["writes"]) for c in ours()[before:]] == RELAYED, ours()[before:]


#: The 202: the key claimed with the intent, the write's memo of it and the 202 answer with
#: its audit record, in one (the record's ``DELETE … RETURNING`` of the request's
#: ``audit_pending`` row runs whether or not there is one: the 202 broadcast nothing).
ASKED: list[set[str]] = [
    {"intents", "idempotency_records", "audit_pending", "audit_head", "audit_log"},
]
#: The signature: kept with the intent in the transaction that takes the key up again; the
#: relay recorded and cited with the relayer's nonce before it leaves; the intent's outcome
#: with the answer and its record.
RELAYED: list[set[str]] = [
    {"intents", "idempotency_records"},
    {"nonces", "idempotency_records", "audit_pending"},
    {"intents", "idempotency_records", "audit_pending", "audit_head", "audit_log"},
]
