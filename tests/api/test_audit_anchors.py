"""The audit log's head anchored on chain (SPEC AP-3), on a real platform (anvil, indexer, API)
that anchors every half second:

- the head gets anchored once requests change it (by the anchoring account, not the
  operator), and not again while nothing changes;
- untouched, ``/v1/audit/log/verify`` and ``tierflow audit-verify`` pass and every anchor
  matches;
- a record rewritten (an accepted 201 turned into a 403) with every later hash and the head
  recomputed passes the hash chain walk but fails against the anchors, in the API and in
  ``tierflow audit-verify`` (exit 1);
- the last records deleted, below the last anchor, with the head fixed: fails the same way;
- the lease: of two workers one anchors, the other takes over once the lease runs out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from backend import audit_anchors
from backend.audit_log import GENESIS, chain_hash
from backend.models import AuditHead, AuditRecord, migrate
from bench.stack import Stack
from db.engine import create_engine
from db.types import table_of
from ledger.anvil import ANVIL_ANCHOR_KEY, rpc_call
from tests.support.api import Api, Member

LOG = table_of(AuditRecord)
HEAD = table_of(AuditHead)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    env = {"TIERFLOW_API_ANCHOR_INTERVAL_S": "0.5", "TIERFLOW_API_MIRROR_WAIT_S": "120"}
    async with Stack.start(tmp_path_factory.mktemp("anchors"), extra_env=env) as running:
        yield running


async def verified(auditor: Member) -> dict[str, Any]:
    r = await auditor.get("/v1/audit/log/verify")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def head_seq(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(HEAD.c.seq))).scalar_one())


async def anchored_to_head(auditor: Member, db: AsyncEngine) -> dict[str, Any]:
    """Wait until the last anchor is the log's head."""
    deadline = time.monotonic() + 90
    while True:
        result = await verified(auditor)
        if result["anchored_seq"] is not None and result["anchored_seq"] == await head_seq(db):
            return result
        assert time.monotonic() < deadline, result
        await asyncio.sleep(0.3)


async def audit_verify_cli(stack: Stack) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv/bin/python"),
        "-m",
        "tierflow.cli",
        "audit-verify",
        cwd=ROOT,
        env={**stack.env, "COLUMNS": "200", "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


async def rows(db: AsyncEngine) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(LOG).order_by(LOG.c.seq))).mappings()]


async def restore(db: AsyncEngine, original: list[dict[str, Any]]) -> None:
    async with db.begin() as conn:
        await conn.execute(delete(LOG))
        for row in original:
            await conn.execute(LOG.insert().values(**row))
        last = original[-1]
        await conn.execute(update(HEAD).values(seq=last["seq"], hash=last["hash"]))


@pytest.fixture(scope="module")
async def members(api: Api) -> tuple[Member, Member]:
    auditor = await api.member("anchor-auditor", ["auditor"])
    supplier = await api.member("anchor-supplier", ["supplier"])
    return auditor, supplier


async def test_the_head_is_anchored_and_only_when_it_changed(
    stack: Stack, members: tuple[Member, Member], db: AsyncEngine
) -> None:
    auditor, _ = members
    result = await anchored_to_head(auditor, db)
    assert result["ok"] is True, result
    assert result["anchors_checked"] >= 1
    assert result["anchors_matched"] == result["anchors_checked"]
    assert result["anchor_mismatches"] == []
    assert result["anchor_tx_hash"] is not None
    # Sent by the anchoring account of its own (anvil's dev account 9), not the operator.
    tx = rpc_call(stack.rpc_url, "eth_getTransactionByHash", [result["anchor_tx_hash"]])
    assert tx["from"].lower() == Account.from_key(ANVIL_ANCHOR_KEY).address.lower()
    assert result["anchored_at"] is not None
    # Nothing changes (reads are not audited): no new anchor however many rounds pass.
    await asyncio.sleep(3)
    again = await verified(auditor)
    assert again["anchors_checked"] == result["anchors_checked"]


