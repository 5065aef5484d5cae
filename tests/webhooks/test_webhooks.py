"""Webhooks end to end: a real receiver, real anvil, indexer, API and dispatcher processes.

Signatures verify with the client's ``verify_webhook``; deliveries per object arrive in chain
order; a member receives only what it may read; failures are retried, then the endpoint is
marked failing with its reason, and a redelivery brings it back; a rotated secret overlaps.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from bench.stack import Stack
from client import TierflowClient
from client.webhooks import WebhookVerificationError, verify_webhook
from tests.support.api import Api, core_with_limit, issue, transfer
from tests.support.receiver import Receiver
from tests.support.webhooks import deliveries, register, settled


async def test_signed_deliveries_in_chain_order_per_object(api: Api, receiver: Receiver) -> None:
    core = await core_with_limit(api, "wh-core", 10**12)
    a = await api.member("wh-a", ["supplier"])
    b = await api.member("wh-b", ["supplier"])
    hook_a = await register(a, receiver.url("/a"))
    payable = await issue(api, core, a, 1_000_000)
    root = int(payable["root_claim_id"])
    for amount in (10, 20, 30):
        r = await transfer(a, root, b, amount)
        assert r.status_code == 201, r.text
    # Invoice registered, confirmed and used, payable issued, three splits: seven events. (It
    # waited for six, so on a slow machine the third split could still be on its way.)
    got = await receiver.wait_for("/a", 7)
    items = await settled(a, hook_a["id"])
    got = receiver.at("/a")
    assert {d["status"] for d in items} == {"succeeded"}
    assert len(got) == len(items)
    events = []
    for delivery in got:
        event = verify_webhook(
            hook_a["secret"], delivery.headers["Tierflow-Signature"], delivery.body
        )
        assert set(event) == {"id", "type", "created_at", "data"}
        assert delivery.headers["Tierflow-Event-Id"] == event["id"]
        events.append(event)
    assert len({e["id"] for e in events}) == len(events)  # none twice
    types = [e["type"] for e in events]
    assert types.count("ClaimSplit") == 3, types
    assert "PayableIssued" in types
    assert "InvoiceRegistered" in types
    # Chain order per object, in the order received.
    by_object: dict[str, list[tuple[int, int]]] = {}
    for e in events:
        o = e["data"]["object"]
        key = f"{o['type']}:{o.get('id') or o.get('address')}" if o else e["type"]
        place = (e["data"]["event"]["block_number"], e["data"]["event"]["log_index"])
        by_object.setdefault(key, []).append(place)
    for key, places in by_object.items():
        assert places == sorted(places), key
    splits = [e for e in events if e["type"] == "ClaimSplit"]
    assert [s["data"]["event"]["args"]["value"] for s in splits] == [10, 20, 30]
    assert splits[0]["data"]["object"]["type"] == "claim"
    # A tampered body or another secret does not verify.
    first = got[0]
    tampered = first.body.replace(b'"type"', b'"typo"')
    for secret, body in ((hook_a["secret"], tampered), ("whsec_other", first.body)):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(secret, first.headers["Tierflow-Signature"], body)


async def test_a_member_receives_only_what_it_may_read(api: Api, receiver: Receiver) -> None:
    core = await core_with_limit(api, "vis-core", 10**12)
    a = await api.member("vis-a", ["supplier"])
    b = await api.member("vis-b", ["supplier"])
    outsider = await api.member("vis-outsider", ["supplier"])
    hook_b = await register(b, receiver.url("/vis-b"))
    hook_o = await register(outsider, receiver.url("/vis-outsider"))
    payable = await issue(api, core, a, 500_000)
    r = await transfer(a, int(payable["root_claim_id"]), b, 1_000)
    assert r.status_code == 201, r.text
    child = r.json()["claim_id"]
    await receiver.wait_for("/vis-b", 1)
    await settled(b, hook_b["id"])
    seen_b = [x.event for x in receiver.at("/vis-b")]
    # B sees the split that gave it a piece, never A's invoice or the payable's issue to A.
    assert [e["type"] for e in seen_b if e["type"] == "ClaimSplit"] == ["ClaimSplit"]
    assert not {"InvoiceRegistered", "InvoiceConfirmed"} & {e["type"] for e in seen_b}
    for e in seen_b:
        o = e["data"]["object"]
        if o and o["type"] == "claim":
            r = await b.http.get(f"/v1/claims/{o['id']}")
            assert r.status_code == 200, (e, r.text)
    assert any(e["data"]["object"]["id"] == int(child) for e in seen_b if e["data"]["object"])
    # The outsider got nothing at all (its endpoint is idle, not failing).
    await asyncio.sleep(1.0)
    assert receiver.at("/vis-outsider") == []
    assert await deliveries(outsider, hook_o["id"]) == []
    # And no one reads another member's endpoint.
    r = await outsider.http.get(f"/v1/webhooks/{hook_b['id']}/deliveries")
    assert r.status_code == 404
    assert r.json()["code"] == "webhook_not_found"


async def test_retries_after_500s_and_timeouts_then_succeeds(api: Api, receiver: Receiver) -> None:
    m = await api.member("retry-m", ["supplier"])
    hook = await register(m, receiver.url("/flaky"))
    receiver.script("/flaky", [500, 503, 1.5])  # two errors, then slower than the 1 s timeout
    r = await m.http.post(f"/v1/webhooks/{hook['id']}/ping")
    assert r.status_code == 202, r.text
    [got] = await receiver.wait_for("/flaky", 1)
    assert verify_webhook(hook["secret"], got.headers["Tierflow-Signature"], got.body)["type"] == (
        "ping"
    )
    [delivery] = await settled(m, hook["id"])
    assert delivery["status"] == "succeeded"
    log = delivery["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 503, None, 200], log
    assert "timed out" in log[2]["error"]
    assert [a["ok"] for a in log] == [False, False, False, True]
    assert delivery["attempts"] == 4


async def test_gives_up_marks_failing_and_redelivery_revives(api: Api, receiver: Receiver) -> None:
    m = await api.member("failing-m", ["supplier"])
    hook = await register(m, receiver.url("/down"))
    receiver.script("/down", [500] * 1000)
    r = await m.http.post(f"/v1/webhooks/{hook['id']}/ping")
    assert r.status_code == 202, r.text
    async with asyncio.timeout(30):
        while True:
            r = await m.http.get(f"/v1/webhooks/{hook['id']}")
            assert r.status_code == 200, r.text
            if r.json()["status"] == "failing":
                break
            await asyncio.sleep(0.2)
    endpoint = r.json()
    assert "HTTP 500" in endpoint["failing_reason"]
    assert endpoint["failing_since"]
    [delivery] = await deliveries(m, hook["id"])
    assert delivery["status"] == "failed"
    assert delivery["attempts"] >= 2
    # The receiver is back: a redelivery sends the very same event and revives the endpoint.
    receiver.script("/down", [])
    receiver._scripts["/down"].clear()
    r = await m.http.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert r.status_code == 202, r.text
    [got] = await receiver.wait_for("/down", 1)
    assert got.event["id"] == delivery["event_id"]
    r = await m.http.get(f"/v1/webhooks/{hook['id']}")
    assert r.json()["status"] == "active"
    assert r.json()["failing_reason"] is None


async def test_rotated_secret_overlaps(api: Api, receiver: Receiver) -> None:
    m = await api.member("rotate-m", ["supplier"])
    hook = await register(m, receiver.url("/rotate"))
    r = await m.http.post(f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_s": 600})
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["secret"] != hook["secret"]
    assert rotated["previous_secret_expires_at"]
    assert (await m.http.post(f"/v1/webhooks/{hook['id']}/ping")).status_code == 202
    [got] = await receiver.wait_for("/rotate", 1)
    header = got.headers["Tierflow-Signature"]
    assert header.count("v1=") == 2
    verify_webhook(hook["secret"], header, got.body)  # a receiver not yet switched
    verify_webhook(rotated["secret"], header, got.body)
    # Without overlap only the new secret signs.
    r = await m.http.post(f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_s": 0})
    newest = r.json()["secret"]
    assert (await m.http.post(f"/v1/webhooks/{hook['id']}/ping")).status_code == 202
    got = (await receiver.wait_for("/rotate", 2))[1]
    assert got.headers["Tierflow-Signature"].count("v1=") == 1
    verify_webhook(newest, got.headers["Tierflow-Signature"], got.body)


async def test_list_delete_and_bad_input(api: Api, receiver: Receiver) -> None:
    m = await api.member("crud-m", ["supplier"])
    hook = await register(m, receiver.url("/crud"), ["ClaimSplit", "PayableIssued"])
    assert hook["event_types"] == ["ClaimSplit", "PayableIssued"]
    r = await m.http.get("/v1/webhooks")
    assert [w["id"] for w in r.json()["items"]] == [hook["id"]]
    assert "secret" not in r.json()["items"][0]
    for body, code in (
        ({"url": "ftp://127.0.0.1/x", "event_types": ["*"]}, "webhook_url_invalid"),
        ({"url": "http://user:pw@127.0.0.1/x", "event_types": ["*"]}, "webhook_url_invalid"),
        (
            {"url": "http://no-such-host.invalid/x", "event_types": ["*"]},
            "webhook_url_unresolvable",
        ),
        ({"url": receiver.url("/x"), "event_types": ["*", "ClaimSplit"]}, "invalid_request"),
        ({"url": receiver.url("/x"), "event_types": ["not an event"]}, "invalid_request"),
        ({"url": receiver.url("/x"), "event_types": ["*"], "owner": m.address}, "invalid_request"),
    ):
        r = await m.http.post("/v1/webhooks", json=body)
        assert r.status_code in (400, 422), (body, r.text)
        assert r.json()["code"] == code, (body, r.text)
    r = await m.http.delete(f"/v1/webhooks/{hook['id']}")
    assert r.status_code == 200
    assert r.json()["status"] == "deleted"
    assert (await m.http.get("/v1/webhooks")).json()["items"] == []
    assert (await m.http.delete(f"/v1/webhooks/{hook['id']}")).status_code == 404


async def test_ssrf_refused_when_loopback_is_not_allowed(stack: Stack, api: Api) -> None:
    """A second API worker with loopback targets disallowed (the default off the local
    chain) refuses every private, loopback and link-local target."""
    from ledger.anvil import free_port

    port = free_port()
    proc = stack.spawn(
        "api-no-loopback",
        "serve",
        "--port",
        str(port),
        extra_env={"TIERFLOW_WEBHOOKS_ALLOW_LOOPBACK": "false"},
    )
    m = await api.member("ssrf-m", ["supplier"])
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {m.key}"},
            timeout=30,
        ) as http:
            async with asyncio.timeout(60):
                while True:
                    try:
                        if (await http.get("/health")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert proc.popen.poll() is None, proc.tail()
                    await asyncio.sleep(0.2)
            for url in (
                "http://127.0.0.1:9/hook",
                "http://localhost/hook",
                "http://10.1.2.3/hook",
                "http://192.168.0.10/hook",
                "http://172.16.5.4/hook",
                "http://169.254.169.254/latest/meta-data",
                "http://[::1]/hook",
                "http://[::ffff:127.0.0.1]/hook",
                "http://[fe80::1]/hook",
                "http://0.0.0.0/hook",
            ):
                r = await http.post("/v1/webhooks", json={"url": url, "event_types": ["*"]})
                assert r.status_code == 422, (url, r.text)
                assert r.json()["code"] == "webhook_url_forbidden", (url, r.text)
            assert json.loads((await http.get("/v1/webhooks")).text)["items"] == []
    finally:
        proc.stop()


async def test_the_client_manages_and_verifies(stack: Stack, api: Api, receiver: Receiver) -> None:

    m = await api.member("client-m", ["supplier"])
    async with TierflowClient(stack.base_url, m.key) as tf:
        made = await tf.webhooks.create(receiver.url("/client"), ["*"])
        assert made.secret.startswith("whsec_")
        assert [w.id async for w in tf.webhooks.list()] == [made.id]
        queued = await tf.webhooks.ping(made.id)
        assert queued.status == "pending"
        [got] = await receiver.wait_for("/client", 1)
        assert verify_webhook(made.secret, got.headers["Tierflow-Signature"], got.body)["id"] == (
            queued.event_id
        )
        rotated = await tf.webhooks.rotate_secret(made.id, overlap_s=60)
        assert rotated.secret != made.secret
        assert (await tf.webhooks.get(made.id)).status == "active"
        done = await settled(m, made.id)
        listed = [d async for d in tf.webhooks.deliveries(made.id)]
        assert [d.id for d in listed] == [str(d["id"]) for d in done]
        assert listed[0].status == "succeeded"
        assert listed[0].attempt_log[0]["ok"] is True
        again = await tf.webhooks.redeliver(made.id, listed[0].id)
        assert again.event_id == queued.event_id
        await receiver.wait_for("/client", 2)
        await tf.webhooks.delete(made.id)
        assert [w async for w in tf.webhooks.list()] == []
