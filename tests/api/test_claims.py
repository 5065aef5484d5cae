"""Claim pieces through the HTTP API on a real platform (anvil, indexer, API server).

A payable's root piece is split down three tiers and a piece passed on whole (``split`` answers
the new piece's id from ClaimSplit, ``transfer`` keeps the id); the chain's refusals come back
as their codes (``amount_exceeds_available``, ``not_holder``, ``recipient_invalid``,
``claim_frozen``); the lineage tree nests the pieces for the payable's parties while a tier-3
supplier gets 403 and an outsider 404; the history lists a piece's events in chain order with
the transaction hashes the writes answered; the operator freezes and unfreezes; lists filter
and export CSV; unknown fields are refused; a piece changed on chain behind the mirror is
never moved whole (``claim_changed``).
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from backend.api.deps import encode_cursor
from backend.auth import Caller
from backend.gateway import Gateway
from backend.keystore import Keystore
from backend.ports import WriteContext
from bench.stack import Stack
from db.engine import create_pooled_engine as create_engine
from ledger import calls
from ledger.anvil import ANVIL_CHAIN_ID
from ledger.deployment import load_deployment
from ledger.node import close_web3, make_web3
from tests.support.api import (
    Api,
    confirmed_invoice,
    core_with_limit,
    issue,
    post_json,
    problem,
    transfer,
)


@pytest.fixture(scope="module")
async def tiers(api: Api) -> dict[str, Any]:
    """core → s1 (root, 10 000) → s2 (6 000) → s3 (2 500) → s4 (the whole 2 500 piece)."""
    core = await core_with_limit(api, "core", 10_000_000)
    s1 = await api.member("s1", ["supplier"])
    s2 = await api.member("s2", ["supplier"])
    s3 = await api.member("s3", ["supplier"])
    s4 = await api.member("s4", ["supplier", "financier"])
    p = await issue(api, core, s1, 10_000)
    root = p["root_claim_id"]
    a = await transfer(s1, root, s2, 6_000)
    assert a.status_code == 201, a.text
    b = await transfer(s2, a.json()["claim_id"], s3, 2_500)
    assert b.status_code == 201, b.text
    c = await transfer(s3, b.json()["claim_id"], s4, 2_500)
    assert c.status_code == 201, c.text
    return {
        "core": core,
        "s1": s1,
        "s2": s2,
        "s3": s3,
        "s4": s4,
        "payable": p,
        "root": root,
        "writes": [a.json(), b.json(), c.json()],
    }


async def test_split_down_three_tiers_and_a_whole_transfer(tiers: dict[str, Any]) -> None:
    a, b, c = tiers["writes"]
    s1, s2, s3, s4 = (tiers[k] for k in ("s1", "s2", "s3", "s4"))
    root = tiers["root"]
    assert a["kind"] == "split"
    assert a["from_claim_id"] == root
    assert a["claim_id"] != root
    assert a["claim"]["holder"] == s2.address
    assert a["claim"]["amount"] == 6_000
    assert a["claim"]["parent_id"] == root
    assert a["claim"]["depth"] == 1
    assert a["source"]["amount"] == 4_000
    assert b["kind"] == "split"
    assert b["claim"]["depth"] == 2
    assert b["claim"]["parent_id"] == a["claim_id"]
    assert b["source"]["amount"] == 3_500
    # The whole piece moves: same id, new holder, no new piece.
    assert c["kind"] == "transfer"
    assert c["claim_id"] == c["from_claim_id"] == b["claim_id"]
    assert c["claim"]["holder"] == s4.address
    assert c["claim"]["amount"] == 2_500
    for w in (a, b, c):
        assert w["tx_hash"].startswith("0x")
        assert w["block_number"] > 0

    piece = (await s4.get(f"/v1/claims/{b['claim_id']}")).json()
    assert piece["holder"] == s4.address
    assert piece["payable_id"] == tiers["payable"]["id"]
    assert piece["obligor"] == tiers["core"].address
    assert piece["status"] == "active"
    assert piece["available_amount"] == 2_500
    # A past holder still sees the piece it passed on; s1 sees the tier below it.
    assert (await s3.get(f"/v1/claims/{b['claim_id']}")).status_code == 200
    assert (await s1.get(f"/v1/claims/{a['claim_id']}")).status_code == 200
    mine = (await s2.get("/v1/claims", holder=s2.address)).json()["items"]
    assert [x["id"] for x in mine] == [a["claim_id"]]
    assert mine[0]["amount"] == 3_500


async def test_refusals_come_back_as_their_codes(api: Api, tiers: dict[str, Any]) -> None:
    s1, s2, s4 = tiers["s1"], tiers["s2"], tiers["s4"]
    root = tiers["root"]
    problem(await transfer(s1, root, s2, 4_001), 409, "amount_exceeds_available")
    # s2 sees the piece it split off to s3 (now s4's) but does not hold it; the root it
    # cannot even see.
    problem(await transfer(s2, tiers["writes"][1]["claim_id"], s1, 10), 403, "not_holder")
    problem(await transfer(s2, root, s4, 10), 404, "claim_not_found")
    # A core enterprise may not receive pieces: the chain says it lacks the role.
    problem(await transfer(s1, root, tiers["core"], 10), 403, "role_missing")
    problem(await transfer(s1, root, s1, 10), 422, "recipient_invalid")
    problem(await transfer(s1, root, s2, 0), 422, "invalid_request")
    problem(await transfer(s1, root, s2, 10, holder=s2.address), 422, "invalid_request")
    problem(await transfer(s1, root, s2, 10, status="settled"), 422, "invalid_request")
    problem(await transfer(s1, root, s2, 10, invoice_id="0xabc"), 422, "invalid_request")
    problem(await transfer(s1, 999_999, s2, 10), 404, "claim_not_found")
    outsider = await api.member("outsider", ["supplier"])
    problem(await transfer(outsider, root, s2, 10), 404, "claim_not_found")
    problem(await outsider.get(f"/v1/claims/{root}"), 404, "claim_not_found")
    problem(await outsider.get(f"/v1/claims/{root}/history"), 404, "claim_not_found")
    assert (await outsider.get("/v1/claims")).json()["items"] == []
    auditor = await api.member("auditor", ["auditor"])
    assert (await auditor.get(f"/v1/claims/{root}")).status_code == 200
    problem(await transfer(auditor, root, s2, 10), 403, "auditor_read_only")


async def test_a_transfer_cites_its_trade_invoice(api: Api, tiers: dict[str, Any]) -> None:
    s1, s2 = tiers["s1"], tiers["s2"]
    invoice_id = await confirmed_invoice(api, s2, s1, 500)
    r = await transfer(s1, tiers["root"], s2, 400, invoice_id=invoice_id)
    assert r.status_code == 201, r.text
    assert r.json()["claim"]["invoice_id"] == invoice_id
    used = (await s1.get(f"/v1/invoices/{invoice_id}")).json()
    assert used["status"] == "used"
    assert used["claim_id"] == r.json()["claim_id"]
    # Used once, ever.
    problem(
        await transfer(s1, tiers["root"], s2, 1, invoice_id=invoice_id),
        409,
        "invoice_status_invalid",
    )


async def test_tree_for_the_parties_only(api: Api, tiers: dict[str, Any]) -> None:
    p = tiers["payable"]
    a, b, _ = tiers["writes"]
    path = f"/v1/payables/{p['id']}/tree"
    r = await tiers["s1"].get(path)
    assert r.status_code == 200, r.text
    tree = r.json()
    assert tree["payable_id"] == p["id"]
    root = tree["root"]
    assert root["id"] == tiers["root"]
    assert root["parent_id"] is None
    assert root["depth"] == 0
    assert root["holder"] == tiers["s1"].address
    tier2 = next(n for n in root["children"] if n["id"] == a["claim_id"])
    assert tier2["parent_id"] == root["id"]
    assert tier2["depth"] == 1
    assert tier2["holder"] == tiers["s2"].address
    assert [n["id"] for n in tier2["children"]] == [b["claim_id"]]
    tier3 = tier2["children"][0]
    assert tier3["depth"] == 2
    assert tier3["holder"] == tiers["s4"].address
    assert tier3["amount"] == 2_500
    assert tier3["status"] == "active"
    assert tier3["children"] == []
    assert tree["node_count"] == root["child_count"] + 1 + 1  # root, its children, tier 3

    # The obligor and auditors see it; a tier-3 supplier does not; an outsider not even the
    # payable.
    assert (await tiers["core"].get(path)).status_code == 200
    assert (await (await api.member("auditor", ["auditor"])).get(path)).status_code == 200
    problem(await tiers["s3"].get(path), 403, "tree_not_visible")
    problem(await tiers["s4"].get(path), 403, "tree_not_visible")
    assert (await tiers["s3"].get(f"/v1/payables/{p['id']}")).status_code == 200
    problem(await (await api.member("outsider", ["supplier"])).get(path), 404, "payable_not_found")

    cut = (await tiers["s1"].get(path, levels=1)).json()
    cut_tier2 = next(n for n in cut["root"]["children"] if n["id"] == a["claim_id"])
    assert cut_tier2["truncated"] is True
    assert cut_tier2["child_count"] == 1
    assert cut_tier2["children"] == []
    sub = (await tiers["s1"].get(path, from_claim_id=a["claim_id"])).json()
    assert sub["root"]["id"] == a["claim_id"]
    assert [n["id"] for n in sub["root"]["children"]] == [b["claim_id"]]
    problem(await tiers["s1"].get(path, from_claim_id=999_999), 404, "claim_not_found")
    problem(await tiers["s1"].get(path, levels=0), 422, "invalid_request")


async def test_history_in_chain_order_with_tx_hashes(api: Api, tiers: dict[str, Any]) -> None:
    a, b, c = tiers["writes"]
    r = await tiers["s2"].get(f"/v1/claims/{a['claim_id']}/history")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    # Its creation (split off the root) and the split that took 2 500 off it.
    assert [e["event"] for e in items] == ["ClaimSplit", "ClaimSplit"]
    assert [e["tx_hash"] for e in items] == [a["tx_hash"], b["tx_hash"]]
    assert [e["block_number"] for e in items] == [a["block_number"], b["block_number"]]
    assert items[0]["args"]["claimId"] == a["claim_id"]
    assert items[0]["args"]["value"] == 6_000
    assert items[1]["args"]["parentId"] == a["claim_id"]
    assert items[1]["args"]["to"] == tiers["s3"].address
    for e in items:
        assert datetime.fromisoformat(e["block_time"].replace("Z", "+00:00")).tzinfo is not None

    moved = (await tiers["s4"].get(f"/v1/claims/{b['claim_id']}/history")).json()["items"]
    assert [e["event"] for e in moved] == ["ClaimSplit", "ClaimTransferred"]
    assert [e["tx_hash"] for e in moved] == [b["tx_hash"], c["tx_hash"]]
    positions = [(e["block_number"], e["log_index"]) for e in moved]
    assert positions == sorted(positions)

    root = (await tiers["s1"].get(f"/v1/claims/{tiers['root']}/history", limit=1)).json()
    assert root["items"][0]["event"] == "PayableIssued"
    assert root["items"][0]["tx_hash"] == tiers["payable"]["tx_hash"]
    rest = await tiers["s1"].get(f"/v1/claims/{tiers['root']}/history", cursor=root["next_cursor"])
    assert rest.json()["items"][0]["tx_hash"] == a["tx_hash"]


async def test_operator_freezes_and_unfreezes(api: Api, tiers: dict[str, Any]) -> None:
    s2, s3 = tiers["s2"], tiers["s3"]
    piece = tiers["writes"][0]["claim_id"]
    problem(await s2.post(f"/v1/claims/{piece}/freeze", {"reason": "x"}), 403, "role_missing")
    problem(await api.operator.post(f"/v1/claims/{piece}/freeze", {}), 422, "invalid_request")
    bad = {"reason": "order \ud800"}
    problem(
        await post_json(api.operator, f"/v1/claims/{piece}/freeze", bad), 422, "invalid_request"
    )
    r = await api.operator.post(f"/v1/claims/{piece}/freeze", {"reason": "court order 2026-17"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "frozen"
    assert r.json()["frozen"] is True
    problem(await transfer(s2, piece, s3, 10), 409, "claim_frozen")
    frozen = (await s2.get("/v1/claims", status="frozen")).json()["items"]
    assert [x["id"] for x in frozen] == [piece]
    problem(
        await api.operator.post(f"/v1/claims/{piece}/freeze", {"reason": "again"}),
        409,
        "claim_frozen",
    )
    u = await api.operator.post(f"/v1/claims/{piece}/unfreeze")
    assert u.status_code == 200, u.text
    assert u.json()["status"] == "active"
    assert (await transfer(s2, piece, s3, 10)).status_code == 201
    events = (await s2.get(f"/v1/claims/{piece}/history")).json()["items"]
    assert [e["event"] for e in events][-3:] == ["ClaimFrozen", "ClaimUnfrozen", "ClaimSplit"]


async def test_lists_filter_and_export_csv(tiers: dict[str, Any]) -> None:
    core = tiers["core"]
    p = tiers["payable"]
    listed = (await core.get("/v1/claims", payable_id=p["id"])).json()["items"]
    ids = [x["id"] for x in listed]
    assert ids == sorted(ids)
    assert ids[0] == tiers["root"]
    assert sum(x["amount"] for x in listed) == p["face_value"]  # conservation (I-1)
    held = (await core.get("/v1/claims", payable_id=p["id"], holder=tiers["s4"].address)).json()
    assert [x["id"] for x in held["items"]] == [tiers["writes"][1]["claim_id"]]
    page = (await core.get("/v1/claims", payable_id=p["id"], limit=2)).json()
    more = (await core.get("/v1/claims", payable_id=p["id"], cursor=page["next_cursor"])).json()
    assert [x["id"] for x in page["items"] + more["items"]] == ids

    exported = await core.get("/v1/claims", payable_id=p["id"], format="csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(r["id"]) for r in rows] == ids
    assert rows[0]["parent_id"] == ""
    assert rows[1]["parent_id"] == str(tiers["root"])
    assert {"holder", "amount", "locked_amount", "status", "due_date", "depth"} <= set(rows[0])
    problem(await core.get("/v1/claims", format="xml"), 422, "invalid_request")
    # Cursors beyond the key columns' range, or of another list's shape: 422, not a 500.
    for bad in (2**70, -1, True, [1, 2], "x"):
        r = await core.get("/v1/claims", cursor=encode_cursor(bad))
        problem(r, 422, "cursor_invalid")
    history = f"/v1/claims/{tiers['root']}/history"
    for bad in ([2**70, 0], [1, -1], 5):
        problem(await core.get(history, cursor=encode_cursor(bad)), 422, "cursor_invalid")


async def test_a_piece_changed_behind_the_mirror_is_not_moved_whole(
    api: Api, stack: Stack, tiers: dict[str, Any]
) -> None:
    """With the indexer stopped, the holder splits a unit off on chain directly: a transfer of
    the amount the mirror still shows is refused ``claim_changed`` instead of moving the whole,
    smaller piece, while a split goes ahead (it moves exactly its amount: a holder may split one
    piece several times at once); once the mirror caught up, transfers go through again."""
    s1, s2 = tiers["s1"], tiers["s2"]
    root = tiers["root"]
    seen = (await s1.get(f"/v1/claims/{root}")).json()["amount"]
    password = SecretStr((stack.data_dir / "keystore.password").read_text().strip())
    deployment = load_deployment(ANVIL_CHAIN_ID, stack.data_dir / "deployments")
    assert deployment is not None
    w3 = make_web3(stack.rpc_url)
    engine = create_engine(stack.database_url)
    stack.procs["indexer"].stop()
    try:
        gateway = Gateway(w3, deployment, Keystore(password), engine, mirror_wait_s=0)
        holder = WriteContext(Caller(s1.address, frozenset(), "active", "test"))
        await gateway.submit(holder, calls.split(root, s2.address, 1, None))
        assert (await s1.get(f"/v1/claims/{root}")).json()["amount"] == seen  # the mirror lags
        body = problem(await transfer(s1, root, s2, seen), 409, "claim_changed")
        assert body["amount"] == seen - 1
        # A split is sent all the same; it answers once the mirror shows it.
        split_through_api = asyncio.create_task(transfer(s1, root, s2, 1))
        await asyncio.sleep(0.5)
        assert not split_through_api.done()
    finally:
        stack.start_indexer()
        await engine.dispose()
        await close_web3(w3)
    r = await split_through_api
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "split"
    assert r.json()["source"]["amount"] == seen - 2
    for _ in range(200):
        if (await s1.get(f"/v1/claims/{root}")).json()["amount"] == seen - 2:
            break
        await asyncio.sleep(0.1)
    r = await transfer(s1, root, s2, 1)
    assert r.status_code == 201, r.text
    assert r.json()["source"]["amount"] == seen - 3


async def test_compact_tree_pages_by_level(api: Api, tiers: dict[str, Any]) -> None:
    """``format=compact`` gives the same pieces as the nested tree, as columns, level by level,
    in pages of whole levels chained by ``next_cursor``; the same visibility."""
    p = tiers["payable"]
    path = f"/v1/payables/{p['id']}/tree"
    nested = (await tiers["s1"].get(path)).json()
    flat: dict[int, dict[str, Any]] = {}
    todo = [nested["root"]]
    while todo:
        node = todo.pop()
        todo.extend(node["children"])
        flat[node["id"]] = {k: v for k, v in node.items() if k not in ("children", "truncated")}

    r = await tiers["s1"].get(path, format="compact")
    assert r.status_code == 200, r.text
    whole = r.json()
    assert whole["format"] == "compact"
    assert whole["next_cursor"] is None
    assert whole["node_count"] == nested["node_count"] == len(whole["columns"]["id"])
    cols = whole["columns"]
    rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
    assert {row["id"]: row for row in rows} == flat
    depths = [row["depth"] for row in rows]
    assert depths == sorted(depths)  # level by level: a parent before its children

    pages: list[list[int]] = []
    cursor = None
    while True:  # one piece per page at most: every level is a page of its own
        params: dict[str, Any] = {"format": "compact", "limit": 1}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await tiers["s1"].get(path, **params)).json()
        assert page["first_level"] == page["last_level"] == len(pages)
        pages.append(page["columns"]["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i for ids in pages for i in ids] == cols["id"]
    assert len(pages) == max(depths) + 1

    one = (await tiers["s1"].get(path, format="compact", levels=1)).json()
    assert set(one["columns"]["depth"]) == {0, 1}
    assert one["next_cursor"] is None
    bad = encode_cursor("nope")
    problem(await tiers["s1"].get(path, format="compact", cursor=bad), 422, "cursor_invalid")
    problem(await tiers["s1"].get(path, cursor=encode_cursor(1)), 422, "cursor_invalid")
    problem(await tiers["s3"].get(path, format="compact"), 403, "tree_not_visible")


async def test_reads_written_at_once_are_their_models_bytes(tiers: dict[str, Any]) -> None:
    """A piece, the nested tree and the payables list are written as JSON without their
    response models (backend.api.answers): each answer is exactly what its model makes of
    it (every field, in the model's order, addresses checksummed, hashes in lower case,
    times as the model writes them), so nothing a client sees changed."""
    from backend.schemas.claims import ClaimPublic
    from backend.schemas.payables import PayablesPublic, PayableTree

    p, (a, b, _) = tiers["payable"], tiers["writes"]
    s1 = tiers["s1"]
    answers: list[tuple[type[BaseModel], Any]] = [
        (ClaimPublic, await s1.get(f"/v1/claims/{a['claim_id']}")),
        (ClaimPublic, await tiers["s4"].get(f"/v1/claims/{b['claim_id']}")),
        (PayableTree, await s1.get(f"/v1/payables/{p['id']}/tree")),
        (PayableTree, await s1.get(f"/v1/payables/{p['id']}/tree", levels=1)),
        (PayablesPublic, await s1.get("/v1/payables", limit=20)),
        (PayablesPublic, await tiers["core"].get("/v1/payables", limit=1)),
    ]
    for model, answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert model.model_validate_json(answer.content).model_dump_json().encode() == (
            answer.content
        ), model.__name__
