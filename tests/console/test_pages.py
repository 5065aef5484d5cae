"""The console's other pages, escaping of hostile text everywhere, and markup a strict
Content-Security-Policy accepts (no inline script, style or event handler)."""

from __future__ import annotations

from typing import Any

import pytest

from backend.console import Console, Urls
from backend.console.fmt import yuan
from bench import console_samples as samples

Parse = Any
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'


def _csp_clean(doc: Any) -> None:
    for el in doc.iter():
        assert "style" not in el.attrs, f"inline style on <{el.tag}>"
        assert not [a for a in el.attrs if a.startswith("on")], f"handler on <{el.tag}>"
        if el.tag == "script":
            assert el.attrs.get("src", "").startswith("/console/static/")
            assert not el.text().strip()
        assert el.tag != "style"
        for attr in ("href", "src", "action"):
            assert not el.attrs.get(attr, "").lower().startswith("javascript:")


def test_every_page_is_well_formed_and_csp_clean(console: Console, parse: Parse) -> None:
    for name, html in samples.all_pages(console).items():
        assert html.startswith("<!doctype html>"), name
        doc = parse(html)
        _csp_clean(doc)
        assert doc.find("link", rel="stylesheet").attrs["href"] == "/console/static/console.css"
        assert doc.find("main", id="main")


def test_hostile_text_is_text_everywhere(console: Console, parse: Parse) -> None:
    members = {k: {**v, "name": HOSTILE + v["name"]} for k, v in samples.MEMBERS.items()}
    data = samples.demo_tree()
    data["root"]["holder_name"] = HOSTILE
    rows = samples.exposure_rows()
    rows[0]["obligor_name"] = HOSTILE
    events = samples.events()
    events[0]["args"]["note"] = HOSTILE
    events[0]["event"] = HOSTILE
    records = samples.audit_records()
    records[0]["path"] = HOSTILE
    records[0]["code"] = HOSTILE
    viewer = {**samples.AUDITOR, "name": HOSTILE}
    home = samples.member_home()
    home["intents"][0]["id"] = HOSTILE
    home["intents"][0]["action"]["function"] = HOSTILE
    home["approvals"][0]["operation"] = HOSTILE
    home["approvals"][0]["maker_user_id"] = HOSTILE
    pages = {
        "tree": console.tree_page(data, viewer=viewer, members=members),
        "exposure": console.exposure_page(rows, viewer=viewer, members=members),
        "events": console.events_page(
            events,
            filters={"event": HOSTILE, "account": HOSTILE},
            next_cursor=HOSTILE,
            error=HOSTILE,
            viewer=viewer,
            members=members,
        ),
        "audit": console.audit_log_page(
            records, verification={"ok": False, "first_bad_seq": 1, "reason": HOSTILE}
        ),
        "reconciliation": console.reconciliation_page(
            {
                **samples.reconciliation(),
                "differences": [
                    {"kind": HOSTILE, "key": HOSTILE, "field": HOSTILE, "mirror": HOSTILE}
                ],
            },
            error=HOSTILE,
        ),
        "home": console.home_page(
            {**home["member"], "name": HOSTILE},
            claims=home["claims"],
            intents=home["intents"],
            approvals=home["approvals"],
            viewer=viewer,
            members=members,
        ),
        "sign-in": console.sign_in_page(error=HOSTILE, next_path="/console/" + HOSTILE),
        "error": console.error_page(404, detail=HOSTILE, viewer=viewer),
    }
    for name, html in pages.items():
        doc = parse(html)
        scripts = doc.find_all("script")
        assert len(scripts) == 1, name
        assert not doc.find_all("img"), name
        _csp_clean(doc)
        assert "<script>alert" not in html, name
        assert "&lt;script&gt;" in html or "&lt;script" in html, name
    tree_doc = parse(pages["tree"])
    holder = tree_doc.find("g", id="piece-30").find("text", cls="holder").text()
    assert holder.startswith('<script>alert("x")')  # shown as the text it is
    held = parse(pages["home"]).find("tr", data_approval="apr_5c0ffee0d15ea5e1")
    assert held.find("strong").text() == HOSTILE


def test_exposure_charts_and_tables_carry_the_input(console: Console, parse: Parse) -> None:
    rows = samples.exposure_rows()
    doc = parse(console.exposure_page(rows, members=samples.MEMBERS))
    cards = doc.find_all("article", cls="card")
    obligor_rows = [r for r in rows if r["financier"] is None]
    assert [c.attrs["data-obligor"] for c in cards if "data-obligor" in c.attrs] == [
        r["obligor"] for r in obligor_rows
    ]
    for row in obligor_rows:
        card = doc.find("article", data_obligor=row["obligor"])
        for key, field in [
            ("limit", "program_limit"),
            ("issued", "issued"),
            ("outstanding", "outstanding"),
            ("financed", "financed"),
            ("overdue", "overdue"),
        ]:
            bar = card.find("g", data_key=key)
            assert int(bar.attrs["data-value"]) == row[field]
            assert yuan(row[field]) in bar.text()
    hangzhou = doc.find("article", data_obligor=obligor_rows[1]["obligor"])
    assert "has-overdue" in hangzhou.classes
    assert "overdue ¥3,100,000.00" in hangzhou.text()
    assert "Limit used 94.0%" in hangzhou.text()
    assert "90% or more of its limit used" in hangzhou.text()
    assert "90% or more" not in cards[0].text()
    # a financier over its limit on an obligor says so in words
    bullets = doc.find_all("g", cls="bullet")
    assert len(bullets) == 3
    over = [b for b in bullets if "over" in b.classes]
    assert len(over) == 1
    assert "OVER LIMIT" in over[0].text()
    assert "no limit set" in doc.find("article", data_financier=samples.FINANCIER_B).text()
    assert "¥14,200,000.55" in doc.find("table").text()


