"""The console served by the real API (anvil, the suite, ``tierflow index`` and ``tierflow
serve`` as processes) over the demo's payable: signing in and out (cookie flags, CSRF,
Origin), the tree's nodes against the API's own answer, every link of a node, and the
visibility rules of the API (AP-2) on every page: an outsider gets the 404 page the API's
404 is, a page its roles do not open the 403 page."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from backend.console.fmt import yuan
from tests.support.api import KYC_UNTIL
from tests.support.console_demo import Demo, csrf_field, demo_platform, signed_in
from tests.support.databases import create_pg_database, drop_pg_database, pg_url

Parse = Callable[[str], Any]


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    async with demo_platform(tmp_path_factory.mktemp("console")) as made:
        yield made


@pytest.fixture
async def auditor(demo: Demo) -> AsyncIterator[httpx.AsyncClient]:
    http = await signed_in(demo, demo.key("auditor"))
    yield http
    await http.aclose()


def _nodes(tree: dict[str, Any]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    todo = [tree["root"]]
    while todo:
        node = todo.pop()
        out[node["id"]] = node
        todo += node["children"]
    return out


def _cookie(r: httpx.Response, name: str) -> str:
    for header in r.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return header
    raise AssertionError(f"no {name} cookie set: {r.headers.get_list('set-cookie')}")


async def test_sign_in_sets_an_http_only_strict_cookie(demo: Demo, parse: Parse) -> None:
    async with httpx.AsyncClient(base_url=demo.stack.base_url) as http:
        form = await http.get("/console/sign-in")
        assert form.status_code == 200
        assert "default-src 'self'" in form.headers["content-security-policy"]
        assert form.headers["x-frame-options"] == "DENY"
        assert "httponly" in _cookie(form, "tf_csrf").lower()
        r = await http.post(
            "/console/sign-in",
            data={
                "api_key": demo.key("tier1"),
                "csrf_token": csrf_field(form.text),
                "next": "/console/payables/1",
            },
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/console/payables/1"
        header = _cookie(r, "tf_console")
        attrs = {a.strip().lower() for a in header.split(";")}
        assert "httponly" in attrs
        assert "samesite=strict" in attrs
        assert "path=/console" in attrs
        token = SimpleCookie(header)["tf_console"].value
        assert demo.key("tier1") not in header
        assert len(token) >= 40
        home = await http.get("/console")
        assert home.status_code == 200
        doc = parse(home.text)
        assert "Anda Components" in doc.find("span", cls="who-name").text()


async def test_sign_in_refuses_forged_forms_and_bad_keys(demo: Demo, parse: Parse) -> None:
    async with httpx.AsyncClient(base_url=demo.stack.base_url) as http:
        form = await http.get("/console/sign-in")
        token = csrf_field(form.text)
        good = {"api_key": demo.key("tier1"), "csrf_token": token}
        # another site's page posting the form (its Origin, or the browser's Sec-Fetch-Site)
        r = await http.post(
            "/console/sign-in", data=good, headers={"Origin": "https://evil.example"}
        )
        assert r.status_code == 403
        r = await http.post("/console/sign-in", data=good, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        # a token that is not the cookie's (double submit)
        r = await http.post("/console/sign-in", data={**good, "csrf_token": "x" * 43})
        assert r.status_code == 403
        assert "tf_console" not in http.cookies
        # a wrong key: the form again, with the reason, and no session
        r = await http.post("/console/sign-in", data={**good, "api_key": "tf_0123456789ab_nope"})
        assert r.status_code == 401
        assert "not valid" in parse(r.text).find("p", cls="alert").text()
        assert "tf_console" not in http.cookies
        # JSON is not the console's form encoding
        r = await http.post("/console/sign-in", json=good)
        assert r.status_code == 403
        # next: only a path under /console
        for bad in ("https://evil.example/", "//evil.example/console", "/v1/members"):
            form = await http.get("/console/sign-in")
            r = await http.post(
                "/console/sign-in",
                data={**good, "csrf_token": csrf_field(form.text), "next": bad},
            )
            assert r.status_code == 303
            assert r.headers["location"] == "/console", bad
            http.cookies.clear()


async def test_pages_need_a_session(demo: Demo) -> None:
    async with httpx.AsyncClient(base_url=demo.stack.base_url) as http:
        r = await http.get(f"/console/payables/{demo.payable_id}?levels=2")
        assert r.status_code == 303
        assert r.headers["location"] == (
            f"/console/sign-in?next=%2Fconsole%2Fpayables%2F{demo.payable_id}%3Flevels%3D2"
        )
        http.cookies.set("tf_console", "made-up", path="/console")
        assert (await http.get("/console")).status_code == 303
        # the API's bearer key does not open the console, nor the cookie the API
        r = await http.get("/console", headers={"Authorization": f"Bearer {demo.key('auditor')}"})
        assert r.status_code == 303


async def test_the_tree_shows_the_apis_pieces(
    demo: Demo, auditor: httpx.AsyncClient, parse: Parse
) -> None:
    await check_tree(demo, auditor, parse)


async def check_tree(demo: Demo, auditor: httpx.AsyncClient, parse: Parse) -> None:
    """Every piece of the API's tree drawn with its amount, status and links."""
    api = await demo.api_get(demo.key("auditor"), f"/v1/payables/{demo.payable_id}/tree")
    assert api.status_code == 200
    pieces = _nodes(api.json())
    r = await auditor.get(f"/console/payables/{demo.payable_id}")
    assert r.status_code == 200, r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    doc = parse(r.text)
    drawn = {int(g.attrs["data-id"]): g for g in doc.find_all("g", cls="node")}
    assert set(drawn) == set(pieces)
    custody = {a.address: a.custody for a in demo.story.actors.values()}
    assert set(custody.values()) == {"self", "hosted"}
    for claim_id, node in pieces.items():
        g = drawn[claim_id]
        assert g.find("text", cls="amount").text() == yuan(node["amount"])
        assert g.attrs["data-status"] == node["status"]
        assert f"/console/claims/{claim_id}" in g.links()
        # the holder's custody, as the API's tree gives it (the demo's tier-2 supplier and
        # bank hold their own keys, the others are hosted)
        expected = custody[node["holder"]]
        assert g.find("g", cls="custody").text() == node["holder_custody"] == expected
        assert any(link.startswith("/console/tx/0x") for link in g.links()), claim_id
    # the holders by name, the bank's pieces marked financed
    names = {g.find("text", cls="holder").text() for g in drawn.values()}
    assert {"Anda Components", "Dongfang Steel", "Bank of Qiantang"} <= names
    bank = demo.story["bank"].address
    financed = [i for i, n in pieces.items() if n["holder"] == bank]
    assert financed
    for claim_id in financed:
        assert "FINANCED" in drawn[claim_id].find("text", cls="status").text()


