"""Webhooks under faults: a reorganisation after delivery (retraction follows), and a burst
delivered while the indexer and one of two dispatchers are SIGKILLed and restarted (nothing
lost, nothing invented, no delivery attempted by two dispatchers at once).

Its own platform (module): a reorganisation leaves the reorganised member's nonce behind.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from typing import Any

from bench.stack import Stack
from client.webhooks import verify_webhook
from ledger.anvil import rpc_call
from tests.support.api import Api, Member, core_with_limit, issue, transfer
from tests.support.receiver import Receiver
from tests.support.webhooks import deliveries, endpoint_in, register, settled


def _outbox(stack: Stack, event: str) -> list[tuple[str, int, str, int | None]]:
    """``(event_id, reverted, kind, reverts)`` of the mirror's outbox entries of ``event``."""
    db = sqlite3.connect(stack.data_dir / "tierflow.db")
    try:
        return list(
            db.execute(
                "SELECT event_id, reverted, kind, reverts FROM outbox WHERE event IN (?, ?) "
                "ORDER BY seq",
                (event, event + "Reverted"),
            )
        )
    finally:
        db.close()


async def _splits(a: Member, root: int, b: Member, amounts: list[int]) -> None:
    for amount in amounts:
        r = await transfer(a, root, b, amount)
        assert r.status_code == 201, r.text


async def test_burst_survives_killed_indexer_and_dispatcher(
    stack: Stack, api: Api, receiver: Receiver
) -> None:
    core = await core_with_limit(api, "burst-core", 10**12)
    a = await api.member("burst-a", ["supplier"])
    b = await api.member("burst-b", ["supplier"])
    hook = await register(a, receiver.url("/burst"), ["ClaimSplit"])
    stack.start_webhooks("webhooks-2")  # two dispatchers share the work
    root = int((await issue(api, core, a, 10_000_000))["root_claim_id"])
    sending = asyncio.create_task(_splits(a, root, b, list(range(1, 41))))
    await receiver.wait_for("/burst", 5)
    stack.procs["webhooks"].stop(signal.SIGKILL)
    stack.procs["indexer"].stop(signal.SIGKILL)
    await asyncio.sleep(0.5)
    stack.start_indexer()
    await sending
    stack.start_webhooks()
    await receiver.wait_until(
        "/burst", lambda got: len({g.event["id"] for g in got}) >= 40, within_s=60
    )
    items = await settled(a, hook["id"])
    got = receiver.at("/burst")
    events = [verify_webhook(hook["secret"], g.headers["Tierflow-Signature"], g.body) for g in got]
    mirrored = [e for e in _outbox(stack, "ClaimSplit") if e[2] == "event" and not e[1]]
    # Nothing lost, nothing invented: exactly the mirrored splits (a retry of one the killed
    # dispatcher had sent may repeat it: at least once), in chain order.
    assert {e["id"] for e in events} == {m[0] for m in mirrored}
    assert len(mirrored) == 40
    values = [e["data"]["event"]["args"]["value"] for e in events]
    assert sorted(set(values)) == list(range(1, 41))
    assert {d["status"] for d in items} == {"succeeded"}
    # No delivery was attempted by two dispatchers at once (leases): per delivery, the
    # attempts' windows do not overlap.
    assert sum(d["attempts"] for d in items) == sum(len(d["attempt_log"]) for d in items)
    assert len({d["event_id"] for d in items}) == len(items) == 40


async def reorganise_away(rpc_url: str, tx_hash: str, block: int) -> None:
    """Replace ``block`` and every block after it by empty ones, until ``tx_hash`` is no longer
    on the chain (a block mined between reading the head and the reorganisation: again)."""
    for _ in range(3):
        head = int(await asyncio.to_thread(rpc_call, rpc_url, "eth_blockNumber"), 16)
        await asyncio.to_thread(rpc_call, rpc_url, "anvil_reorg", [head - block + 1, []])
        if (
            await asyncio.to_thread(rpc_call, rpc_url, "eth_getTransactionReceipt", [tx_hash])
            is None
        ):
            return
    raise AssertionError(f"{tx_hash} still mined after three reorganisations")


async def test_reorganisation_after_delivery_is_retracted(
    stack: Stack, api: Api, receiver: Receiver
) -> None:
    core = await core_with_limit(api, "reorg-core", 10**12)
    a = await api.member("reorg-a", ["supplier"])
    b = await api.member("reorg-b", ["supplier"])
    hook_a = await register(a, receiver.url("/reorg-a"), ["ClaimSplit"])
    hook_b = await register(b, receiver.url("/reorg-b"))
    # The obligor's endpoint is down and marked failing first: what is queued for it is never
    # attempted, so the reorganisation cancels its split and sends it no retraction.
    hook_core = await register(core, receiver.url("/reorg-core"), ["ClaimSplit"])
    receiver.script("/reorg-core", [500] * 100)
    assert (await core.http.post(f"/v1/webhooks/{hook_core['id']}/ping")).status_code == 202
    await endpoint_in(core, hook_core["id"], "failing")
    root = int((await issue(api, core, a, 1_000_000))["root_claim_id"])
    r = await transfer(a, root, b, 777)
    assert r.status_code == 201, r.text
    [split] = await receiver.wait_for("/reorg-a", 1)
    original: dict[str, Any] = split.event
    await receiver.wait_for("/reorg-b", 1)
    await settled(b, hook_b["id"])
    # The block holding the split, and any mined after it (the API anchors the audit log on
    # chain every 30 s: a block of its own may follow the split), replaced by empty ones.
    await reorganise_away(stack.rpc_url, r.json()["tx_hash"], int(r.json()["block_number"]))
    got = await receiver.wait_for("/reorg-a", 2, within_s=60)
    retraction = verify_webhook(hook_a["secret"], got[1].headers["Tierflow-Signature"], got[1].body)
    assert retraction["type"] == "ClaimSplitReverted"
    assert retraction["data"]["reverted_event_id"] == original["id"]
    assert retraction["data"]["event"] == original["data"]["event"]
    assert retraction["id"] != original["id"]
    # B, which received the split too, is told as well, after it.
    await receiver.wait_until(
        "/reorg-b",
        lambda got: "ClaimSplitReverted" in [g.event["type"] for g in got],
        within_s=60,
    )
    types_b = [x.event["type"] for x in receiver.at("/reorg-b")]
    assert types_b.index("ClaimSplit") < types_b.index("ClaimSplitReverted")
    # The mirror's outbox: the split marked reverted, its retraction pointing back at it.
    entries = [e for e in _outbox(stack, "ClaimSplit") if original["id"] in (e[0],)]
    assert entries == [(original["id"], 1, "event", None)]
    core_split = await deliveries(core, hook_core["id"], status="cancelled")
    assert [(d["event_id"], d["attempts"]) for d in core_split] == [(original["id"], 0)]
    assert "reorganisation" in core_split[0]["last_error"]
    queued = {d["event_type"] for d in await deliveries(core, hook_core["id"])}
    assert queued == {"ping", "ClaimSplit"}  # no ClaimSplitReverted for it
    assert receiver.at("/reorg-core") == []
    assert (await a.http.get(f"/v1/claims/{r.json()['claim_id']}")).status_code == 404
