"""The audit resource through the HTTP API on a real platform (anvil, indexer, API server).

A small book is made through the API (``book``): a core enterprise with a program limit above
2^53, a payable partly financed by a bank, one declined by its supplier, one split, overdue and
partly settled. Then:

- the events feed shows onboarding (MemberRegistered, RoleGranted with the creation's
  transaction hash), filters by name, contract, object, block and time, pages in chain order
  with cursors that neither repeat nor skip, keeps large integers exact, and exports CSV;
- a member reads only events about what it is a party to: no scope is 403
  ``audit_scope_required``, another account 403 ``audit_account_forbidden``, an object it
  cannot see 404; a tier-2 holder naming the payable sees its own split and the payable's
  lifecycle, not the supplier's invoice;
- exposure per obligor (issued, outstanding, overdue, financed, program limit) as the auditor,
  the core and the bank see it;
- reconciliation is ok on a healthy mirror, reports the field of a row changed in the database
  behind the indexer's back, and is ok again once it is restored;
- the audit log holds every mutating request once, refused ones too (401, 403, 409, 422), with
  filters and CSV; ``verify`` is ok, and points at a record whose status was changed or that
  was deleted; 20 concurrent mutating requests leave an intact chain.

One test runs the audit log's concurrency, the feed and exposure on PostgreSQL (several
workers share the chain's head row there; exposure is summed in SQL). The last one stops the
node: reconciliation answers 503 ``chain_unavailable`` within seconds, the other reads go on.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.api.deps import encode_cursor
from backend.models import AuditRecord
from bench.stack import Stack
from db.types import table_of
from indexer import models as m
from ledger.anvil import dev_private_keys, rpc_call
from tests.support.api import GRACE_DAYS, KYC_UNTIL, Api, Member, issue, make_api, problem, transfer

DAY = 86_400
#: Above 2^53: a JSON reader using doubles would change it.
BIG_LIMIT = 10**25
CREDIT = 10**9
REGISTRATION = "ZD-2026-0000789"


@dataclass
class Book:
    api: Api
    core: Member
    sup: Member
    sup2: Member
    bank: Member
    auditor: Member
    outsider: Member
    payable_a: dict[str, Any]
    payable_b: dict[str, Any]
    payable_c: dict[str, Any]
    financing_id: int
    piece_c2: int


async def mirror_caught_up(stack: Stack, api: Api) -> None:
    """Wait until the indexer has mirrored the node's head."""
    deadline = time.monotonic() + 30
    while True:
        health = (await api.operator.get("/health")).json()
        if health["lag_blocks"] == 0:
            return
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def book(stack: Stack, api: Api) -> Book:
    core = await api.member("core", ["core_enterprise"])
    sup = await api.member("sup", ["supplier"])
    sup2 = await api.member("sup2", ["supplier"])
    bank = await api.member("bank", ["financier"])
    auditor = await api.member("auditor", ["auditor"])
    outsider = await api.member("outsider", ["supplier"])
    r = await api.operator.put(
        f"/v1/members/{core.address}/program-limit", {"program_limit": BIG_LIMIT}
    )
    assert r.status_code == 200, r.text
    r = await bank.put(
        f"/v1/credit-lines/{core.address}", {"limit": CREDIT, "registration_no": REGISTRATION}
    )
    assert r.status_code == 200, r.text

    # A: 1,000,000 of which the bank finances 300,000.
    a = await issue(api, core, sup, 1_000_000, due_in_s=200 * DAY)
    r = await sup.post(
        "/v1/financing-requests",
        {"claim_id": a["root_claim_id"], "financier": bank.address, "amount": 300_000},
    )
    assert r.status_code == 201, r.text
    financing_id = int(r.json()["id"])
    r = await bank.post(
        f"/v1/financing-requests/{financing_id}/approve",
        {"annual_rate_bps": 600, "disbursement_ref": "BANK-TX-1"},
    )
    assert r.status_code == 200, r.text
    # B: declined by its supplier, so not issued any more.
    b = await issue(api, core, sup, 500_000, due_in_s=200 * DAY)
    r = await sup.post(f"/v1/payables/{b['id']}/cancel")
    assert r.status_code == 200, r.text
    # C: 200,000, 50,000 passed to sup2, overdue, sup2's piece paid.
    c = await issue(api, core, sup, 200_000, due_in_s=2 * DAY)
    r = await transfer(sup, c["root_claim_id"], sup2, 50_000)
    assert r.status_code == 201, r.text
    piece_c2 = int(r.json()["claim_id"])
    api.advance_time(2 * DAY + GRACE_DAYS * DAY + 120)
    await mirror_caught_up(stack, api)
    r = await sup2.post(f"/v1/payables/{c['id']}/overdue")
    assert r.status_code == 200, r.text
    r = await core.post(
        f"/v1/payables/{c['id']}/settlements",
        {"items": [{"claim_id": piece_c2, "payment_ref": "PAY-1"}]},
    )
    assert r.status_code == 200, r.text
    return Book(api, core, sup, sup2, bank, auditor, outsider, a, b, c, financing_id, piece_c2)