async def test_a_nodes_links_open_its_history_and_transaction(
    demo: Demo, auditor: httpx.AsyncClient, parse: Parse
) -> None:
    r = await auditor.get(f"/console/payables/{demo.payable_id}")
    doc = parse(r.text)
    root = demo.story.payable["root_claim_id"]
    node = doc.find("g", id=f"piece-{root}")
    tx = next(link for link in node.links() if link.startswith("/console/tx/"))
    page = await auditor.get(tx)
    assert page.status_code == 200, page.text
    assert "PayableIssued" in parse(page.text).text()
    history = await auditor.get(f"/console/claims/{root}")
    assert history.status_code == 200
    events = await demo.api_get(demo.key("auditor"), f"/v1/claims/{root}/history")
    text = parse(history.text).text()
    for e in events.json()["items"]:
        assert e["event"] in text


async def test_an_outsider_cannot_open_the_payable(demo: Demo, parse: Parse) -> None:
    outsider = await signed_in(demo, demo.outsider_key)
    try:
        root = demo.story.payable["root_claim_id"]
        api = await demo.api_get(demo.outsider_key, f"/v1/payables/{demo.payable_id}/tree")
        assert api.status_code == 404
        for path in (
            f"/console/payables/{demo.payable_id}",
            f"/console/claims/{root}",
            f"/console/events?payable_id={demo.payable_id}",
        ):
            r = await outsider.get(path)
            assert r.status_code == 404, (path, r.status_code)
            assert "Anda Components" not in r.text
        r = await outsider.get(f"/console/payables/{demo.payable_id}")
        assert r.status_code == 404
        assert parse(r.text).find("h1").text() == "Not found"
        # the root's transaction: exists, but nothing of it is the outsider's
        auditor = await signed_in(demo, demo.key("auditor"))
        doc = parse((await auditor.get(f"/console/payables/{demo.payable_id}")).text)
        await auditor.aclose()
        tx = next(
            link
            for link in doc.find("g", id=f"piece-{root}").links()
            if link.startswith("/console/tx/")
        )
        assert (await outsider.get(tx)).status_code == 404
        # and its own pages are open to it
        assert (await outsider.get("/console")).status_code == 200
        assert (await outsider.get("/console/events")).status_code == 200
        assert (await outsider.get("/console/reconciliation")).status_code == 403
        assert (await outsider.get("/console/audit-log")).status_code == 403
    finally:
        await outsider.aclose()


