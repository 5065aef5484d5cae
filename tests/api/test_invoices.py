"""Invoices through the HTTP API on a real platform (anvil, indexer, API server).

Registration answers the fingerprint the chain holds (recomputed here from the documented
normalisation), the identifiers stay off chain and are shown to the parties only; the same
invoice typed differently is ``invoice_duplicate``, a reused document
``invoice_document_duplicate``; only the buyer confirms (``not_buyer``), only the seller or the
operator voids (``not_seller``); non-parties get 404; lists filter, page and export CSV;
unknown fields are refused (no mass assignment); a replayed Idempotency-Key gives the same
answer and one transaction. One test runs the invoice, payable and claim reads (cursors,
tree, history, CSV) on PostgreSQL.

The helpers at the top are shared by the payable and claim tests.
"""

from __future__ import annotations

import csv
import io
import secrets
from typing import Any

import pytest

from bench.stack import Stack
from tests.support.api import (
    DAY,
    Api,
    core_with_limit,
    expected_id,
    invoice_body,
    issue,
    make_api,
    post_json,
    problem,
    register,
    transfer,
    unique,
)

# -- the tests -------------------------------------------------------------------------------


async def test_register_answers_the_fingerprint_and_keeps_identifiers_off_chain(
    api: Api,
) -> None:
    seller = await api.member("seller", ["supplier"])
    buyer = await api.member("buyer", ["core_enterprise"])
    issued = await api.chain_time() - DAY
    doc = secrets.token_hex(32)
    tax_id, code, number = " 9131 0000-ma1f l0xx1x ", "０３１００１９００１１１", "0012-3456 "
    r = await seller.post(
        "/v1/invoices",
        invoice_body(
            buyer,
            123_456,
            issued,
            seller_tax_id=tax_id,
            invoice_code=code,
            number=number,
            document_sha256=doc.upper(),
        ),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == expected_id(tax_id, code, number)
    assert body["id"] == expected_id("91310000MA1FL0XX1X", "031001900111", "00123456")
    assert body["seller"] == seller.address
    assert body["buyer"] == buyer.address
    assert body["amount"] == 123_456
    assert body["status"] == "registered"
    assert body["document_sha256"] == doc
    assert body["issue_date"].endswith("Z")
    assert body["tx_hash"].startswith("0x")
    assert body["block_number"] > 0
    # As given (trimmed), not as normalised: the parties see what they typed.
    assert body["seller_tax_id"] == tax_id.strip()
    assert body["number"] == number.strip()

    # The chain has the fingerprint, not the identifiers: the mirror's row has only hashes.
    got = await buyer.get(f"/v1/invoices/{body['id']}")
    assert got.status_code == 200
    assert {k: got.json()[k] for k in body if k not in ("tx_hash", "block_number")} == {
        k: v for k, v in body.items() if k not in ("tx_hash", "block_number")
    }

    # The same invoice typed in its normalised form is the same fingerprint: refused.
    again = await seller.post(
        "/v1/invoices",
        invoice_body(
            buyer,
            123_456,
            issued,
            seller_tax_id="91310000MA1FL0XX1X",
            invoice_code="031001900111",
            number="00123456",
        ),
    )
    problem(again, 409, "invoice_duplicate")
    # A new invoice with the same document: refused too.
    reused = await seller.post("/v1/invoices", invoice_body(buyer, 5, issued, document_sha256=doc))
    problem(reused, 409, "invoice_document_duplicate")


async def test_visibility_parties_only(api: Api) -> None:
    seller = await api.member("seller", ["supplier"])
    buyer = await api.member("buyer", ["core_enterprise"])
    outsider = await api.member("outsider", ["supplier"])
    auditor = await api.member("auditor", ["auditor"])
    r = await register(api, seller, buyer, 1_000)
    assert r.status_code == 201, r.text
    invoice_id = r.json()["id"]
    problem(await outsider.get(f"/v1/invoices/{invoice_id}"), 404, "invoice_not_found")
    problem(await outsider.post(f"/v1/invoices/{invoice_id}/confirm"), 404, "invoice_not_found")
    seen = await auditor.get(f"/v1/invoices/{invoice_id}")
    assert seen.status_code == 200
    assert seen.json()["number"] == r.json()["number"]
    assert invoice_id not in [i["id"] for i in (await outsider.get("/v1/invoices")).json()["items"]]
    problem(await auditor.post(f"/v1/invoices/{invoice_id}/void"), 403, "auditor_read_only")
    unknown = "0x" + "ab" * 32
    problem(await seller.get(f"/v1/invoices/{unknown}"), 404, "invoice_not_found")
    problem(await seller.get("/v1/invoices/0x1234"), 422, "invalid_request")


async def test_confirm_by_the_buyer_only_and_void_by_seller_or_operator(api: Api) -> None:
    seller = await api.member("seller", ["supplier"])
    buyer = await api.member("buyer", ["core_enterprise"])
    r = await register(api, seller, buyer, 2_000)
    invoice_id = r.json()["id"]

    problem(await seller.post(f"/v1/invoices/{invoice_id}/confirm"), 403, "not_buyer")
    ok = await buyer.post(f"/v1/invoices/{invoice_id}/confirm")
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "confirmed"
    assert ok.json()["tx_hash"] != r.json()["tx_hash"]
    assert (await seller.get(f"/v1/invoices/{invoice_id}")).json()["status"] == "confirmed"
    problem(await buyer.post(f"/v1/invoices/{invoice_id}/confirm"), 409, "invoice_status_invalid")

    problem(await buyer.post(f"/v1/invoices/{invoice_id}/void"), 403, "not_seller")
    voided = await seller.post(f"/v1/invoices/{invoice_id}/void")
    assert voided.status_code == 200
    assert voided.json()["status"] == "voided"
    problem(await seller.post(f"/v1/invoices/{invoice_id}/void"), 409, "invoice_status_invalid")

    other = (await register(api, seller, buyer, 3_000)).json()["id"]
    by_operator = await api.operator.post(f"/v1/invoices/{other}/void")
    assert by_operator.status_code == 200
    assert by_operator.json()["status"] == "voided"


async def test_bad_input_is_a_clear_4xx(api: Api) -> None:
    seller = await api.member("seller", ["supplier"])
    buyer = await api.member("buyer", ["core_enterprise"])
    now = await api.chain_time()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"status": "confirmed"}, 422, "invalid_request"),  # mass assignment
        ({"seller": buyer.address}, 422, "invalid_request"),
        ({"amount": 0}, 422, "invalid_request"),
        ({"amount": 2**128}, 422, "invalid_request"),
        ({"amount": "12.5"}, 422, "invalid_request"),
        ({"buyer": "0x123"}, 422, "invalid_request"),
        ({"document_sha256": "zz" * 32}, 422, "invalid_request"),
        ({"issue_date": "1969-12-31T00:00:00Z"}, 422, "invalid_request"),
        ({"issue_date": "not a date"}, 422, "invalid_request"),
        ({"seller_tax_id": " -- "}, 422, "seller_tax_id_invalid"),
        ({"number": "x" * 65}, 422, "invalid_request"),
        ({"number": "12\ud80034"}, 422, "invalid_request"),  # a lone surrogate
        ({"seller_tax_id": "9131\x000000"}, 400, "control_character"),  # docs/api.md, Input
        ({"issue_date": now + 30 * DAY}, 422, "issue_date_invalid"),
        ({"buyer": seller.address}, 422, "buyer_invalid"),
    ]
    for over, status, code in cases:
        body = {**invoice_body(buyer, 10, now - 60), **over}
        problem(await post_json(seller, "/v1/invoices", body), status, code)
    problem(
        await buyer.post("/v1/invoices", invoice_body(seller, 10, now - 60)), 403, "role_missing"
    )
    missing_key = await seller.http.post("/v1/invoices", json=invoice_body(buyer, 10, now - 60))
    problem(missing_key, 422, "invalid_request")