def test_events_link_objects_and_transactions_and_keep_filters(
    console: Console, parse: Parse
) -> None:
    events = samples.events()
    doc = parse(
        console.events_page(
            events, filters={"payable_id": 7, "event": "ClaimSplit"}, next_cursor="abc"
        )
    )
    rows = doc.find("table", cls="events").find("tbody").find_all("tr")
    assert len(rows) == len(events)
    split = rows[1]
    links = split.links()
    assert "/console/claims/30" in links
    assert "/console/claims/31" in links
    assert "/console/payables/7" in links
    assert f"/console/tx/{events[1]['tx_hash']}" in links
    assert "value ¥3,200,000.00" in split.text()
    applied = rows[2]
    assert "/console/events?financing_id=4" in applied.links()
    assert f"/console/events?account={samples.FINANCIER_A}" in applied.links()
    form = doc.find("form", cls="filters")
    assert form.attrs["method"] == "get"
    assert form.attrs["action"] == "/console/events"
    assert form.find("input", name="payable_id").attrs["value"] == "7"
    assert form.find("input", name="event").attrs["value"] == "ClaimSplit"
    nxt = doc.find("a", rel="next").attrs["href"]
    assert nxt == "/console/events?event=ClaimSplit&payable_id=7&cursor=abc"
    frozen = rows[3]
    assert "piece #36" in frozen.text()


def test_reconciliation_says_equal_or_lists_differences(console: Console, parse: Parse) -> None:
    ok = parse(console.reconciliation_page(samples.reconciliation(ok=True), checked_at=0))
    verdict = ok.find("p", cls="verdict")
    assert "ok" in verdict.classes
    assert "Mirror = chain" in verdict.text()
    assert "223 objects" in verdict.text()
    assert "1970-01-01 00:00:00 UTC" in ok.find("dl", cls="facts").text()
    bad = parse(console.reconciliation_page(samples.reconciliation(ok=False)))
    assert "2 differences" in bad.find("p", cls="verdict").text()
    diffs = bad.find("table", cls="diffs")
    assert "/console/claims/36" in diffs.links()
    assert "frozen" in diffs.text()
    down = parse(console.reconciliation_page(None, error="the ledger node is unavailable"))
    assert "unavailable" in down.find("p", cls="alert").text()


def test_audit_log_verification_marks_records(console: Console, parse: Parse) -> None:
    records = samples.audit_records()
    doc = parse(
        console.audit_log_page(
            records,
            verification={
                "ok": False,
                "records": 3,
                "first_bad_seq": 4,
                "reason": "its hash does not match",
                "anchored_seq": 2,
                "anchor_tx_hash": samples.tx_hash(900),
            },
            next_cursor="7",
            filters={"method": "POST"},
        )
    )
    verdict = doc.find("p", cls="verdict")
    assert "Chain broken at record #4" in verdict.text()
    assert "anchored on the ledger up to record #2" in verdict.text()
    states = {
        int(r.attrs["data-seq"]): r.classes for r in doc.find_all("tr") if "data-seq" in r.attrs
    }
    assert states == {
        1: {"rec-ok"},
        2: {"rec-ok"},
        3: {"rec-ok"},
        4: {"rec-bad"},
        5: {"rec-unverified"},
        6: {"rec-unverified"},
    }
    assert "Anchored" in doc.find("tr", data_seq="2").text()
    assert "Intact" in doc.find("tr", data_seq="3").text()
    assert f"/console/tx/{samples.tx_hash(900)}" in doc.links()
    assert doc.find("a", rel="next").attrs["href"] == "/console/audit-log?method=POST&cursor=7"
    ok = parse(console.audit_log_page(records, verification={"ok": True, "records": 6}))
    assert "Chain intact" in ok.find("p", cls="verdict").text()
    assert "No on-chain anchor yet" in ok.text()