async def test_a_holder_sees_its_piece_but_not_the_whole_tree(demo: Demo, parse: Parse) -> None:
    http = await signed_in(demo, demo.key("tier3a"))
    try:
        r = await http.get(f"/console/payables/{demo.payable_id}")
        assert r.status_code == 403  # as GET /v1/payables/{id}/tree answers it
        home = parse((await http.get("/console")).text)
        # the payable is listed (it holds a piece of it), without a link to the whole tree
        row = home.find("tr", data_payable=str(demo.payable_id))
        assert f"/console/payables/{demo.payable_id}" not in row.links()
        piece = demo.story.pieces["tier3a"]
        assert f"/console/claims/{piece}" in home.links()
        page = await http.get(f"/console/claims/{piece}")
        assert page.status_code == 200
        # its custody, as its node in the tree shows it (tier 3a is hosted)
        assert parse(page.text).find("span", cls="custody").text() == "hosted"
    finally:
        await http.aclose()


async def test_a_transaction_shows_what_the_member_may_read(demo: Demo, parse: Parse) -> None:
    """The payable's issue as the holder of a tier-3 piece reads it: the events of that
    transaction the API's feed gives it, no more (the root piece is not its)."""
    key = demo.key("tier3a")
    feed = await demo.api_get(key, "/v1/audit/events", payable_id=demo.payable_id, limit=200)
    assert feed.status_code == 200, feed.text
    issued = next(e for e in feed.json()["items"] if e["event"] == "PayableIssued")
    expected = [e["event"] for e in feed.json()["items"] if e["tx_hash"] == issued["tx_hash"]]
    everything = await demo.api_get(
        demo.key("auditor"), "/v1/audit/events", payable_id=demo.payable_id, limit=200
    )
    all_of_it = [e for e in everything.json()["items"] if e["tx_hash"] == issued["tx_hash"]]
    assert len(all_of_it) > len(expected)  # the auditor reads more of the same transaction
    http = await signed_in(demo, key)
    try:
        r = await http.get(f"/console/tx/{issued['tx_hash']}")
        assert r.status_code == 200, r.text
        rows = [tr for tr in parse(r.text).find_all("tr") if "data-event" in tr.attrs]
        assert [tr.attrs["data-event"] for tr in rows] == expected
    finally:
        await http.aclose()