async def test_lists_filter_page_and_export_csv(api: Api) -> None:
    seller = await api.member("lister", ["supplier"])
    buyer = await api.member("list-buyer", ["core_enterprise"])
    other_buyer = await api.member("list-buyer-2", ["core_enterprise", "supplier"])
    made = [(await register(api, seller, buyer, 100 + i)).json()["id"] for i in range(3)]
    to_other = (await register(api, seller, other_buyer, 7)).json()["id"]
    confirmed = (await buyer.post(f"/v1/invoices/{made[0]}/confirm")).json()
    assert confirmed["status"] == "confirmed"

    as_seller = (await seller.get("/v1/invoices", role="seller")).json()["items"]
    assert [i["id"] for i in as_seller] == [*made, to_other]  # chain order
    assert (await seller.get("/v1/invoices", role="buyer")).json()["items"] == []
    cp = (await seller.get("/v1/invoices", counterparty=other_buyer.address)).json()["items"]
    assert [i["id"] for i in cp] == [to_other]
    regd = (await buyer.get("/v1/invoices", role="buyer", status="registered")).json()["items"]
    assert [i["id"] for i in regd] == made[1:]

    pages: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, "role": "seller"}
        if cursor:
            params["cursor"] = cursor
        page = (await seller.get("/v1/invoices", **params)).json()
        pages += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [*made, to_other]
    problem(await seller.get("/v1/invoices", cursor="bm9wZQ"), 422, "cursor_invalid")
    problem(await seller.get("/v1/invoices", role="owner"), 422, "invalid_request")

    exported = await seller.get("/v1/invoices", role="seller", format="csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["id"] for r in rows] == [*made, to_other]
    assert rows[0]["status"] == "confirmed"
    assert rows[0]["amount"] == "100"
    assert rows[0]["number"] == as_seller[0]["number"]
    assert {"id", "seller", "buyer", "number", "amount", "issue_date", "status"} <= set(rows[0])
    limited = await seller.get("/v1/invoices", role="seller", format="csv", limit=1)
    assert len(list(csv.DictReader(io.StringIO(limited.text)))) == 1
    assert limited.headers["x-next-cursor"]


async def test_replayed_key_gives_the_same_answer_and_one_transaction(api: Api) -> None:
    seller = await api.member("seller", ["supplier"])
    buyer = await api.member("buyer", ["core_enterprise"])
    body = invoice_body(buyer, 77, await api.chain_time() - 60)
    key = unique("idem-")
    first = await seller.post("/v1/invoices", body, key=key)
    second = await seller.post("/v1/invoices", body, key=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    changed = await seller.post("/v1/invoices", {**body, "amount": 78}, key=key)
    assert changed.status_code in (409, 422), changed.text
    assert changed.json()["code"] == "idempotency_key_reused"
    # One registration: the seller's list holds the invoice once.
    listed = (await seller.get("/v1/invoices", role="seller", limit=200)).json()["items"]
    assert [i["id"] for i in listed].count(first.json()["id"]) == 1


@pytest.mark.postgres
async def test_the_same_reads_on_postgresql(pg_stack: Stack) -> None:
    """Invoices, payables, pieces, their cursors, tree, history and CSV on PostgreSQL too."""
    # The payable and claim helpers import this module's: import them here, not at the top.

    api = await make_api(pg_stack)
    try:
        core = await core_with_limit(api, "core", 1_000_000)
        s1 = await api.member("s1", ["supplier"])
        s2 = await api.member("s2", ["supplier"])
        p = await issue(api, core, s1, 9_000)
        split = await transfer(s1, p["root_claim_id"], s2, 4_000)
        assert split.status_code == 201, split.text
        whole = await transfer(s2, split.json()["claim_id"], s1, 4_000)
        assert whole.json()["kind"] == "transfer"

        invoices = (await s1.get("/v1/invoices", role="seller", limit=1)).json()
        assert invoices["items"][0]["status"] == "used"
        after = await s1.get("/v1/invoices", role="seller", cursor=invoices["next_cursor"])
        assert after.json() == {"items": [], "next_cursor": None}
        claims = (await core.get("/v1/claims", payable_id=p["id"], limit=1)).json()
        rest = await core.get("/v1/claims", payable_id=p["id"], cursor=claims["next_cursor"])
        ids = [c["id"] for c in claims["items"] + rest.json()["items"]]
        assert ids == [p["root_claim_id"], split.json()["claim_id"]]
        assert [
            c["holder"] for c in (await s1.get("/v1/claims", holder=s1.address)).json()["items"]
        ] == [s1.address, s1.address]
        tree = (await core.get(f"/v1/payables/{p['id']}/tree")).json()
        assert [n["id"] for n in tree["root"]["children"]] == [split.json()["claim_id"]]
        history = (await s1.get(f"/v1/claims/{split.json()['claim_id']}/history")).json()
        assert [e["event"] for e in history["items"]] == ["ClaimSplit", "ClaimTransferred"]
        exported = await core.get("/v1/payables", format="csv")
        assert [int(r["id"]) for r in csv.DictReader(io.StringIO(exported.text))] == [p["id"]]
    finally:
        await api.close()