async def test_cli_passes_on_an_untouched_log(
    stack: Stack, members: tuple[Member, Member], db: AsyncEngine
) -> None:
    auditor, _ = members
    await anchored_to_head(auditor, db)
    code, out = await audit_verify_cli(stack)
    assert code == 0, out
    assert "audit log intact" in out


async def test_a_rewritten_record_with_hashes_recomputed_fails(
    stack: Stack, members: tuple[Member, Member], db: AsyncEngine
) -> None:
    auditor, supplier = members
    # More records, one of them an accepted write, then anchored.
    r = await supplier.post(f"/v1/members/{supplier.address}/api-keys", {"label": "anchored"})
    assert r.status_code == 201, r.text
    result = await anchored_to_head(auditor, db)
    original = await rows(db)
    accepted = [row for row in original if row["status"] == 201]
    target = accepted[-1]["seq"]
    assert target <= result["anchored_seq"]
    # Turn the accepted request into a refused one and recompute every hash after it.
    prev = GENESIS if target == 1 else original[target - 2]["hash"]
    try:
        async with db.begin() as conn:
            for row in original[target - 1 :]:
                record = dict(row)
                if record["seq"] == target:
                    record.update(status=403, code="forbidden")
                record["prev_hash"] = prev
                record["hash"] = chain_hash(prev, record)
                prev = record["hash"]
                await conn.execute(
                    update(LOG)
                    .where(LOG.c.seq == record["seq"])
                    .values(
                        status=record["status"],
                        code=record["code"],
                        prev_hash=record["prev_hash"],
                        hash=record["hash"],
                    )
                )
            await conn.execute(update(HEAD).values(hash=prev))
        broken = await verified(auditor)
        assert broken["ok"] is False, broken
        assert "rewritten" in broken["reason"], broken
        assert broken["first_bad_seq"] >= target
        assert broken["anchors_matched"] < broken["anchors_checked"]
        assert {m["status"] for m in broken["anchor_mismatches"]} == {"rewritten"}
        # The hash chain alone does not see it: every record and the head fit.
        assert broken["records"] == len(original)
        code, out = await audit_verify_cli(stack)
        assert code == 1, out
        assert "rewritten" in out
    finally:
        await restore(db, original)
    assert (await verified(auditor))["ok"] is True


async def test_a_truncated_log_with_the_head_fixed_fails(
    stack: Stack, members: tuple[Member, Member], db: AsyncEngine
) -> None:
    auditor, supplier = members
    for n in range(3):
        r = await supplier.post(f"/v1/members/{supplier.address}/api-keys", {"label": f"t{n}"})
        assert r.status_code == 201, r.text
    result = await anchored_to_head(auditor, db)
    original = await rows(db)
    keep = len(original) - 3
    assert keep < result["anchored_seq"]
    try:
        async with db.begin() as conn:
            await conn.execute(delete(LOG).where(LOG.c.seq > keep))
            await conn.execute(update(HEAD).values(seq=keep, hash=original[keep - 1]["hash"]))
        broken = await verified(auditor)
        assert broken["ok"] is False, broken
        assert broken["records"] == keep
        assert broken["first_bad_seq"] == keep + 1
        assert "removed" in broken["reason"], broken
        assert "missing" in {m["status"] for m in broken["anchor_mismatches"]}
        code, out = await audit_verify_cli(stack)
        assert code == 1, out
    finally:
        await restore(db, original)
    assert (await verified(auditor))["ok"] is True


async def test_one_worker_holds_the_anchoring_lease(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lease.db'}")
    try:
        await migrate(engine)
        name = audit_anchors.LEASE_NAME
        assert await audit_anchors.take_lease(engine, name, "a", 60_000)
        assert not await audit_anchors.take_lease(engine, name, "b", 60_000)
        assert await audit_anchors.take_lease(engine, name, "a", 60_000)  # renewed
        assert await audit_anchors.take_lease(engine, name, "a", -1)  # runs out at once
        assert await audit_anchors.take_lease(engine, name, "b", 60_000)  # taken over
        assert not await audit_anchors.take_lease(engine, name, "a", 60_000)
    finally:
        await engine.dispose()