async def test_the_auditors_pages(demo: Demo, auditor: httpx.AsyncClient, parse: Parse) -> None:
    home = parse((await auditor.get("/console")).text)
    assert next(a.text() for a in home.find("nav").find_all("a")) == "Payables"
    row = home.find("tr", data_payable=str(demo.payable_id))
    assert f"/console/payables/{demo.payable_id}" in row.links()
    assert "Huaxin Motors" in row.text()
    exposure = await auditor.get("/console/exposure")
    assert exposure.status_code == 200, exposure.text
    assert "Huaxin Motors" in parse(exposure.text).text()
    events = await auditor.get(f"/console/events?payable_id={demo.payable_id}&event=ClaimSplit")
    assert events.status_code == 200, events.text
    rows = [tr for tr in parse(events.text).find_all("tr") if "data-event" in tr.attrs]
    assert rows
    assert {tr.attrs["data-event"] for tr in rows} == {"ClaimSplit"}
    bad = await auditor.get("/console/events?from_block=9&to_block=1")
    assert bad.status_code == 422  # as the API answers it, the form shown again with why
    assert "block" in parse(bad.text).find("main").text()
    rec = await auditor.get("/console/reconciliation")
    assert rec.status_code == 200, rec.text
    log = await auditor.get("/console/audit-log")
    assert log.status_code == 200, log.text
    assert parse(log.text).find_all("tr", cls="rec-ok")
    # the log's filters, as GET /v1/audit/log takes them
    signed = await auditor.get("/console/audit-log?method=POST&status=303")
    rows = parse(signed.text).find_all("tr", cls="rec-ok")
    assert rows  # the console's own sign-ins are audited
    assert all("/console/sign-in" in row.text() for row in rows)
    assert (await auditor.get("/console/audit-log?method=GET")).status_code == 422
    assert (await auditor.get("/console/audit-log?from_time=yesterday")).status_code == 422
    assert (await auditor.get("/console/payables/999999")).status_code == 404
    assert (await auditor.get("/console/payables/1?levels=99")).status_code == 400
    missing = f"/console/payables/{demo.payable_id}?focus=999999"
    assert (await auditor.get(missing)).status_code == 404


async def test_sign_out_ends_the_session(demo: Demo, parse: Parse) -> None:
    http = await signed_in(demo, demo.key("tier1"))
    try:
        home = await http.get("/console")
        token = csrf_field(home.text)
        copied = http.cookies["tf_console"]
        r = await http.post("/console/sign-out", data={"csrf_token": "forged"})
        assert r.status_code == 403
        assert (await http.get("/console")).status_code == 200
        r = await http.post("/console/sign-out", data={"csrf_token": token})
        assert r.status_code == 303
        assert r.headers["location"] == "/console/sign-in"
        # a copy of the cookie no longer opens anything
        async with httpx.AsyncClient(base_url=demo.stack.base_url) as other:
            other.cookies.set("tf_console", copied, path="/console")
            assert (await other.get("/console")).status_code == 303
    finally:
        await http.aclose()


async def test_revoking_the_key_ends_its_sessions(demo: Demo) -> None:
    async with demo.stack.client(demo.outsider_key) as api:
        r = await api.post(
            f"/v1/members/{demo.outsider_address}/api-keys",
            json={"label": "console"},
            headers={"Idempotency-Key": "console-key"},
        )
        assert r.status_code == 201, r.text
        made = r.json()
        http = await signed_in(demo, made["api_key"])
        try:
            assert (await http.get("/console")).status_code == 200
            r = await api.delete(f"/v1/members/{demo.outsider_address}/api-keys/{made['id']}")
            assert r.status_code == 200, r.text
            assert (await http.get("/console")).status_code == 303
        finally:
            await http.aclose()


async def test_a_new_split_shows_at_once(
    demo: Demo, auditor: httpx.AsyncClient, parse: Parse
) -> None:
    """The tree drawn before (and kept in the worker's cache) gives way to the mirror's new
    block: a split made now is on the next page."""
    path = f"/console/payables/{demo.payable_id}"
    before = {
        int(g.attrs["data-id"])
        for g in parse((await auditor.get(path)).text).find_all("g", cls="node")
    }
    piece = demo.story.pieces["tier3b"]
    made = await demo.story["tier3b"].post(
        f"/v1/claims/{piece}/transfers", {"to": demo.story["tier2a"].address, "amount": 123_45}
    )
    new_id = int(made["claim_id"])
    after = parse((await auditor.get(path)).text)
    drawn = {int(g.attrs["data-id"]): g for g in after.find_all("g", cls="node")}
    assert set(drawn) == before | {new_id}
    assert drawn[new_id].find("text", cls="amount").text() == yuan(123_45)