def test_audit_log_shows_the_anchor_status(console: Console, parse: Parse) -> None:
    records = samples.audit_records()
    rewritten = parse(
        console.audit_log_page(
            records,
            verification={
                "ok": False,
                "records": 6,
                "first_bad_seq": 5,
                "reason": "record 5 differs from its anchor on chain",
                "anchors_compared": True,
                "anchored_seq": 5,
                "anchor_mismatches": [
                    {"index": 1, "seq": 5, "head": "ab" * 32, "status": "rewritten"}
                ],
            },
        )
    )
    alerts = [p.text() for p in rewritten.find_all("p", cls="verdict")]
    assert any("1 anchor on the ledger not matched" in a and "#5 rewritten" in a for a in alerts)
    blind = parse(
        console.audit_log_page(
            records, verification={"ok": True, "records": 6, "anchors_compared": False}
        )
    )
    assert "did not answer" in blind.text()
    assert "No on-chain anchor yet" not in blind.text()


def test_member_home(console: Console, parse: Parse) -> None:
    home = samples.member_home()
    doc = parse(
        console.home_page(
            home["member"],
            claims=home["claims"],
            financing=home["financing"],
            intents=home["intents"],
            viewer=home["member"],
            members=samples.MEMBERS,
        )
    )
    intents = doc.find("table", cls="intents").find("tbody").find_all("tr")
    assert [r.attrs["data-intent"] for r in intents] == ["int_7f3a9c2e55d1", "int_0b44e1aa9f20"]
    split = intents[0].text()
    assert "split" in split
    assert "¥500,000.00" in split
    assert "嘉兴联创包装材料有限公司" in split  # the counterparty, from action.args.to
    assert "2026-03-05 18:00:00 UTC" in split
    financing = doc.find("tr", data_financing="4")
    assert "招商银行 上海分行" in financing.text()
    assert "applied to" in financing.text()
    pieces = {r.attrs["data-id"]: r for r in doc.find_all("tr") if "data-amount" in r.attrs}
    assert set(pieces) == {"31", "55"}
    assert "/console/payables/7?focus=31" in pieces["31"].links()
    assert "¥3,245,000.01" in doc.find("ul", cls="tiles").text()
    nav = [a.text() for a in doc.find("nav").find_all("a")]
    assert nav == ["My pieces", "Events"]


def test_navigation_follows_roles(console: Console) -> None:
    assert [n.key for n in console.nav(samples.AUDITOR)] == [
        "home",
        "exposure",
        "events",
        "reconciliation",
        "audit",
    ]
    assert [n.key for n in console.nav({"roles": ["financier"]})] == [
        "home",
        "exposure",
        "events",
    ]
    assert console.nav(None) == []


def test_sign_in_form(console: Console, parse: Parse) -> None:
    doc = parse(console.sign_in_page(csrf_token="tok", next_path="/console/payables/7"))
    form = doc.find("form", action="/console/sign-in")
    assert form.attrs["method"] == "post"
    key = form.find("input", name="api_key")
    assert key.attrs["type"] == "password"
    assert form.find("input", name="csrf_token").attrs["value"] == "tok"
    assert form.find("input", name="next").attrs["value"] == "/console/payables/7"
    assert not doc.find_all("nav")  # nobody signed in: no navigation
    # only a console path comes back as the page to go to after signing in
    away = parse(console.sign_in_page(next_path="https://evil.example/"))
    assert not away.find_all("input", name="next")


@pytest.mark.parametrize(
    ("status", "title"), [(404, "Not found"), (403, "Not allowed"), (401, "Please sign in")]
)
def test_error_pages(console: Console, parse: Parse, status: int, title: str) -> None:
    doc = parse(console.error_page(status, viewer=samples.AUDITOR, csrf_token="t"))
    assert doc.find("h1").text() == title
    assert doc.find("p", cls="code").text() == str(status)
    sign_out = doc.find("form", action="/console/sign-out")
    assert sign_out.find("input", name="csrf_token").attrs["value"] == "t"


def test_links_follow_the_configured_base(parse: Parse) -> None:
    console = Console(Urls(base="/ops/console", static_base="/assets"))
    doc = parse(console.tree_page(samples.demo_tree(), viewer=samples.AUDITOR))
    assert doc.find("link", rel="stylesheet").attrs["href"] == "/assets/console.css"
    assert "/ops/console/claims/30" in doc.links()
    assert all(not h.startswith("/console/") for h in doc.links())


@pytest.mark.parametrize("custody", ["self", "hosted"])
def test_a_pieces_page_shows_its_holders_custody_as_the_tree_does(
    console: Console, parse: Parse, custody: str
) -> None:
    """The holder's custody on the piece's page is the word its node in the tree carries."""
    tree = samples.demo_tree()
    root = tree["root"]
    holder = root["holder"]
    members = {**samples.MEMBERS, holder: {"name": "Holder Co.", "custody": custody}}
    drawn = parse(console.tree_page(tree, members=members))
    node = next(g for g in drawn.find_all("g", cls="node") if g.attrs.get("data-id") == "30")
    piece = {**samples.member_home()["claims"][0], "id": root["id"], "holder": holder}
    doc = parse(console.claim_page(piece, [], members=members))
    chip = doc.find("span", cls="custody")
    assert chip.text() == node.find("g", cls="custody").text() == custody
    assert f"cu-{custody}" in chip.classes
    # a holder the platform knows no custody of: nothing claimed
    unknown = parse(console.claim_page(piece, [], members={}))
    assert unknown.find_all("span", cls="custody") == []