async def all_pages(reader: Member, path: str, /, limit: int = 200, **params: Any) -> list[Any]:
    """Every item of a list, page by page; checks the cursor ends the walk."""
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(1000):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await reader.get(path, **query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def operator_address() -> str:
    """The operator: the deployer, anvil's first dev account on the local chain."""
    return str(Account.from_key(dev_private_keys()[0]).address)


def position(event: dict[str, Any]) -> tuple[int, int]:
    return event["block_number"], event["log_index"]


def parse_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


# -- the events feed -------------------------------------------------------------------------


async def test_onboarding_shows_in_the_feed(api: Api, book: Book) -> None:
    r = await api.operator.post(
        "/v1/members",
        {"name": "newcomer", "roles": ["supplier", "financier"], "kyc_expires_at": KYC_UNTIL},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    await mirror_caught_up(api.stack, api)
    r = await book.auditor.get("/v1/audit/events", account=made["address"])
    assert r.status_code == 200, r.text
    events = r.json()["items"]
    names = [e["event"] for e in events]
    assert names.count("MemberRegistered") == 1
    assert names.count("RoleGranted") == 2  # supplier and financier
    registered = next(e for e in events if e["event"] == "MemberRegistered")
    assert registered["tx_hash"] == made["tx_hash"]
    assert registered["block_number"] == made["block_number"]
    assert registered["contract"] == "MemberRegistry"
    assert registered["args"]["account"] == made["address"]
    assert registered["args"]["kycExpiresAt"] == int(datetime.fromisoformat(KYC_UNTIL).timestamp())
    assert registered["block_hash"].startswith("0x")
    assert len(registered["block_hash"]) == 66
    assert datetime.fromisoformat(registered["block_time"]).tzinfo is not None
    assert registered["block_time"].endswith("Z")
    # The same, read as the operator, and as the member itself.
    key = made["api_key"]
    async with api.stack.client(key) as newcomer:
        mine = await newcomer.get("/v1/audit/events", params={"account": made["address"]})
    assert mine.status_code == 200, mine.text
    assert mine.json()["items"] == events
    by_operator = await api.operator.get("/v1/audit/events", account=made["address"])
    assert by_operator.json()["items"] == events


async def test_pages_in_chain_order_without_repeats_or_gaps(book: Book) -> None:
    whole = await all_pages(book.auditor, "/v1/audit/events")
    assert len(whole) > 40
    keys = [position(e) for e in whole]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    for limit in (1, 7, 50):
        paged = await all_pages(book.auditor, "/v1/audit/events", limit=limit)
        # The feed grows only when someone writes; nobody writes during this test.
        assert paged == whole
    # A cursor continues after the last item it names, also across filters.
    first = (await book.auditor.get("/v1/audit/events", limit=5)).json()
    rest = await all_pages(book.auditor, "/v1/audit/events", cursor=first["next_cursor"])
    assert first["items"] + rest == whole


async def test_filters(book: Book) -> None:
    whole = await all_pages(book.auditor, "/v1/audit/events")

    async def feed(**params: Any) -> list[dict[str, Any]]:
        return await all_pages(book.auditor, "/v1/audit/events", **params)

    granted = await feed(event="RoleGranted")
    assert granted == [e for e in whole if e["event"] == "RoleGranted"]
    assert granted
    ledger = await feed(contract="ClaimLedger")
    assert ledger == [e for e in whole if e["contract"] == "ClaimLedger"]
    assert {e["event"] for e in ledger} >= {"PayableIssued", "ClaimSplit", "ClaimSettled"}

    c = book.payable_c
    about_c = await feed(payable_id=c["id"])
    assert {e["event"] for e in about_c} >= {
        "PayableIssued",
        "ClaimSplit",
        "PayableOverdue",
        "ClaimSettled",
    }
    assert all(e["args"]["payableId"] == c["id"] for e in about_c)
    piece = await feed(claim_id=book.piece_c2)
    assert [e["event"] for e in piece] == ["ClaimSplit", "ClaimSettled"]
    financing = await feed(financing_id=book.financing_id)
    assert [e["event"] for e in financing] == ["FinancingApplied", "FinancingApproved"]
    invoice_id = c["invoice_ids"][0]
    invoice = await feed(invoice_id=invoice_id)
    assert [e["event"] for e in invoice] == ["InvoiceRegistered", "InvoiceConfirmed", "InvoiceUsed"]
    assert invoice == await feed(invoice_id=invoice_id.upper().replace("0X", "0x"))

    low, high = whole[10]["block_number"], whole[-10]["block_number"]
    blocks = await feed(from_block=low, to_block=high)
    assert blocks == [e for e in whole if low <= e["block_number"] <= high]
    t0, t1 = whole[10]["block_time"], whole[-10]["block_time"]
    times = await feed(from_time=t0, to_time=t1)
    assert times == [e for e in whole if t0 <= e["block_time"] <= t1]
    # Together: every filter must hold.
    both = await feed(event="ClaimSplit", payable_id=c["id"], from_block=low)
    assert both == [e for e in about_c if e["event"] == "ClaimSplit" and e["block_number"] >= low]
    assert await feed(event="NoSuchEvent") == []


async def test_large_integers_stay_exact(book: Book) -> None:
    r = await book.auditor.get(
        "/v1/audit/events", event="ProgramLimitSet", account=book.core.address
    )
    assert r.status_code == 200, r.text
    events = r.json()["items"]
    assert events
    assert all(e["args"]["programLimit"] == BIG_LIMIT for e in events)
    assert f'"programLimit":{BIG_LIMIT}' in r.text.replace(" ", "")


async def test_bad_input_is_a_clear_4xx(book: Book) -> None:
    path = "/v1/audit/events"
    problem(await book.auditor.get(path, from_block=9, to_block=3), 422, "range_invalid")
    problem(
        await book.auditor.get(
            path, from_time="2030-01-02T00:00:00Z", to_time="2030-01-01T00:00:00Z"
        ),
        422,
        "range_invalid",
    )
    for params in (
        {"from_block": -1},
        {"from_block": 2**64},
        {"claim_id": 0},
        {"claim_id": "x"},
        {"event": "Drop;Table"},
        {"invoice_id": "0x12"},
        {"account": "0xnot"},
        {"from_time": "yesterday"},
        {"format": "xml"},
        {"limit": 0},
        {"limit": 201},
    ):
        problem(await book.auditor.get(path, **params), 422, "invalid_request")
    for cursor in ("!!", encode_cursor("abc"), encode_cursor([1]), encode_cursor([2**70, 0])):
        problem(await book.auditor.get(path, cursor=cursor), 422, "cursor_invalid")
    problem(
        await book.auditor.get("/v1/audit/log", cursor=encode_cursor([1, 2])), 422, "cursor_invalid"
    )
    problem(
        await book.auditor.get("/v1/audit/exposure", cursor=encode_cursor(5)), 422, "cursor_invalid"
    )


# -- what a member may read ------------------------------------------------------------------


async def test_a_member_reads_only_what_it_is_party_to(book: Book) -> None:
    path = "/v1/audit/events"
    out = book.outsider
    problem(await out.get(path), 403, "audit_scope_required")
    problem(await out.get(path, event="PayableIssued"), 403, "audit_scope_required")
    problem(await out.get(path, account=book.sup.address), 403, "audit_account_forbidden")
    problem(await out.get(path, payable_id=book.payable_a["id"]), 404, "payable_not_found")
    problem(await out.get(path, claim_id=book.piece_c2), 404, "claim_not_found")
    problem(await out.get(path, financing_id=book.financing_id), 404, "financing_not_found")
    invoice = book.payable_a["invoice_ids"][0]
    problem(await out.get(path, invoice_id=invoice), 404, "invoice_not_found")
    problem(await out.get(path, payable_id=10**9), 404, "payable_not_found")

    own = await all_pages(out, path, account=out.address)
    assert {e["event"] for e in own} == {"MemberRegistered", "RoleGranted"}
    assert all(e["args"]["account"] == out.address for e in own)

    # The supplier (a party of the whole tree) sees everything about its payable …
    c = book.payable_c
    everything = await all_pages(book.auditor, path, payable_id=c["id"])
    assert await all_pages(book.sup, path, payable_id=c["id"]) == everything
    assert await all_pages(book.core, path, payable_id=c["id"]) == everything
    # … the tier-2 holder its own piece and the payable's lifecycle, not the invoice behind it.
    seen = await all_pages(book.sup2, path, payable_id=c["id"])
    assert {e["event"] for e in seen} == {
        "PayableIssued",
        "ClaimSplit",
        "PayableOverdue",
        "ClaimSettled",
    }
    assert "InvoiceUsed" in {e["event"] for e in everything}
    assert all(e in everything for e in seen)
    problem(await book.sup2.get(path, invoice_id=c["invoice_ids"][0]), 404, "invoice_not_found")
    # The financing's parties, not others.
    f = await all_pages(book.bank, path, financing_id=book.financing_id)
    assert [e["event"] for e in f] == ["FinancingApplied", "FinancingApproved"]
    assert await all_pages(book.sup, path, financing_id=book.financing_id) == f
    problem(await book.sup2.get(path, financing_id=book.financing_id), 404, "financing_not_found")


async def test_auditor_only_reads(book: Book) -> None:
    for member in (book.sup, book.core, book.bank, book.outsider):
        for path in ("/v1/audit/reconciliation", "/v1/audit/log", "/v1/audit/log/verify"):
            problem(await member.get(path), 403, "role_missing")
    r = await book.auditor.post("/v1/members/" + book.sup.address + "/suspend", {"reason": "x"})
    problem(r, 403, "auditor_read_only")


# -- exposure ----------------------------------------------------------------------------------


async def test_exposure_per_obligor(book: Book) -> None:
    expected = {
        "obligor": book.core.address,
        "obligor_name": "core",
        "financier": None,
        "program_limit": BIG_LIMIT,
        "issued": 1_200_000,  # A and C; B was declined
        "outstanding": 1_150_000,  # C's 50,000 paid
        "overdue": 150_000,
        "financed": 300_000,
        "exposure_limit": None,
        "over_limit": False,  # outstanding within the program limit (29ceab3)
    }
    everyone = await all_pages(book.auditor, "/v1/audit/exposure")
    assert expected in everyone
    assert [(r["obligor"], r["financier"]) for r in everyone] == sorted(
        (r["obligor"], r["financier"]) for r in everyone
    )
    paged = await all_pages(book.auditor, "/v1/audit/exposure", limit=1)
    assert paged == everyone
    only = await book.auditor.get("/v1/audit/exposure", obligor=book.core.address)
    assert only.json()["items"] == [expected]

    assert (await book.core.get("/v1/audit/exposure")).json()["items"] == [expected]
    bank_row = {
        **expected,
        "financier": book.bank.address,
        "program_limit": None,
        "issued": None,
        "outstanding": None,
        "overdue": None,
        "exposure_limit": CREDIT,
    }
    assert (await book.bank.get("/v1/audit/exposure")).json()["items"] == [bank_row]
    by_auditor = await book.auditor.get("/v1/audit/exposure", financier=book.bank.address)
    assert by_auditor.json()["items"] == [bank_row]
    problem(
        await book.bank.get("/v1/audit/exposure", financier=book.sup.address),
        403,
        "audit_account_forbidden",
    )
    problem(await book.sup.get("/v1/audit/exposure"), 403, "role_missing")

    exported = await book.auditor.get("/v1/audit/exposure", format="csv")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    header, rows = parse_csv(exported.text)
    assert header == list(expected)
    assert len(rows) == len(everyone)
    row = next(r for r in rows if r["obligor"] == book.core.address)
    assert row["program_limit"] == str(BIG_LIMIT)
    assert row["financier"] == ""
    assert row["financed"] == "300000"


# -- reconciliation --------------------------------------------------------------------------


async def test_reconciliation_finds_a_tampered_row(book: Book, db: AsyncEngine) -> None:
    r = await book.auditor.get("/v1/audit/reconciliation")
    assert r.status_code == 200, r.text
    healthy = r.json()
    assert healthy["ok"] is True
    assert healthy["differences"] == []
    assert healthy["differences_total"] == 0
    assert healthy["checked"]["payable"] >= 6  # two views per payable
    assert healthy["checked"]["claim"] >= 5
    assert healthy["checked"]["financing"] >= 1

    # Payable B is cancelled: nothing on chain changes its root piece, so the indexer leaves
    # the row alone while it is wrong.
    claim_id = book.payable_b["root_claim_id"]
    claims = table_of(m.Claim)
    async with db.begin() as conn:
        holder = (
            await conn.execute(select(claims.c.holder).where(claims.c.id == claim_id))
        ).scalar_one()
        await conn.execute(
            update(claims).where(claims.c.id == claim_id).values(holder=book.outsider.address)
        )
    try:
        r = await book.api.operator.get("/v1/audit/reconciliation")
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["ok"] is False
        assert report["differences_total"] == 1
        assert report["differences"] == [
            {
                "kind": "claim",
                "key": str(claim_id),
                "field": "holder",
                "mirror": book.outsider.address,
                "chain": holder,
            }
        ]
        capped = (await book.auditor.get("/v1/audit/reconciliation", limit=0)).json()
        assert capped["differences"] == []
        assert capped["differences_total"] == 1
        assert capped["ok"] is False
    finally:
        async with db.begin() as conn:
            await conn.execute(update(claims).where(claims.c.id == claim_id).values(holder=holder))
    again = (await book.auditor.get("/v1/audit/reconciliation")).json()
    assert again["ok"] is True
    assert again["differences_total"] == 0


# -- the audit log ---------------------------------------------------------------------------


async def log_of(auditor: Member, **filters: Any) -> list[dict[str, Any]]:
    return await all_pages(auditor, "/v1/audit/log", **filters)


def by_key(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r for r in records if r["idempotency_key"] == key]


async def test_every_mutating_request_is_recorded_once(api: Api, book: Book) -> None:
    # Milliseconds, as the log keeps them: no record of an earlier test falls in the window.
    now = datetime.now(UTC)
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)
    keys = {name: f"audit-{name}-{time.time_ns()}" for name in ("401", "422", "409", "200", "403")}
    async with api.stack.client("tf_000000000000_not-a-key") as stranger:
        r = await stranger.post("/v1/members", json={"name": "x"}, headers=Stack.idem(keys["401"]))
    problem(r, 401, "invalid_api_key")
    problem(
        await api.operator.post("/v1/members", {"name": ""}, key=keys["422"]),
        422,
        "invalid_request",
    )
    cancelled = f"/v1/payables/{book.payable_b['id']}/cancel"
    problem(await book.sup.post(cancelled, key=keys["409"]), 409, "payable_status_invalid")
    r = await api.operator.put(
        f"/v1/members/{book.core.address}/program-limit",
        {"program_limit": BIG_LIMIT},
        key=keys["200"],
    )
    assert r.status_code == 200, r.text
    written = r.json()
    problem(await book.auditor.post(cancelled, key=keys["403"]), 403, "auditor_read_only")
    # Reads are not audited.
    await book.sup.get("/v1/payables")

    records = await log_of(book.auditor)
    operator = operator_address()
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(1, len(records) + 1))
    expected = {
        "401": ("POST", "/v1/members", 401, "invalid_api_key", None),
        "422": ("POST", "/v1/members", 422, "invalid_request", operator),
        "409": ("POST", cancelled, 409, "payable_status_invalid", book.sup.address),
        "200": (
            "PUT",
            f"/v1/members/{book.core.address}/program-limit",
            200,
            None,
            operator,
        ),
        "403": ("POST", cancelled, 403, "auditor_read_only", book.auditor.address),
    }
    for name, (method, path, status, code, member) in expected.items():
        (record,) = by_key(records, keys[name])
        assert (record["method"], record["path"], record["status"], record["code"]) == (
            method,
            path,
            status,
            code,
        ), record
        assert record["member"] == member
        assert len(record["request_sha256"]) == 64
    (ok,) = by_key(records, keys["200"])
    assert ok["tx_hashes"] == [written["tx_hash"]]
    # A refusal cites the transaction it broadcast, if any (SPEC AP-3): with a cached gas
    # estimate the chain refuses it when mined, so the cited one is a mined, reverted one.
    cited = by_key(records, keys["409"])[0]["tx_hashes"]
    assert len(cited) <= 1
    for tx_hash in cited:
        receipt = rpc_call(api.stack.rpc_url, "eth_getTransactionReceipt", [tx_hash])
        assert receipt is not None, tx_hash
        assert int(receipt["status"], 16) == 0, receipt

    # Filters.
    mine = await log_of(book.auditor, member=book.sup.address, status=409)
    assert by_key(mine, keys["409"])
    assert all(r["member"] == book.sup.address and r["status"] == 409 for r in mine)
    puts = await log_of(book.auditor, method="PUT")
    assert all(r["method"] == "PUT" for r in puts)
    assert by_key(puts, keys["200"])
    refused = await log_of(book.auditor, code="auditor_read_only")
    assert by_key(refused, keys["403"])
    window = await log_of(
        book.auditor,
        from_time=started.isoformat(),
        to_time=(datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
    )
    assert {r["idempotency_key"] for r in window} == set(keys.values())
    assert await log_of(book.auditor, to_time="2000-01-01T00:00:00Z") == []

    # CSV: a header row and the same records.
    exported = await book.auditor.get("/v1/audit/log", format="csv", limit=200)
    assert exported.status_code == 200, exported.text
    header, rows = parse_csv(exported.text)
    assert header[:3] == ["seq", "at", "member"]
    assert "hash" in header
    assert [int(r["seq"]) for r in rows] == seqs[:200]
    assert rows[0]["hash"] == records[0]["hash"]
    assert json.loads(rows[0]["tx_hashes"]) == records[0]["tx_hashes"]

    verified = (await book.auditor.get("/v1/audit/log/verify")).json()
    assert {k: verified[k] for k in ("ok", "records", "first_bad_seq", "reason")} == {
        "ok": True,
        "records": len(records),
        "first_bad_seq": None,
        "reason": None,
    }
    # Compared with the anchors on chain (tests/api/test_audit_anchors.py tampers with them).
    assert verified["anchors_compared"] is True
    assert verified["anchors_matched"] == verified["anchors_checked"]
    assert verified["anchor_mismatches"] == []


async def test_verify_finds_a_changed_and_a_deleted_record(book: Book, db: AsyncEngine) -> None:
    log = table_of(AuditRecord)
    records = await log_of(book.auditor)
    target = records[len(records) // 2]["seq"]
    async with db.begin() as conn:
        original = dict(
            (await conn.execute(select(log).where(log.c.seq == target))).mappings().one()
        )
        await conn.execute(update(log).where(log.c.seq == target).values(status=299))
    try:
        verified = (await book.auditor.get("/v1/audit/log/verify")).json()
        assert verified["ok"] is False
        assert verified["first_bad_seq"] == target
        assert verified["reason"] == "the record was changed"
        assert verified["records"] == target - 1
    finally:
        async with db.begin() as conn:
            await conn.execute(
                update(log).where(log.c.seq == target).values(status=original["status"])
            )
    assert (await book.auditor.get("/v1/audit/log/verify")).json()["ok"] is True

    async with db.begin() as conn:
        await conn.execute(delete(log).where(log.c.seq == target))
    try:
        verified = (await book.auditor.get("/v1/audit/log/verify")).json()
        assert verified["ok"] is False
        assert verified["first_bad_seq"] == target
        assert verified["reason"] == "a record is missing"
    finally:
        async with db.begin() as conn:
            await conn.execute(log.insert().values(**original))
    assert (await book.auditor.get("/v1/audit/log/verify")).json()["ok"] is True


async def concurrent_writes(api: Api, member: Member, auditor: Member, count: int = 20) -> None:
    """``count`` mutating requests at once, accepted and refused, then an intact chain with
    one record each."""
    before = len(await log_of(auditor))
    tag = time.time_ns()
    keys = [f"burst-{tag}-{i}" for i in range(count)]

    async def one(i: int) -> int:
        if i % 4 == 0:  # refused: invalid body
            r = await member.post(f"/v1/members/{member.address}/api-keys", {"x": 1}, key=keys[i])
        elif i % 4 == 1:  # refused: the auditor never writes
            r = await auditor.post(
                f"/v1/members/{member.address}/suspend", {"reason": "r"}, key=keys[i]
            )
        else:  # accepted: a new API key (no transaction, so all of them run at once)
            r = await member.post(
                f"/v1/members/{member.address}/api-keys", {"label": f"k{i}"}, key=keys[i]
            )
        return r.status_code

    statuses = await asyncio.gather(*(one(i) for i in range(count)))
    assert sorted(set(statuses)) == [201, 403, 422]
    records = await log_of(auditor)
    assert len(records) == before + count
    assert sorted(r["idempotency_key"] for r in records[before:]) == sorted(keys)
    for prev, record in itertools.pairwise(records):
        assert record["prev_hash"] == prev["hash"]
        assert record["seq"] == prev["seq"] + 1
    verified = (await auditor.get("/v1/audit/log/verify")).json()
    assert verified["ok"] is True, verified
    assert verified["records"] == len(records)


async def test_the_chain_holds_under_concurrent_requests(api: Api, book: Book) -> None:
    await concurrent_writes(api, book.outsider, book.auditor)


async def test_events_csv_has_a_header_and_the_same_items(book: Book) -> None:
    params = {"payable_id": book.payable_c["id"], "limit": 3}
    page = (await book.auditor.get("/v1/audit/events", **params)).json()
    exported = await book.auditor.get("/v1/audit/events", format="csv", **params)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="events.csv"' in exported.headers["content-disposition"]
    assert exported.headers["x-next-cursor"] == page["next_cursor"]
    header, rows = parse_csv(exported.text)
    assert header == [
        "block_number",
        "block_hash",
        "block_time",
        "tx_hash",
        "log_index",
        "contract",
        "event",
        "args",
    ]
    assert len(rows) == len(page["items"]) == 3
    for row, item in zip(rows, page["items"], strict=True):
        assert int(row["block_number"]) == item["block_number"]
        assert int(row["log_index"]) == item["log_index"]
        assert row["tx_hash"] == item["tx_hash"]
        assert row["block_time"] == item["block_time"]
        assert row["event"] == item["event"]
        assert json.loads(row["args"]) == item["args"]
    # A member's export is as scoped as its JSON.
    problem(await book.outsider.get("/v1/audit/events", format="csv"), 403, "audit_scope_required")


@pytest.mark.postgres
async def test_the_audit_reads_on_postgresql(pg_stack: Stack) -> None:
    """The feed's visibility, exposure, reconciliation and the chain under concurrent
    requests, on PostgreSQL (the head row's lock orders appends there)."""
    api = await make_api(pg_stack)
    try:
        core = await api.member("core", ["core_enterprise"])
        sup = await api.member("sup", ["supplier"])
        sup2 = await api.member("sup2", ["supplier"])
        auditor = await api.member("auditor", ["auditor"])
        r = await api.operator.put(
            f"/v1/members/{core.address}/program-limit", {"program_limit": BIG_LIMIT}
        )
        assert r.status_code == 200, r.text
        p = await issue(api, core, sup, 9_000)
        split = await transfer(sup, p["root_claim_id"], sup2, 4_000)
        assert split.status_code == 201, split.text

        whole = await all_pages(auditor, "/v1/audit/events")
        assert await all_pages(auditor, "/v1/audit/events", limit=3) == whole
        seen = await all_pages(sup2, "/v1/audit/events", payable_id=p["id"])
        assert {e["event"] for e in seen} == {"PayableIssued", "ClaimSplit"}
        problem(await sup2.get("/v1/audit/events"), 403, "audit_scope_required")
        # Exposure is summed in SQL on PostgreSQL: a declined payable, and one overdue with a
        # piece paid, exercise every branch of the sums.
        declined = await issue(api, core, sup, 5_000)
        r = await sup.post(f"/v1/payables/{declined['id']}/cancel")
        assert r.status_code == 200, r.text
        late = await issue(api, core, sup, 1_000, due_in_s=DAY)
        piece = await transfer(sup, late["root_claim_id"], sup2, 400)
        assert piece.status_code == 201, piece.text
        api.advance_time(DAY + GRACE_DAYS * DAY + 120)
        await mirror_caught_up(pg_stack, api)
        r = await sup.post(f"/v1/payables/{late['id']}/overdue")
        assert r.status_code == 200, r.text
        paid = {"items": [{"claim_id": piece.json()["claim_id"], "payment_ref": "PAY-PG"}]}
        r = await core.post(f"/v1/payables/{late['id']}/settlements", paid)
        assert r.status_code == 200, r.text
        exposure = (await core.get("/v1/audit/exposure")).json()["items"]
        assert [
            (e["issued"], e["outstanding"], e["overdue"], e["program_limit"]) for e in exposure
        ] == [(10_000, 9_600, 600, BIG_LIMIT)]
        assert (await auditor.get("/v1/audit/exposure")).json()["items"] == exposure
        report = (await auditor.get("/v1/audit/reconciliation")).json()
        assert (report["ok"], report["differences_total"]) == (True, 0)
        await concurrent_writes(api, sup2, auditor)
    finally:
        await api.close()


async def test_without_the_node_reconciliation_is_503_and_the_rest_still_reads(
    stack: Stack, book: Book
) -> None:
    """Last on this module's stack: it stops the node."""
    stack.node.stop()
    started = time.monotonic()
    r = await book.auditor.get("/v1/audit/reconciliation")
    body = problem(r, 503, "chain_unavailable")
    assert time.monotonic() - started < 20  # a few quick retries, not the indexer's patience
    assert stack.rpc_url not in r.text
    assert "127.0.0.1" not in json.dumps(body)
    # Everything else reads the mirror and the log: auditors keep their view of the past.
    for path in ("/v1/audit/events", "/v1/audit/exposure", "/v1/audit/log", "/v1/audit/log/verify"):
        assert (await book.auditor.get(path)).status_code == 200, path
    # Payables too, their overdue clock (the chain's own view) left unknown rather than guessed.
    payables = await book.auditor.get("/v1/payables")
    assert payables.status_code == 200, payables.text
    clocked = [p for p in payables.json()["items"] if p["status"] in ("issued", "overdue")]
    assert clocked, payables.text
    assert all(p["overdue_from"] is None for p in clocked), payables.text
    # The log is walked without its anchors, and says so.
    verified = (await book.auditor.get("/v1/audit/log/verify")).json()
    assert verified["anchors_compared"] is False
    assert verified["anchors_checked"] is None
