"""Financing through the HTTP API on a real platform (anvil, indexer, API server).

The quote is what the desk accepts (approving with it succeeds, one unit off is refused
``discount_invalid``); applying locks the value (a second application over the rest is
``amount_exceeds_available``); approval moves the amount to the financier; rejection and
withdrawal unlock; an approval over the exposure limit is ``limit_exceeded``; parties see a
request, others get 404, auditors never write.

Everything goes through HTTP; the results are checked against the contracts' own views
(:class:`~ledger.bindings.Suite`), read directly from the node.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from bench.stack import Stack
from ledger.bindings import ClaimStatus
from ledger.deployment import DAY
from tests.support.api import Api, Ledger, Member, iso, problem

RATE_BPS = 600
REGISTRATION = "ZD-2026-0000456"


def days_to_maturity(due: int, now: int) -> int:
    return -(-(due - now) // DAY)


@dataclass
class Cast:
    api: Api
    chain: Ledger
    core: Member
    supplier: Member
    other: Member
    bank: Member
    bank2: Member
    auditor: Member


async def onboard(api: Api, chain: Ledger, program_limit: int = 10**15) -> Cast:
    """The members of a financing scenario, with a program limit and credit lines."""
    core = await api.member("core", ["core_enterprise"])
    cast = Cast(
        api,
        chain,
        core,
        await api.member("supplier", ["supplier"]),
        await api.member("other", ["supplier"]),
        await api.member("bank", ["financier"]),
        await api.member("bank2", ["financier"]),
        await api.member("auditor", ["auditor"]),
    )
    r = await api.operator.put(
        f"/v1/members/{core.address}/program-limit", {"program_limit": program_limit}
    )
    assert r.status_code == 200, r.text
    return cast


@pytest.fixture(scope="module")
async def cast(stack: Stack, api: Api) -> AsyncIterator[Cast]:
    async with Ledger.open(stack, api) as chain:
        made = await onboard(api, chain)
        r = await made.bank.put(
            f"/v1/credit-lines/{made.core.address}",
            {"limit": 10**12, "registration_no": REGISTRATION},
        )
        assert r.status_code == 200, r.text
        r = await made.bank2.put(f"/v1/credit-lines/{made.core.address}", {"limit": 1_000})
        assert r.status_code == 200, r.text
        yield made


async def apply(
    cast: Cast, claim_id: int, amount: int, financier: Member | None = None, **commit: Any
) -> Any:
    """Apply; ``commit``: the applicant's ``min_advance`` and ``recourse``."""
    r = await cast.supplier.post(
        "/v1/financing-requests",
        {
            "claim_id": claim_id,
            "financier": (financier or cast.bank).address,
            "amount": amount,
            **commit,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


# -- quotes ---------------------------------------------------------------------------------


async def test_quote_is_what_the_desk_accepts(cast: Cast) -> None:
    root, due = await cast.chain.payable(cast.core, cast.supplier, 1_000_000_00, 45 * DAY)
    amount = 600_000_00
    r = await cast.supplier.get(
        "/v1/financing-quotes",
        claim_id=root,
        amount=amount,
        financier=cast.bank.address,
        annual_rate_bps=RATE_BPS,
        fee_bps=15,
    )
    assert r.status_code == 200, r.text
    quote = r.json()
    now = await cast.api.chain_time()
    assert quote["term_days"] == days_to_maturity(due, now) == 45
    assert quote["discount"] == await cast.chain.suite.discount_for(amount, RATE_BPS, 45)
    assert quote["discount"] == -(-(amount * RATE_BPS * 45) // 3_600_000)
    assert quote["fees"] == -(-(amount * 15) // 10_000)
    assert quote["advance"] == amount - quote["discount"] - quote["fees"]
    assert quote["available"] == 1_000_000_00
    assert quote["auto_approval"]["would_approve"] is False  # bank has no policy
    assert datetime.fromisoformat(quote["due_date"]).timestamp() == due

    financing = await apply(cast, root, amount)
    assert financing["status"] == "applied"
    assert financing["advance"] is None
    assert financing["obligor"] == cast.core.address
    path = f"/v1/financing-requests/{financing['id']}/approve"
    terms = {
        "advance": quote["advance"],
        "discount": quote["discount"],
        "fees": quote["fees"],
        "annual_rate_bps": RATE_BPS,
        "disbursement_ref": "BANK-TX-0001",
    }
    for delta in (1, -1):  # one unit either way is not the convention
        off = {**terms, "discount": terms["discount"] + delta, "advance": terms["advance"] - delta}
        problem(await cast.bank.post(path, off), 422, "discount_invalid")
    r = await cast.bank.post(path, terms)
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "approved"
    assert (approved["advance"], approved["discount"], approved["fees"]) == (
        quote["advance"],
        quote["discount"],
        quote["fees"],
    )
    assert approved["annual_rate_bps"] == RATE_BPS
    assert approved["recourse"] is False
    # The financing's own number under the credit line's programme (a number backs one
    # financing only), as text; the disbursement reference as SHA-256.
    own_number = f"{REGISTRATION}-{financing['id']}"
    assert approved["registration_no"] == own_number
    assert approved["disbursement_ref"] == "0x" + hashlib.sha256(b"BANK-TX-0001").hexdigest()
    assert approved["tx_hash"].startswith("0x")
    assert approved["block_number"] > 0

    # The amount moved to the financier in the same transaction.
    financed = await cast.chain.suite.claim(approved["financed_claim_id"])
    assert financed.holder == cast.bank.address
    assert financed.amount == amount
    assert financed.status == ClaimStatus.FINANCED
    source = await cast.chain.suite.claim(root)
    assert (source.amount, source.locked_amount) == (1_000_000_00 - amount, 0)
    on_chain = await cast.chain.suite.financing(financing["id"])
    assert on_chain.registration_no == own_number.encode().ljust(32, b"\0")

    r = await cast.bank.get("/v1/credit-lines")
    assert r.status_code == 200, r.text
    (line,) = r.json()["items"]
    assert line["obligor"] == cast.core.address
    assert line["outstanding"] == amount
    assert line["limit"] == 10**12
    assert line["available"] == 10**12 - amount
    assert line["registration_no"] == REGISTRATION


async def test_rate_and_fees_alone_give_the_terms(cast: Cast) -> None:
    root, due = await cast.chain.payable(cast.core, cast.supplier, 50_000_00, 30 * DAY)
    financing = await apply(cast, root, 50_000_00, recourse=True)
    r = await cast.bank.post(
        f"/v1/financing-requests/{financing['id']}/approve",
        {"annual_rate_bps": 450, "fees": 1_00, "recourse": True, "registration_no": "登记-0001"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    days = days_to_maturity(due, await cast.api.chain_time())
    assert body["discount"] == await cast.chain.suite.discount_for(50_000_00, 450, days)
    assert body["advance"] == 50_000_00 - body["discount"] - 1_00
    assert body["recourse"] is True
    assert body["registration_no"] == "登记-0001"


# -- locks, decisions, limits ---------------------------------------------------------------


async def test_apply_locks_the_value(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 10_000, 30 * DAY)
    first = await apply(cast, root, 7_000)
    r = await cast.supplier.post(
        "/v1/financing-requests",
        {"claim_id": root, "financier": cast.bank2.address, "amount": 3_001},
    )
    problem(r, 409, "amount_exceeds_available")
    quote = await cast.supplier.get(
        "/v1/financing-quotes",
        claim_id=root,
        amount=3_000,
        financier=cast.bank.address,
        annual_rate_bps=RATE_BPS,
    )
    assert quote.json()["available"] == 3_000
    claim = await cast.chain.suite.claim(root)
    assert (claim.locked_amount, claim.status) == (7_000, ClaimStatus.LOCKED)

    # Listing: the applicant's and the financier's views, filtered.
    mine = await cast.supplier.get("/v1/financing-requests", claim_id=root, role="applicant")
    assert [f["id"] for f in mine.json()["items"]] == [first["id"]]
    theirs = await cast.bank.get("/v1/financing-requests", status="applied", role="financier")
    assert first["id"] in [f["id"] for f in theirs.json()["items"]]
    none = await cast.bank2.get("/v1/financing-requests", claim_id=root)
    assert none.json()["items"] == []


async def test_reject_and_withdraw_unlock(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 20_000, 30 * DAY)
    financing = await apply(cast, root, 20_000)
    base = f"/v1/financing-requests/{financing['id']}"
    problem(await cast.supplier.post(f"{base}/reject", {"reason": "x"}), 403, "role_missing")
    problem(await cast.bank.post(f"{base}/withdraw"), 403, "not_applicant")
    r = await cast.bank.post(f"{base}/reject", {"reason": "outside our sector"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert r.json()["reason_hash"] == "0x" + hashlib.sha256(b"outside our sector").hexdigest()
    problem(
        await cast.bank.post(f"{base}/reject", {"reason": "again"}), 409, "financing_not_pending"
    )

    again = await apply(cast, root, 20_000)  # the whole value is free again
    r = await cast.supplier.post(f"/v1/financing-requests/{again['id']}/withdraw")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "withdrawn"
    claim = await cast.chain.suite.claim(root)
    assert (claim.locked_amount, claim.status) == (0, ClaimStatus.ACTIVE)


async def test_expiry(cast: Cast) -> None:
    root, due = await cast.chain.payable(cast.core, cast.supplier, 5_000, 30 * DAY)
    now = await cast.api.chain_time()
    r = await cast.supplier.post(
        "/v1/financing-requests",
        {"claim_id": root, "financier": cast.bank.address, "amount": 5_000, "expires_at": iso(due)},
    )
    problem(r, 422, "expiry_invalid")  # it must lapse before the due date
    r = await cast.supplier.post(
        "/v1/financing-requests",
        {"claim_id": root, "financier": cast.bank.address, "amount": 5_000},
    )
    assert r.status_code == 201, r.text
    default = datetime.fromisoformat(r.json()["expires_at"]).timestamp()
    assert now + 7 * DAY - 60 <= default <= now + 7 * DAY + 60  # a week by default
    await cast.supplier.post(f"/v1/financing-requests/{r.json()['id']}/withdraw")

    r = await cast.supplier.post(
        "/v1/financing-requests",
        {
            "claim_id": root,
            "financier": cast.bank.address,
            "amount": 5_000,
            "expires_at": iso(now + 120),
        },
    )
    assert r.status_code == 201, r.text
    path = f"/v1/financing-requests/{r.json()['id']}/expire"
    problem(await cast.other.post(path), 404, "financing_not_found")
    problem(await cast.core.post(path), 409, "financing_not_expired")
    cast.api.advance_time(180)
    r = await cast.core.post(path)  # the obligor clears the lock (it settles later)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "expired"
    assert (await cast.chain.suite.claim(root)).locked_amount == 0


async def test_exposure_limit_is_the_chains(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 5_000, 30 * DAY)
    financing = await apply(cast, root, 5_000, financier=cast.bank2)  # bank2's limit: 1,000
    r = await cast.bank2.post(
        f"/v1/financing-requests/{financing['id']}/approve",
        {"annual_rate_bps": RATE_BPS, "registration_no": "ZD-1"},
    )
    problem(r, 409, "limit_exceeded")
    assert r.json()["chain_error"] == "FinancingExposureExceeded"
    assert (await cast.chain.suite.financing(financing["id"])).status == 1  # still Applied


async def test_registration_is_required_by_the_deployment(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 5_000, 30 * DAY)
    financing = await apply(cast, root, 500, financier=cast.bank2)  # no number on its line
    r = await cast.bank2.post(
        f"/v1/financing-requests/{financing['id']}/approve", {"annual_rate_bps": RATE_BPS}
    )
    problem(r, 422, "registration_required")


# -- who sees and who writes ----------------------------------------------------------------


async def test_parties_see_a_request_others_do_not(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 3_000, 30 * DAY)
    financing = await apply(cast, root, 1_000)
    path = f"/v1/financing-requests/{financing['id']}"
    for member in (cast.supplier, cast.bank, cast.auditor, cast.api.operator):
        r = await member.get(path)
        assert r.status_code == 200, (member.name, r.text)
        assert r.json()["claim_id"] == root
    for member in (cast.other, cast.bank2, cast.core):
        problem(await member.get(path), 404, "financing_not_found")
    problem(
        await cast.bank2.post(f"{path}/approve", {"annual_rate_bps": 1}), 404, "financing_not_found"
    )
    problem(await cast.other.post(f"{path}/withdraw"), 404, "financing_not_found")
    problem(
        await cast.auditor.post(f"{path}/approve", {"annual_rate_bps": 1}), 403, "auditor_read_only"
    )
    problem(await cast.auditor.post(f"{path}/withdraw"), 403, "auditor_read_only")
    problem(
        await cast.auditor.put(f"/v1/credit-lines/{cast.core.address}", {"limit": 1}),
        403,
        "auditor_read_only",
    )
    r = await cast.other.get(
        "/v1/financing-quotes", claim_id=root, amount=1, financier=cast.bank.address
    )
    problem(r, 404, "claim_not_found")
    everything = await cast.auditor.get("/v1/financing-requests", claim_id=root)
    assert [f["id"] for f in everything.json()["items"]] == [financing["id"]]
    problem(await cast.supplier.get("/v1/credit-lines"), 403, "role_missing")
    problem(
        await cast.bank2.get("/v1/credit-lines", financier=cast.bank.address), 403, "not_allowed"
    )
    r = await cast.auditor.get("/v1/credit-lines", financier=cast.bank.address)
    assert r.status_code == 200
    assert r.json()["items"][0]["obligor"] == cast.core.address


async def test_bad_input_is_a_clear_4xx(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 3_000, 30 * DAY)
    quote = "/v1/financing-quotes"
    for params in (
        {"claim_id": root, "amount": 0, "financier": cast.bank.address},
        {"claim_id": root, "amount": 10, "financier": "0x123"},
        {"claim_id": "x", "amount": 10, "financier": cast.bank.address},
        {"claim_id": root, "amount": 10, "financier": cast.bank.address, "annual_rate_bps": -1},
    ):
        r = await cast.supplier.get(quote, **params)
        assert r.status_code == 422, r.text
    # No policy and no rate; a financier that is not one.
    problem(
        await cast.supplier.get(quote, claim_id=root, amount=10, financier=cast.bank.address),
        422,
        "annual_rate_required",
    )
    problem(
        await cast.supplier.get(
            quote, claim_id=root, amount=10, financier=cast.other.address, annual_rate_bps=1
        ),
        422,
        "financier_invalid",
    )
    problem(
        await cast.supplier.get(
            quote,
            claim_id=root,
            amount=1,
            financier=cast.bank.address,
            annual_rate_bps=1,
            fee_bps=10_000,
        ),
        422,
        "terms_invalid",
    )
    requests = "/v1/financing-requests"
    body = {"claim_id": root, "financier": cast.bank.address, "amount": 10}
    for bad in (
        {**body, "status": "approved"},
        {**body, "amount": -1},
        {**body, "amount": 2**128},
        {**body, "expires_at": "1960-01-01T00:00:00Z"},
        {**body, "expires_at": "not a time"},
    ):
        r = await cast.supplier.post(requests, bad)
        assert r.status_code == 422, r.text
    r = await cast.supplier.http.post(requests, json=body)  # no Idempotency-Key
    assert r.status_code == 422, r.text
    assert "Idempotency-Key" in r.text
    problem(await cast.supplier.get(f"{requests}/999999"), 404, "financing_not_found")
    problem(await cast.supplier.get(requests, cursor="Im5vdCBhbiBpZCI"), 422, "cursor_invalid")
    financing = await apply(cast, root, 10)
    path = f"{requests}/{financing['id']}/approve"
    bad_terms: list[dict[str, Any]] = [
        {"annual_rate_bps": 1, "advance": 5},  # advance without discount
        {"annual_rate_bps": 1, "registration_no": "x" * 33},
        {"annual_rate_bps": 1, "holder": cast.bank.address},
        {"annual_rate_bps": 10**12},
    ]
    for terms in bad_terms:
        r = await cast.bank.post(path, terms)
        assert r.status_code == 422, r.text
    # A rate whose discount exceeds the amount: nothing left to advance.
    r = await cast.bank.post(path, {"annual_rate_bps": 10_000_000, "registration_no": "ZD"})
    problem(r, 422, "terms_invalid")


# -- the applicant's committed terms, one financing per registration number ------------------


async def test_apply_commits_min_advance_and_recourse(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 100_000_00, 60 * DAY)
    r = await cast.supplier.post(
        "/v1/financing-requests",
        {
            "claim_id": root,
            "financier": cast.bank.address,
            "amount": 50_000_00,
            "min_advance": 49_000_00,
            "recourse": True,
        },
    )
    assert r.status_code == 201, r.text
    applied = r.json()
    assert (applied["min_advance"], applied["recourse"]) == (49_000_00, True)
    on_chain = await cast.chain.suite.financing(applied["id"])
    assert (on_chain.min_advance, on_chain.recourse) == (49_000_00, True)
    path = f"/v1/financing-requests/{applied['id']}/approve"
    # 60 % a year over 60 days takes 10 %: below the committed minimum
    r = await cast.bank.post(path, {"annual_rate_bps": 6_000, "disbursement_ref": "B-1"})
    problem(r, 409, "advance_below_minimum")
    r = await cast.bank.post(
        path, {"annual_rate_bps": RATE_BPS, "recourse": False, "disbursement_ref": "B-2"}
    )
    problem(r, 409, "recourse_mismatch")
    # by default the approval takes the committed recourse
    r = await cast.bank.post(path, {"annual_rate_bps": RATE_BPS, "disbursement_ref": "B-3"})
    assert r.status_code == 200, r.text
    assert (r.json()["recourse"], r.json()["min_advance"]) == (True, 49_000_00)
    assert r.json()["advance"] >= 49_000_00
    # min_advance is a strict integer, at most the amount
    base = {"claim_id": root, "financier": cast.bank.address, "amount": 1_000}
    for bad in ("1000", 1.5, -1):
        problem(
            await cast.supplier.post("/v1/financing-requests", {**base, "min_advance": bad}),
            422,
            "invalid_request",
        )
    r = await cast.supplier.post("/v1/financing-requests", {**base, "min_advance": 1_001})
    problem(r, 422, "min_advance_invalid")


async def test_registration_number_backs_one_financing(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 100_000, 30 * DAY)
    first = await apply(cast, root, 10_000)
    second = await apply(cast, root, 10_000)
    terms = {"annual_rate_bps": RATE_BPS, "registration_no": "ZD-ONCE-1"}
    r = await cast.bank.post(f"/v1/financing-requests/{first['id']}/approve", terms)
    assert r.status_code == 200, r.text
    r = await cast.bank.post(f"/v1/financing-requests/{second['id']}/approve", terms)
    problem(r, 409, "registration_used")
    # without a number each gets its own under the credit line's programme
    r = await cast.bank.post(
        f"/v1/financing-requests/{second['id']}/approve", {"annual_rate_bps": RATE_BPS}
    )
    assert r.status_code == 200, r.text
    assert r.json()["registration_no"] == f"{REGISTRATION}-{second['id']}"


async def test_exposure_limit_below_outstanding_is_over_limit(cast: Cast) -> None:
    root, _ = await cast.chain.payable(cast.core, cast.supplier, 100_000, 30 * DAY)
    financing = await apply(cast, root, 2_000, financier=cast.bank2)
    r = await cast.bank2.put(f"/v1/credit-lines/{cast.core.address}", {"limit": 10_000})
    assert r.status_code == 200, r.text
    r = await cast.bank2.post(
        f"/v1/financing-requests/{financing['id']}/approve",
        {"annual_rate_bps": RATE_BPS, "registration_no": "ZD-OVER-1"},
    )
    assert r.status_code == 200, r.text
    r = await cast.bank2.put(f"/v1/credit-lines/{cast.core.address}", {"limit": 1_000})
    assert r.status_code == 200, r.text
    line = r.json()
    assert (line["outstanding"], line["limit"], line["over_limit"]) == (2_000, 1_000, True)
    r = await cast.bank2.get("/v1/credit-lines")
    (listed,) = [x for x in r.json()["items"] if x["obligor"] == cast.core.address]
    assert listed["over_limit"] is True