async def test_a_self_members_intent_awaits_on_its_home_page(demo: Demo, parse: Parse) -> None:
    """A ``self`` supplier's write stops at an intent: its home page lists it as
    ``GET /v1/intents`` does (the call in plain fields, amount, counterparty, deadline,
    digest), no other member's page shows it, and once signed it is gone."""
    account = Account.create()
    made = await demo.api_post(
        demo.stack.operator_key,
        "/v1/members",
        {
            "name": "Self Custody Parts",
            "roles": ["supplier"],
            "kyc_expires_at": KYC_UNTIL,
            "address": account.address,
        },
    )
    assert made.status_code == 201, made.text
    key = made.json()["api_key"]
    core = demo.story["core"]
    issued = await demo.story.chain_time() - 3600
    body = _invoice(core.address, 777_00, issued)
    r = await demo.api_post(key, "/v1/invoices", body)
    assert r.status_code == 202, r.text
    intent = r.json()["intent"]
    listed = await demo.api_get(key, "/v1/intents")
    assert [i["id"] for i in listed.json()["items"]] == [intent["id"]]

    http = await signed_in(demo, key)
    try:
        home = parse((await http.get("/console")).text)
        rows = home.find("table", cls="intents").find("tbody").find_all("tr")
        assert [row.attrs.get("data-intent") for row in rows] == [intent["id"]]
        row = rows[0]
        assert "registerInvoice" in row.find("strong").text()
        assert "InvoiceRegistry" in row.text()
        assert yuan(777_00) in row.find("td", cls="num").text()
        assert core.name in row.text()  # the buyer, by name
        assert row.find("code", cls="digest").text() == intent["digest"]
        assert str(intent["action"]["args"]["documentHash"]) in row.find("details").text()
        # nobody else is asked to sign it, not even the buyer
        other = await signed_in(demo, core.key)
        try:
            theirs = parse((await other.get("/console")).text)
            assert theirs.find_all("tr", data_intent=intent["id"]) == []
        finally:
            await other.aclose()

        signature = Account.unsafe_sign_hash(bytes.fromhex(intent["digest"][2:]), account.key)
        done = await demo.api_post(
            key,
            f"/v1/intents/{intent['id']}/signature",
            {"signature": "0x" + bytes(signature.signature).hex()},
        )
        assert done.status_code == 201, done.text
        after = parse((await http.get("/console")).text)
        assert after.find_all("tr", data_intent=intent["id"]) == []
        assert "Nothing awaits your signature" in after.find("table", cls="intents").text()
    finally:
        await http.aclose()


async def test_a_makers_write_awaits_the_checkers_then_the_signature(
    demo: Demo, parse: Parse
) -> None:
    """A ``self`` member under dual control: the maker's write is listed as awaiting its
    checkers (as ``GET /v1/approvals?status=pending`` lists it); once a checker approves, it
    leaves that list and waits for the key holder's signature instead."""
    account = Account.create()
    made = await demo.api_post(
        demo.stack.operator_key,
        "/v1/members",
        {
            "name": "Dual Control Parts",
            "roles": ["supplier"],
            "kyc_expires_at": KYC_UNTIL,
            "address": account.address,
        },
    )
    assert made.status_code == 201, made.text
    admin = made.json()["api_key"]
    keys = {}
    for role in ("maker", "checker"):
        user = await demo.api_post(
            admin, f"/v1/members/{account.address}/users", {"name": role, "role": role}
        )
        assert user.status_code == 201, user.text
        keys[role] = user.json()["api_key"]
    async with demo.stack.client(admin) as http:
        on = await http.put(f"/v1/members/{account.address}/dual-control", json={"enabled": True})
    assert on.status_code == 200, on.text

    page = await signed_in(demo, keys["checker"])
    try:
        home = parse((await page.get("/console")).text)
        table = home.find("table", cls="approvals")  # dual control on: the section is there
        assert "Nothing awaits your checkers" in table.text()

        core = demo.story["core"]
        issued = await demo.story.chain_time() - 3600
        body = _invoice(core.address, 4_321_00, issued)
        held = await demo.api_post(keys["maker"], "/v1/invoices", body)
        assert held.status_code == 202, held.text
        approval = held.json()["approval"]["id"]
        pending = await demo.api_get(admin, "/v1/approvals", status="pending")
        assert [a["id"] for a in pending.json()["items"]] == [approval]

        home = parse((await page.get("/console")).text)
        rows = home.find("table", cls="approvals").find("tbody").find_all("tr")
        assert [r.attrs.get("data-approval") for r in rows] == [approval]
        assert "invoices.register" in rows[0].find("strong").text()
        assert yuan(4_321_00) in rows[0].find("td", cls="num").text()
        assert core.name in rows[0].text()
        assert not [r for r in home.find_all("tr") if "data-intent" in r.attrs]

        decided = await demo.api_post(
            keys["checker"], f"/v1/approvals/{approval}", {"decision": "approve"}
        )
        assert decided.status_code == 202, decided.text
        intent = decided.json()["intent"]
        home = parse((await page.get("/console")).text)
        assert home.find_all("tr", data_approval=approval) == []
        waiting = [r.attrs["data-intent"] for r in home.find_all("tr") if "data-intent" in r.attrs]
        assert waiting == [intent["id"]]
    finally:
        await page.aclose()
    # a member without dual control has no such section
    plain = await signed_in(demo, demo.key("tier1"))
    try:
        assert parse((await plain.get("/console")).text).find_all("table", cls="approvals") == []
    finally:
        await plain.aclose()


