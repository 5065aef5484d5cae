"""Twenty requests of one split under one Idempotency-Key at once, and what they must answer:
shared by tests/api/test_idempotency.py and the stress run of
tests/api/test_split_duplicates_stress.py."""

from __future__ import annotations

import asyncio

from bench.stack import Stack
from ledger.anvil import rpc_call
from tests.support.api import Api, core_with_limit, issue


def sent_by(stack: Stack, address: str) -> int:
    return int(rpc_call(stack.rpc_url, "eth_getTransactionCount", [address, "latest"]), 16)


async def concurrent_split_duplicates(stack: Stack, api: Api, tag: str) -> None:
    """Twenty requests of one split under one key at once: one transaction from the holder,
    one answer (the first's, replayed) or 409 ``idempotency_in_progress``."""
    core = await core_with_limit(api, f"{tag}-core", 10_000_000)
    holder = await api.member(f"{tag}-holder", ["supplier"])
    to = await api.member(f"{tag}-to", ["supplier"])
    root = (await issue(api, core, holder, 10_000))["root_claim_id"]
    warm = await holder.post(f"/v1/claims/{root}/transfers", {"to": to.address, "amount": 1})
    assert warm.status_code == 201, warm.text
    key = f"idem-split-{tag}-" + Stack.idem()["Idempotency-Key"]
    body = {"to": to.address, "amount": 7}
    sent = sent_by(stack, holder.address)
    clients = [stack.client(holder.key) for _ in range(20)]
    try:
        answers = await asyncio.gather(
            *(
                c.post(f"/v1/claims/{root}/transfers", json=body, headers={"Idempotency-Key": key})
                for c in clients
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    created = [r for r in answers if r.status_code == 201]
    busy = [r for r in answers if r.status_code == 409]
    assert len(created) + len(busy) == 20, [(r.status_code, r.text) for r in answers]
    assert created, "no request completed"
    assert len({r.content for r in created}) == 1
    assert len([r for r in created if "idempotent-replayed" not in r.headers]) <= 1
    assert all(r.json()["code"] == "idempotency_in_progress" for r in busy)
    assert sent_by(stack, holder.address) - sent == 1
    later = await holder.post(f"/v1/claims/{root}/transfers", body, key=key)
    assert later.status_code == 201
    assert later.content == created[0].content
    assert later.headers["idempotent-replayed"] == "true"
    other = await holder.post(f"/v1/claims/{root}/transfers", {**body, "amount": 8}, key=key)
    assert other.status_code == 422, other.text
    assert other.json()["code"] == "idempotency_key_reused"
    assert sent_by(stack, holder.address) - sent == 1
