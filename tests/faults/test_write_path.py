"""The write path under faults (AP-3, AP-4), on a real platform: anvil, the indexer and the
API as processes, the faults done to them for real.

- The indexer killed (SIGKILL) and then paused (SIGSTOP) during a burst of transfers: no 500;
  every transfer the chain executed is answered as done (``mirror_behind`` and the
  ``Mirror-Behind`` header while the mirror lags) or 503 ``transaction_pending`` that a
  same-key retry resolves; /health says the indexer is stale.
- A reorganisation (``anvil_reorg``) and a node gone back behind the mirror (``evm_revert``):
  same-key retries never replay a success the chain no longer holds (they run again,
  ``Idempotent-Rerun: reorganised``, or answer 409 ``write_reorganised``); /health reports
  ``node_behind_mirror``.
- A node gone back behind the mirror that mines a write in a block the mirror holds from the
  lost branch: the write waits for the mirror to follow the node's branch (its block's hash,
  not only its number), flagged ``Mirror-Behind`` while the indexer has not; a member onboarded
  so is never refused its first invoice for a role the mirror's lost branch lacks.
- A member's onboarding removed by a reorganisation and run again under its key: the API
  key its first answer handed out stays valid (the rerun neither revokes it nor makes another).
- A write's transaction dropped by the node while the base fee rose above its cap: the
  same-key retry signs the same call again at its nonce at current fees and answers the
  outcome (both hashes recorded and cited); the account's next write is not stuck.
- The node stopped: a prompt 503 ``chain_unavailable`` with ``Retry-After``, /health ``down``.

After each: every transaction hash an answer gave is cited by an audit record.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from typing import Any

import httpx

from bench.stack import Stack
from ledger.anvil import rpc_call
from tests.support.api import KYC_UNTIL, Api, Member, core_with_limit, issue, register

BURST = 8


def audit_citations(stack: Stack) -> set[str]:
    """Every transaction hash some audit record cites."""
    with sqlite3.connect(stack.data_dir / "tierflow.db") as db:
        rows = db.execute("SELECT tx_hashes FROM audit_log").fetchall()
    return {h.lower() for (hashes,) in rows for h in json.loads(hashes)}


def on_chain(stack: Stack, tx_hash: str) -> bool:
    receipt = rpc_call(stack.rpc_url, "eth_getTransactionReceipt", [tx_hash])
    return receipt is not None and int(receipt["status"], 16) == 1


async def parties(stack: Stack, api: Api, tag: str) -> tuple[Member, Member, int]:
    core = await core_with_limit(api, f"core-{tag}", 10**12)
    supplier = await api.member(f"sup-{tag}", ["supplier"])
    # Roles are read from the mirror, which these writes wait for only briefly here.
    await mirror_at_head(stack, api)
    payable = await issue(api, core, supplier, 1_000_000)
    return core, supplier, int(payable["root_claim_id"])


async def burst(supplier: Member, to: Member, root: int, keys: list[str]) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(
                supplier.post(f"/v1/claims/{root}/transfers", {"to": to.address, "amount": 10}, k)
                for k in keys
            )
        )
    )


async def settle_answers(
    supplier: Member, to: Member, root: int, keys: list[str], answers: list[httpx.Response]
) -> list[dict[str, Any]]:
    """Check the burst's answers (no 500, done or pending) and resolve the pending ones with
    same-key retries; the final answers."""
    final = []
    for key, r in zip(keys, answers, strict=True):
        assert r.status_code in (201, 503), r.text
        if r.status_code == 503:
            body = r.json()
            assert body["code"] in ("transaction_pending", "database_unavailable"), body
            assert "Retry-After" in r.headers
        deadline = time.monotonic() + 60
        while r.status_code != 201:
            assert time.monotonic() < deadline, r.text
            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            r = (await burst(supplier, to, root, [key]))[0]
            assert r.status_code in (201, 503, 409), r.text
            if r.status_code == 409:
                assert r.json()["code"] == "idempotency_in_progress"
        final.append(r.json())
    return final


def write_lock_held(stack: Stack) -> bool:
    """Does some connection hold SQLite's write lock (a paused indexer mid-batch)?"""
    db = sqlite3.connect(stack.data_dir / "tierflow.db", timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()
    return False


async def test_indexer_killed_and_paused_during_a_burst(stack: Stack, api: Api) -> None:
    _, supplier, root = await parties(stack, api, "idx")
    buyer = await api.member("buyer-idx", ["supplier"])
    for fault in (signal.SIGKILL, signal.SIGSTOP):
        indexer = stack.procs["indexer"]
        keys = [f"burst-{fault.name}-{n}-{time.monotonic_ns()}" for n in range(BURST)]
        sending = asyncio.create_task(burst(supplier, buyer, root, keys))
        await asyncio.sleep(0.2)
        indexer.popen.send_signal(fault)
        try:
            answers = await sending
            assert not [r for r in answers if r.status_code >= 500 and r.status_code != 503]
            # The mirror does not move any more: a write now is done on chain, flagged; or,
            # when the indexer was paused inside a batch and holds SQLite's write lock, a
            # prompt 503 database_unavailable with nothing sent (PostgreSQL has no such lock).
            late_key = f"late-{fault.name}-{time.monotonic_ns()}"
            late = (await burst(supplier, buyer, root, [late_key]))[0]
            if fault == signal.SIGSTOP and write_lock_held(stack):
                assert late.status_code == 503, late.text
                assert late.json()["code"] == "database_unavailable", late.text
                indexer.popen.send_signal(signal.SIGCONT)  # the rest needs the database
            else:
                assert late.status_code == 201, late.text
                assert late.json()["mirror_behind"] is True
                assert late.headers["Mirror-Behind"] == "true"
                await asyncio.sleep(4)  # past TIERFLOW_API_INDEXER_STALE_S
                health = (await api.operator.get("/health")).json()
                assert health["status"] == "degraded", health
                assert "indexer_stale" in health["reasons"], health
            final = await settle_answers(supplier, buyer, root, [*keys, late_key], [*answers, late])
            for done in final:
                assert on_chain(stack, done["tx_hash"]), done
            assert {d["tx_hash"].lower() for d in final} <= audit_citations(stack)
            # The same keys once more: replays of the same answers, still cited.
            again = await burst(supplier, buyer, root, keys[:2])
            assert [r.json()["tx_hash"] for r in again] == [d["tx_hash"] for d in final[:2]]
        finally:
            if fault == signal.SIGSTOP:
                indexer.popen.send_signal(signal.SIGCONT)
                indexer.stop()
            else:
                indexer.popen.wait(10)
            stack.start_indexer()
        await mirror_at_head(stack, api)


async def test_a_write_behind_a_held_write_lock_is_a_prompt_503(stack: Stack, api: Api) -> None:
    """SQLite: another process holds the write lock (an indexer paused inside a batch). A
    write answers 503 database_unavailable within TIERFLOW_API_DATABASE_LOCK_WAIT_S per
    statement, nothing sent; once the lock is free, the same key does the write once."""
    _, supplier, root = await parties(stack, api, "lock")
    buyer = await api.member("buyer-lock", ["supplier"])
    await mirror_at_head(stack, api)
    key = f"held-{time.monotonic_ns()}"
    nonce = rpc_call(stack.rpc_url, "eth_getTransactionCount", [supplier.address, "pending"])
    db = sqlite3.connect(stack.data_dir / "tierflow.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    try:
        r = (await burst(supplier, buyer, root, [key]))[0]
        took = time.monotonic() - started
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "database_unavailable", r.text
    assert "Retry-After" in r.headers
    assert took < 30, took  # a few lock waits of 2 s (FAULT_ENV), not 30 s each
    sent = rpc_call(stack.rpc_url, "eth_getTransactionCount", [supplier.address, "pending"])
    assert sent == nonce  # nothing was sent in the supplier's name
    done = (await burst(supplier, buyer, root, [key]))[0]
    assert done.status_code == 201, done.text
    assert done.headers.get("Idempotent-Replayed") != "true"
    assert on_chain(stack, done.json()["tx_hash"])
    again = (await burst(supplier, buyer, root, [key]))[0]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["tx_hash"] == done.json()["tx_hash"]


async def mirror_at_head(stack: Stack, api: Api) -> None:
    deadline = time.monotonic() + 60
    while True:
        health = (await api.operator.get("/health")).json()
        if health["status"] == "ok" and health["lag_blocks"] == 0:
            return
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.2)


async def test_reorganised_writes_are_not_replayed_as_done(stack: Stack, api: Api) -> None:
    _, supplier, root = await parties(stack, api, "reorg")
    buyer = await api.member("buyer-reorg", ["supplier"])
    await mirror_at_head(stack, api)
    snapshot = rpc_call(stack.rpc_url, "evm_snapshot")
    keys = [f"reorg-{n}-{time.monotonic_ns()}" for n in range(3)]
    first = [(await burst(supplier, buyer, root, [k]))[0] for k in keys]
    assert all(r.status_code == 201 for r in first), [r.text for r in first]
    await mirror_at_head(stack, api)
    # The node goes back behind the mirror (as a node restarted from an older state would).
    assert rpc_call(stack.rpc_url, "evm_revert", [snapshot]) is True
    health = (await api.operator.get("/health")).json()
    assert health["status"] != "ok", health
    assert "node_behind_mirror" in health["reasons"], health
    for key, r in zip(keys, first, strict=True):
        assert not on_chain(stack, r.json()["tx_hash"])
        again = (await burst(supplier, buyer, root, [key]))[0]
        assert again.status_code in (201, 409), again.text
        assert again.headers.get("Idempotent-Replayed") != "true", again.text
        if again.status_code == 201:
            assert again.headers["Idempotent-Rerun"] == "reorganised"
            assert on_chain(stack, again.json()["tx_hash"])
            assert again.json()["tx_hash"].lower() in audit_citations(stack)
        else:
            assert again.json()["code"] == "write_reorganised"
        # And now it is an ordinary replay.
        third = (await burst(supplier, buyer, root, [key]))[0]
        assert third.status_code == again.status_code
        assert third.headers.get("Idempotent-Replayed") == "true"
    await mirror_at_head(stack, api)

    # A reorganisation proper: the last blocks replaced by empty ones.
    key = f"anvil-reorg-{time.monotonic_ns()}"
    done = (await burst(supplier, buyer, root, [key]))[0]
    assert done.status_code == 201, done.text
    rpc_call(stack.rpc_url, "anvil_reorg", [2, []])
    kept = on_chain(stack, done.json()["tx_hash"])  # before the retry, which may re-send it
    retry = (await burst(supplier, buyer, root, [key]))[0]
    if kept:
        assert retry.headers.get("Idempotent-Replayed") == "true"  # the node kept it mined
    else:
        assert retry.headers.get("Idempotent-Replayed") != "true", retry.text
        # Run again: the same bytes sent again and mined (even behind nonces the
        # reorganisation emptied), or refused (409 write_reorganised); never 503 for ever.
        assert retry.status_code in (201, 409), retry.text
        if retry.status_code == 201:
            assert retry.headers["Idempotent-Rerun"] == "reorganised"
            assert on_chain(stack, retry.json()["tx_hash"])


async def test_a_write_reorganised_behind_another_is_not_left_pending(
    stack: Stack, api: Api
) -> None:
    """Two writes of one member in consecutive blocks, both removed by a reorganisation, and
    only the later one retried: its transaction, sent again, waits behind the earlier one's
    nonce, which nobody sends again. The retry fills that gap (no 503 for ever); the earlier
    write's retry then finds its nonce taken and runs again on a fresh one."""
    _, supplier, root = await parties(stack, api, "gap")
    buyer = await api.member("buyer-gap", ["supplier"])
    await mirror_at_head(stack, api)
    keys = [f"gap-{n}-{time.monotonic_ns()}" for n in range(2)]
    first = [(await burst(supplier, buyer, root, [k]))[0] for k in keys]
    assert all(r.status_code == 201 for r in first), [r.text for r in first]
    head = int(rpc_call(stack.rpc_url, "eth_blockNumber"), 16)
    depth = head - int(first[0].json()["block_number"]) + 1
    rpc_call(stack.rpc_url, "anvil_reorg", [depth, []])
    assert not any(on_chain(stack, r.json()["tx_hash"]) for r in first)
    for key in (keys[1], keys[0]):  # the later write first
        retry = (await burst(supplier, buyer, root, [key]))[0]
        assert retry.status_code in (201, 409), retry.text
        assert retry.headers.get("Idempotent-Replayed") != "true", retry.text
        if retry.status_code == 201:
            assert retry.headers["Idempotent-Rerun"] == "reorganised"
            assert on_chain(stack, retry.json()["tx_hash"])
            assert retry.json()["tx_hash"].lower() in audit_citations(stack)
        else:
            assert retry.json()["code"] == "write_reorganised", retry.text
    await mirror_at_head(stack, api)


async def test_a_member_onboarded_again_after_a_reorganisation_keeps_its_key(
    stack: Stack, api: Api
) -> None:
    """POST /v1/members answered 201 with the member's first API key; a reorganisation then
    removed the registration, and a retry under the same Idempotency-Key registers the same
    account again (``Idempotent-Rerun: reorganised``). The key of the first answer was handed
    out: the rerun keeps it (no key revoked, none made: its answer holds ``api_key`` null, as
    every replay does), so the member is not locked out."""
    await mirror_at_head(stack, api)
    key = f"member-reorg-{time.monotonic_ns()}"
    body = {"name": "member-reorg", "roles": ["supplier"], "kyc_expires_at": KYC_UNTIL}
    first = await api.operator.post("/v1/members", body, key)
    assert first.status_code == 201, first.text
    made = first.json()
    head = int(rpc_call(stack.rpc_url, "eth_blockNumber"), 16)
    rpc_call(stack.rpc_url, "anvil_reorg", [head - int(made["block_number"]) + 1, []])
    assert not on_chain(stack, made["tx_hash"])
    again = await api.operator.post("/v1/members", body, key)
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Rerun"] == "reorganised"
    assert on_chain(stack, again.json()["tx_hash"])
    assert again.json()["address"] == made["address"]
    assert again.json()["api_key"] is None
    assert again.json()["api_key_id"] == made["api_key_id"]
    await mirror_at_head(stack, api)
    async with stack.client(made["api_key"]) as member:
        r = await member.get(f"/v1/members/{made['address']}")
    assert r.status_code == 200, r.text
    assert "supplier" in r.json()["roles"], r.text


async def onboard_then_invoice(api: Api, name: str, buyer: Member) -> tuple[httpx.Response, int]:
    """Onboard a supplier and at once register its first invoice: the onboarding's answer and
    the invoice's status."""
    body = {"name": name, "roles": ["supplier"], "kyc_expires_at": KYC_UNTIL}
    onboarded = await api.operator.post("/v1/members", body)
    assert onboarded.status_code == 201, onboarded.text
    made = onboarded.json()
    seller = Member(name, made["address"], made["api_key"], api.stack.client(made["api_key"]))
    try:
        invoice = await register(api, seller, buyer, 1_000)
    finally:
        await seller.http.aclose()
    assert invoice.status_code in (201, 403), invoice.text
    return onboarded, invoice.status_code


def pause_indexer_idle(stack: Stack) -> None:
    """SIGSTOP the indexer between batches (not holding SQLite's write lock)."""
    indexer = stack.procs["indexer"]
    while True:
        indexer.popen.send_signal(signal.SIGSTOP)
        if not write_lock_held(stack):
            return
        indexer.popen.send_signal(signal.SIGCONT)
        time.sleep(0.05)


async def test_a_write_on_the_nodes_new_branch_waits_for_the_mirror_to_follow(
    stack: Stack, api: Api
) -> None:
    """The node restarted from an older state (``evm_revert``) while the mirror's checkpoint
    stands higher on the lost branch. A write mined now lands at a height the mirror holds from
    the lost branch: its wait must not take that block for its own. Reproduced twice: with the
    indexer running (its next look comes within a second; the member's first invoice right
    after the onboarding's answer must not be refused for want of a role, unless the answer
    said the mirror was behind), and with the indexer paused, so that the mirror stays on the
    lost branch for the whole wait (the onboarding answers ``Mirror-Behind``)."""
    buyer = await api.member("buyer-branch", ["core_enterprise"])
    for attempt, paused in enumerate((False, True)):
        # Its writes on the branch to be lost are its own (the operator's nonces stay valid).
        lost = await api.member(f"lost-branch-{attempt}", ["supplier"])
        await mirror_at_head(stack, api)
        snapshot = rpc_call(stack.rpc_url, "evm_snapshot")
        for _ in range(2):
            r = await register(api, lost, buyer, 1_000)
            assert r.status_code == 201, r.text
        for _ in range(8):  # the mirror well above the writes to come
            rpc_call(stack.rpc_url, "evm_mine")
        await mirror_at_head(stack, api)
        if paused:
            pause_indexer_idle(stack)
        try:
            assert rpc_call(stack.rpc_url, "evm_revert", [snapshot]) is True
            onboarded, invoice = await onboard_then_invoice(api, f"new-branch-{attempt}", buyer)
            behind = onboarded.headers.get("Mirror-Behind") == "true"
            if paused:
                assert behind, onboarded.headers
                assert onboarded.json()["mirror_behind"] is True
            elif not behind:
                assert invoice == 201, "a write answered as mirrored, reads from lost blocks"
        finally:
            if paused:
                stack.procs["indexer"].popen.send_signal(signal.SIGCONT)
        await mirror_at_head(stack, api)


async def test_a_dropped_write_is_signed_again_at_current_fees(stack: Stack, api: Api) -> None:
    """The node drops a write's recorded transaction and the base fee then rises above the fee
    it was signed with: re-sending its bytes is refused ("max fee per gas less than block base
    fee"). A same-key retry signs the same call again at the same nonce with current fees,
    records it (both hashes cited), and answers the real outcome; the operator's next write
    is not stuck behind the nonce. Never a 500 on the way."""
    member = await api.member("refee", ["supplier"])
    await mirror_at_head(stack, api)
    key = f"refee-{time.monotonic_ns()}"
    path = f"/v1/members/{member.address}/suspend"
    body = {"reason": "fee fault"}
    rpc_call(stack.rpc_url, "evm_setAutomine", [False])
    try:
        first = await api.operator.post(path, body, key)
        assert first.status_code == 503, first.text
        assert first.json()["code"] == "transaction_pending", first.text
        rpc_call(stack.rpc_url, "anvil_dropAllTransactions")
        rpc_call(stack.rpc_url, "anvil_setNextBlockBaseFeePerGas", ["0xe8d4a51000"])
    finally:
        rpc_call(stack.rpc_url, "evm_setAutomine", [True])
    rpc_call(stack.rpc_url, "evm_mine")
    try:
        retry = await api.operator.post(path, body, key)
        assert retry.status_code == 200, retry.text
        mined = retry.json()["tx_hash"]
        assert on_chain(stack, mined)
        cited = audit_citations(stack)
        assert mined.lower() in cited
        with sqlite3.connect(stack.data_dir / "tierflow.db") as db:
            (recorded,) = db.execute(
                "SELECT transactions FROM idempotency_records WHERE key = ?", (key,)
            ).fetchone()
        (step,) = json.loads(recorded)
        assert step["hash"].lower() == mined.lower()
        assert [t["hash"] for t in step["replaced"]], step  # the dropped one is kept
        assert all(t["hash"].lower() in cited for t in step["replaced"])
        again = await api.operator.post(path, body, key)
        assert again.status_code == 200
        assert again.headers.get("Idempotent-Replayed") == "true"
        later = await api.operator.post(
            "/v1/members",
            {"name": "after-refee", "roles": ["supplier"], "kyc_expires_at": KYC_UNTIL},
        )
        assert later.status_code == 201, later.text
    finally:
        rpc_call(stack.rpc_url, "anvil_setNextBlockBaseFeePerGas", ["0x3b9aca00"])
        rpc_call(stack.rpc_url, "evm_mine")
    await mirror_at_head(stack, api)


async def test_node_stopped_is_a_prompt_503(stack: Stack, api: Api) -> None:
    member = await api.member("node-down", ["supplier"])
    stack.node.stop()
    started = time.monotonic()
    r = await api.operator.post(f"/v1/members/{member.address}/suspend", {"reason": "x"})
    assert r.status_code == 503, r.text
    assert r.json()["code"] in ("chain_unavailable", "transaction_pending"), r.text
    assert "Retry-After" in r.headers
    assert stack.rpc_url not in r.text
    health = await api.operator.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "down"
    assert "node_unreachable" in health.json()["reasons"]
    assert time.monotonic() - started < 15