def _invoice(buyer: str, amount: int, issued: int) -> dict[str, Any]:
    """An invoice to ``buyer`` issued at ``issued`` (chain time)."""
    return {
        "buyer": buyer,
        "seller_tax_id": "91310000" + secrets.token_hex(5).upper(),
        "invoice_code": "031001900111",
        "number": "N-" + secrets.token_hex(4),
        "amount": amount,
        "issue_date": issued,
        "document_sha256": secrets.token_hex(32),
    }


async def test_node_outage_is_a_page_not_a_crash(
    demo: Demo, auditor: httpx.AsyncClient, parse: Parse
) -> None:
    """Last of this module's platform: it stops the node for good. Pages of the mirror go
    on; the ones that need the node answer the 503 page, not a stack trace."""
    root = demo.story.payable["root_claim_id"]
    doc = parse((await auditor.get(f"/console/payables/{demo.payable_id}")).text)
    tx = next(link for link in doc.find("g", id=f"piece-{root}").links() if "/tx/" in link)
    demo.stack.node.stop()
    assert (await auditor.get(f"/console/payables/{demo.payable_id}")).status_code == 200
    for path in (tx, "/console/reconciliation"):
        r = await auditor.get(path)
        assert r.status_code == 503, (path, r.text)
        assert r.headers["content-type"].startswith("text/html")
        assert "unavailable" in parse(r.text).find("main").text().lower()
        assert demo.stack.rpc_url not in r.text
        assert "Traceback" not in r.text


@pytest.mark.postgres
async def test_on_postgresql(tmp_path: Path, parse: Parse) -> None:
    """The same platform on PostgreSQL: the sessions table, the tree's joins, AP-2."""
    name = await create_pg_database()
    try:
        url = pg_url(name).replace("postgresql://", "postgresql+asyncpg://")
        async with demo_platform(tmp_path, database_url=url) as demo:
            auditor = await signed_in(demo, demo.key("auditor"))
            try:
                await check_tree(demo, auditor, parse)
                assert (await auditor.get("/console/exposure")).status_code == 200
                assert (await auditor.get("/console/audit-log")).status_code == 200
            finally:
                await auditor.aclose()
            outsider = await signed_in(demo, demo.outsider_key)
            try:
                r = await outsider.get(f"/console/payables/{demo.payable_id}")
                assert r.status_code == 404
                home = await outsider.get("/console")
                r = await outsider.post(
                    "/console/sign-out", data={"csrf_token": csrf_field(home.text)}
                )
                assert r.status_code == 303
                assert (await outsider.get("/console")).status_code == 303
            finally:
                await outsider.aclose()
    finally:
        await drop_pg_database(name)
