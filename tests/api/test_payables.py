"""Payables through the HTTP API on a real platform (anvil, indexer, API server).

The operator sets the core's program limit first; issuing over it is ``limit_exceeded``; an
issue answers the payable and its root piece (ids from the PayableIssued event) and uses the
invoices; non-parties get 404; the supplier may decline an untouched payable (the invoices are
Confirmed again); settlement is refused before the due date (``not_due``), then records pieces
one at a time (``settleClaim``) and in a batch (``settleClaims``) until the payable is Settled;
a piece of another payable in the list is ``claim_not_in_payable``; a payment reference that
paid another holder is ``payment_reference_used``; a clearing agent holding a
piece cannot record its payment (``settler_is_holder``); an unpaid payable past its
due date and grace is marked Overdue by anyone; reads answer the chain's ``overdueFrom``
(a freeze or a pause after the due date moves it later); lists filter, page and export CSV.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from pydantic import SecretStr

from backend.gateway import Gateway
from backend.keystore import Keystore
from db.engine import create_pooled_engine as create_engine
from ledger.anvil import ANVIL_CHAIN_ID, dev_private_keys, rpc_call
from ledger.deployment import load_deployment
from ledger.node import close_web3, make_web3
from ledger.sender import TransactionSender
from tests.support.api import (
    DAY,
    GRACE_DAYS,
    Api,
    Ledger,
    confirmed_invoice,
    core_with_limit,
    issue,
    post_json,
    problem,
)


async def test_limit_then_issue_answers_ids_from_the_event(api: Api) -> None:
    core = await core_with_limit(api, "core", 1_000_000)
    supplier = await api.member("s1", ["supplier"])
    agent = await api.member("agent", ["clearing_agent"])
    invoice_id = await confirmed_invoice(api, supplier, core, 2_000_000)
    due = await api.chain_time() + 30 * DAY
    over = {
        "supplier": supplier.address,
        "face_value": 1_500_000,
        "due_date": due,
        "invoice_ids": [invoice_id],
    }
    problem(await core.post("/v1/payables", over), 409, "limit_exceeded")

    r = await core.post(
        "/v1/payables", {**over, "face_value": 900_000, "clearing_agent": agent.address}
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["id"] >= 1
    assert p["root_claim_id"] >= 1
    assert p["obligor"] == core.address
    assert p["supplier"] == supplier.address
    assert p["face_value"] == 900_000
    assert p["outstanding_value"] == 900_000
    assert p["invoice_ids"] == [invoice_id]
    assert p["clearing_agent"] == agent.address
    assert p["status"] == "issued"
    assert p["tx_hash"].startswith("0x")
    # The ids are the event's: the chain's own views agree.
    assert p["block_number"] > 0

    got = await supplier.get(f"/v1/payables/{p['id']}")
    assert got.status_code == 200
    assert got.json()["root_claim_id"] == p["root_claim_id"]
    root = (await supplier.get(f"/v1/claims/{p['root_claim_id']}")).json()
    assert root["holder"] == supplier.address
    assert root["amount"] == 900_000
    assert root["parent_id"] is None
    assert root["depth"] == 0
    used = (await supplier.get(f"/v1/invoices/{invoice_id}")).json()
    assert used["status"] == "used"
    assert used["payable_id"] == p["id"]
    assert (await agent.get(f"/v1/payables/{p['id']}")).status_code == 200

    outsider = await api.member("outsider", ["supplier"])
    problem(await outsider.get(f"/v1/payables/{p['id']}"), 404, "payable_not_found")
    problem(await outsider.get(f"/v1/payables/{p['id']}/tree"), 404, "payable_not_found")
    problem(await outsider.get(f"/v1/claims/{p['root_claim_id']}"), 404, "claim_not_found")
    problem(await outsider.post(f"/v1/payables/{p['id']}/overdue"), 404, "payable_not_found")
    assert (await outsider.get("/v1/payables")).json()["items"] == []
    problem(await supplier.get("/v1/payables/999999"), 404, "payable_not_found")


async def test_bad_issues_are_refused(api: Api) -> None:
    core = await core_with_limit(api, "core", 1_000_000)
    supplier = await api.member("s1", ["supplier"])
    auditor = await api.member("auditor", ["auditor"])
    invoice_id = await confirmed_invoice(api, supplier, core, 1_000)
    now = await api.chain_time()
    good = {
        "supplier": supplier.address,
        "face_value": 1_000,
        "due_date": now + 10 * DAY,
        "invoice_ids": [invoice_id],
    }
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"status": "settled"}, 422, "invalid_request"),  # mass assignment
        ({"obligor": supplier.address}, 422, "invalid_request"),
        ({"root_claim_id": 1}, 422, "invalid_request"),
        ({"invoice_ids": []}, 422, "invalid_request"),
        ({"invoice_ids": ["0x12"]}, 422, "invalid_request"),
        ({"face_value": -1}, 422, "invalid_request"),
        ({"due_date": now + 400 * DAY}, 422, "due_date_invalid"),
        ({"due_date": now - DAY}, 422, "due_date_invalid"),
        ({"face_value": 1_001}, 409, "invoices_insufficient"),
        ({"invoice_ids": ["0x" + "77" * 32]}, 404, "invoice_not_found"),
        ({"supplier": core.address}, 422, "supplier_invalid"),
    ]
    for over, status, code in cases:
        problem(await core.post("/v1/payables", {**good, **over}), status, code)
    problem(await supplier.post("/v1/payables", good), 403, "role_missing")
    problem(await auditor.post("/v1/payables", good), 403, "auditor_read_only")


async def test_supplier_declines_an_untouched_payable(api: Api) -> None:
    core = await core_with_limit(api, "core", 1_000_000)
    supplier = await api.member("s1", ["supplier"])
    p = await issue(api, core, supplier, 5_000)
    problem(await core.post(f"/v1/payables/{p['id']}/cancel"), 403, "not_holder")
    r = await supplier.post(f"/v1/payables/{p['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    invoice = (await supplier.get(f"/v1/invoices/{p['invoice_ids'][0]}")).json()
    assert invoice["status"] == "confirmed"
    assert invoice["payable_id"] is None
    root = (await supplier.get(f"/v1/claims/{p['root_claim_id']}")).json()
    assert root["status"] == "cancelled"
    problem(await supplier.post(f"/v1/payables/{p['id']}/cancel"), 409, "payable_status_invalid")


async def test_settlement_piece_by_piece_and_in_a_batch(api: Api) -> None:
    core = await core_with_limit(api, "core", 1_000_000)
    s1 = await api.member("s1", ["supplier"])
    s2 = await api.member("s2", ["supplier"])
    s3 = await api.member("s3", ["supplier"])
    agent = await api.member("agent", ["clearing_agent"])
    p = await issue(api, core, s1, 10_000, due_in_s=2 * DAY, clearing_agent=agent.address)
    other = await issue(api, core, s1, 1_000, due_in_s=2 * DAY)
    root = p["root_claim_id"]
    a = await s1.post(f"/v1/claims/{root}/transfers", {"to": s2.address, "amount": 3_000})
    b = await s1.post(f"/v1/claims/{root}/transfers", {"to": s3.address, "amount": 2_000})
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    pieces = [root, a.json()["claim_id"], b.json()["claim_id"]]
    path = f"/v1/payables/{p['id']}/settlements"

    one = {"items": [{"claim_id": pieces[1], "payment_ref": "ICBC-2026-0001"}]}
    problem(await core.post(path, one), 409, "not_due")
    api.advance_time(2 * DAY + 60)

    problem(await s1.post(path, one), 403, "not_settler")
    stranger = {"items": [{"claim_id": other["root_claim_id"], "payment_ref": "x"}]}
    body = problem(await core.post(path, stranger), 422, "claim_not_in_payable")
    assert body["claim_ids"] == [other["root_claim_id"]]
    twice = {"items": [one["items"][0], one["items"][0]]}
    problem(await core.post(path, twice), 422, "invalid_request")
    problem(await core.post(path, {"items": []}), 422, "invalid_request")
    for ref in ("", "\ud800"):
        bad_ref = {"items": [{"claim_id": pieces[1], "payment_ref": ref}]}
        problem(await post_json(core, path, bad_ref), 422, "invalid_request")
    # No text may hold a control character (docs/api.md, Input).
    nul_ref = {"items": [{"claim_id": pieces[1], "payment_ref": "ref\x00"}]}
    problem(await post_json(core, path, nul_ref), 400, "control_character")
    problem(await core.post(path, {"items": one["items"], "payer": "x"}), 422, "invalid_request")

    r = await core.post(path, one)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["payable_settled"] is False
    expected_ref = "0x" + hashlib.sha256(b"ICBC-2026-0001").hexdigest()
    assert done["settlements"] == [
        {
            "claim_id": pieces[1],
            "holder": s2.address,
            "amount": 3_000,
            "payment_ref_sha256": expected_ref,
        }
    ]
    assert done["payable"]["settled_value"] == 3_000
    settled = (await s2.get(f"/v1/claims/{pieces[1]}")).json()
    assert settled["status"] == "settled"
    problem(await core.post(path, one), 409, "claim_not_live")
    # The payment to s2 paid s2: it cannot be cited for s1's piece (another holder).
    reused = {"items": [{"claim_id": pieces[0], "payment_ref": "ICBC-2026-0001"}]}
    body = problem(await core.post(path, reused), 409, "payment_reference_used")
    assert body["chain_error_args"]["holder"] == s2.address
    assert body["chain_error_args"]["payableId"] == p["id"]
    assert (await s1.get(f"/v1/claims/{pieces[0]}")).json()["status"] == "active"

    # The clearing agent records the rest in one batch: the payable is Settled.
    batch = {
        "items": [
            {"claim_id": pieces[0], "payment_ref": "ICBC-2026-0002"},
            {"claim_id": pieces[2], "payment_ref": "ICBC-2026-0003"},
        ]
    }
    r = await agent.post(path, batch)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["payable_settled"] is True
    assert out["payable"]["status"] == "settled"
    assert [s["claim_id"] for s in out["settlements"]] == [pieces[0], pieces[2]]
    assert [s["amount"] for s in out["settlements"]] == [5_000, 2_000]
    assert out["payable"]["settled_value"] == 10_000
    assert out["payable"]["outstanding_value"] == 0
    again = await s1.get(f"/v1/payables/{p['id']}")
    assert again.json()["status"] == "settled"

    # The schema's batch bound is the contract's.
    deployment = (await core.get("/v1/deployment")).json()
    address = deployment["contracts"]["ClaimLedger"]["address"]
    data = "0x" + keccak(text="MAX_SETTLEMENT_BATCH()")[:4].hex()
    cap = int(
        rpc_call(api.stack.rpc_url, "eth_call", [{"to": address, "data": data}, "latest"]), 16
    )
    too_many = {"items": [{"claim_id": i + 1, "payment_ref": "r"} for i in range(cap + 1)]}
    problem(await core.post(path, too_many), 422, "invalid_request")


async def test_a_freeze_after_the_due_date_delays_overdue(api: Api) -> None:
    """A court freeze stops the overdue clock (SPEC §2): past due date + grace the payable is
    not overdue yet, and the refusal names the deadline pushed by the frozen time."""
    core = await core_with_limit(api, "core-frozen", 1_000_000)
    s1 = await api.member("s1-frozen", ["supplier"])
    p = await issue(api, core, s1, 4_000, due_in_s=DAY)
    due = int(datetime.fromisoformat(p["due_date"]).timestamp())
    api.advance_time(DAY + 60)
    root = p["root_claim_id"]
    r = await api.operator.post(f"/v1/claims/{root}/freeze", {"reason": "court order 7"})
    assert r.status_code == 200, r.text
    api.advance_time(3 * DAY)
    r = await api.operator.post(f"/v1/claims/{root}/unfreeze")
    assert r.status_code == 200, r.text
    # the clock has run a minute before the freeze and now runs on for the grace less an hour
    api.advance_time(GRACE_DAYS * DAY - 3_600)
    assert await api.chain_time() > due + GRACE_DAYS * DAY  # overdue, but for the freeze
    body = problem(await s1.post(f"/v1/payables/{p['id']}/overdue"), 409, "not_overdue_yet")
    assert body["chain_error_args"]["overdueFrom"] >= due + GRACE_DAYS * DAY + 3 * DAY
    # the read says the same deadline as the refusal (the clock runs again: it stands)
    shown = (await s1.get(f"/v1/payables/{p['id']}")).json()["overdue_from"]
    assert _seconds(shown) == body["chain_error_args"]["overdueFrom"]
    api.advance_time(3_600)
    r = await s1.post(f"/v1/payables/{p['id']}/overdue")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "overdue"


def _seconds(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp())


async def test_overdue_from_moves_later_while_the_platform_is_paused(api: Api) -> None:
    """GET /v1/payables/{id} and the list answer the chain's ``overdueFrom``: due date + grace
    until the clock stops; a pause after the due date stops it, so while it lasts the
    deadline moves with it and afterwards stands later by the paused time; a settled payable
    has none."""
    core = await core_with_limit(api, "core-paused", 1_000_000)
    s1 = await api.member("s1-paused", ["supplier"])
    p = await issue(api, core, s1, 4_000, due_in_s=DAY)
    due = _seconds(p["due_date"])
    path = f"/v1/payables/{p['id']}"

    async def overdue_from() -> int | None:
        one = (await s1.get(path)).json()
        listed = (await s1.get("/v1/payables", supplier=s1.address)).json()["items"]
        assert [x["overdue_from"] for x in listed if x["id"] == p["id"]] == [one["overdue_from"]]
        return None if one["overdue_from"] is None else _seconds(one["overdue_from"])

    assert await overdue_from() == due + GRACE_DAYS * DAY  # not due: read without a call
    api.advance_time(DAY + 60)
    assert await overdue_from() == due + GRACE_DAYS * DAY  # past due, the clock runs
    async with Ledger.open(api.stack, api) as chain:
        # the operator is the deployer, anvil's first key (the API has no pause route); the
        # API's sender resyncs its nonce when it next writes
        operator = TransactionSender(chain.suite.w3, Account.from_key(dev_private_keys()[0]))
        members = chain.suite.members.functions
        await operator.transact(members.pause())
        paused_at = await api.chain_time()
        try:
            api.advance_time(2 * DAY)
            during = await overdue_from()
            assert during is not None
            assert during >= due + GRACE_DAYS * DAY + 2 * DAY
        finally:
            await operator.transact(members.unpause())
        stopped = await api.chain_time() - paused_at
    assert stopped >= 2 * DAY
    assert await overdue_from() == due + GRACE_DAYS * DAY + stopped
    items = [{"claim_id": p["root_claim_id"], "payment_ref": "PAUSED-0001"}]
    r = await core.post(f"{path}/settlements", {"items": items})
    assert r.status_code == 200, r.text
    assert await overdue_from() is None  # settled: no clock


async def test_overdue_after_due_date_and_grace(api: Api) -> None:
    core = await core_with_limit(api, "core", 1_000_000)
    s1 = await api.member("s1", ["supplier"])
    s2 = await api.member("s2", ["supplier"])
    p = await issue(api, core, s1, 4_000, due_in_s=DAY)
    r = await s1.post(f"/v1/claims/{p['root_claim_id']}/transfers", {"to": s2.address, "amount": 1})
    assert r.status_code == 201, r.text
    problem(await s1.post(f"/v1/payables/{p['id']}/overdue"), 409, "not_overdue_yet")
    api.advance_time(DAY + GRACE_DAYS * DAY + 60)
    # Anyone who sees it may mark it: here the tier-2 holder of one fen of it.
    r = await s2.post(f"/v1/payables/{p['id']}/overdue")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "overdue"
    assert r.json()["unsettled_value"] == 4_000
    listed = (await core.get("/v1/payables", status="overdue")).json()["items"]
    assert p["id"] in [x["id"] for x in listed]
    problem(await s2.post(f"/v1/payables/{p['id']}/overdue"), 409, "payable_status_invalid")
    # An overdue payable is still settled piece by piece.
    path = f"/v1/payables/{p['id']}/settlements"
    listed_claims = (await core.get("/v1/claims", payable_id=p["id"])).json()["items"]
    claim_ids = [c["id"] for c in listed_claims]
    assert claim_ids[0] == p["root_claim_id"]
    assert len(claim_ids) == 2
    items = [{"claim_id": c, "payment_ref": f"late-{c}"} for c in claim_ids]
    done = await core.post(path, {"items": items})
    assert done.status_code == 200, done.text
    assert done.json()["payable"]["status"] == "settled"


async def test_lists_filter_page_and_export_csv(api: Api) -> None:
    core = await core_with_limit(api, "core-list", 10_000_000)
    s1 = await api.member("s-list-1", ["supplier"])
    s2 = await api.member("s-list-2", ["supplier"])
    made = [
        (await issue(api, core, s1, 100))["id"],
        (await issue(api, core, s2, 200))["id"],
        (await issue(api, core, s1, 300))["id"],
    ]
    mine = (await core.get("/v1/payables", obligor=core.address)).json()["items"]
    assert [x["id"] for x in mine] == made
    assert [
        x["id"] for x in (await core.get("/v1/payables", supplier=s1.address)).json()["items"]
    ] == [
        made[0],
        made[2],
    ]
    assert [x["id"] for x in (await s2.get("/v1/payables")).json()["items"]] == [made[1]]
    first = (await core.get("/v1/payables", obligor=core.address, limit=2)).json()
    rest = (
        await core.get("/v1/payables", obligor=core.address, cursor=first["next_cursor"])
    ).json()
    assert [x["id"] for x in first["items"] + rest["items"]] == made
    problem(await core.get("/v1/payables", status="paid"), 422, "invalid_request")

    exported = await core.get("/v1/payables", obligor=core.address, format="csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(r["id"]) for r in rows] == made
    assert rows[1]["face_value"] == "200"
    assert rows[1]["supplier"] == s2.address
    assert rows[0]["invoice_ids"].startswith('["0x')


async def test_clearing_agent_cannot_settle_a_piece_it_holds(api: Api) -> None:
    core = await core_with_limit(api, "core", 1_000_000)
    s1 = await api.member("s1", ["supplier"])
    bank = await api.member("bank", ["financier", "clearing_agent"])
    p = await issue(api, core, s1, 10_000, due_in_s=2 * DAY, clearing_agent=bank.address)
    root = p["root_claim_id"]
    r = await s1.post(f"/v1/claims/{root}/transfers", {"to": bank.address, "amount": 4_000})
    assert r.status_code == 201, r.text
    held = r.json()["claim_id"]
    api.advance_time(2 * DAY + 60)
    path = f"/v1/payables/{p['id']}/settlements"
    own = {"items": [{"claim_id": held, "payment_ref": "OWN-WORD"}]}
    body = problem(await bank.post(path, own), 403, "settler_is_holder")
    assert body["chain_error_args"]["claimId"] == held
    both = {"items": [{"claim_id": root, "payment_ref": "R-1"}, own["items"][0]]}
    problem(await bank.post(path, both), 403, "settler_is_holder")
    assert (await s1.get(f"/v1/claims/{root}")).json()["status"] == "active"  # all or nothing
    r = await core.post(path, own)  # the obligor records the bank's payment
    assert r.status_code == 200, r.text


async def test_overdue_clock_read_once_a_block_per_payable(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A past-due payable's ``overdueFrom`` is asked of the node once per block: reads at the
    same head answer the same value without a call; a new block is asked again (a block's
    state never changes; the next one's may, under a pause or a freeze)."""
    core = await core_with_limit(api, "core-clock", 1_000_000)
    s1 = await api.member("s1-clock", ["supplier"])
    p = await issue(api, core, s1, 4_000, due_in_s=DAY)
    due = _seconds(p["due_date"])
    api.advance_time(DAY + 60)
    stack = api.stack
    password = SecretStr((stack.data_dir / "keystore.password").read_text().strip())
    deployment = load_deployment(ANVIL_CHAIN_ID, stack.data_dir / "deployments")
    assert deployment is not None
    w3 = make_web3(stack.rpc_url)
    engine = create_engine(stack.database_url)
    try:
        gateway = Gateway(w3, deployment, Keystore(password), engine)
        functions = gateway.suite.claim_ledger.functions
        asked: list[int] = []
        overdue_from = functions.overdueFrom

        def counted(payable_id: int) -> Any:
            asked.append(payable_id)
            return overdue_from(payable_id)

        monkeypatch.setattr(functions, "overdueFrom", counted)
        expected = {p["id"]: due + GRACE_DAYS * DAY}
        assert await gateway.overdue_from({p["id"]: due}) == expected
        assert asked == [p["id"]]
        assert await gateway.overdue_from({p["id"]: due}) == expected
        assert asked == [p["id"]]  # the same head: no second call
        api.advance_time(60)
        assert await gateway.overdue_from({p["id"]: due}) == expected
        assert asked == [p["id"], p["id"]]  # a new block: asked again
        await gateway.close()
    finally:
        await engine.dispose()
        await close_web3(w3)
