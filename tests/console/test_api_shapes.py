"""The pages take the API's own answers: the samples go through the API's response models
(``backend.schemas``) and come out as the JSON a client reads (checksummed addresses, times
as ISO 8601 with Z, hashes in lower case) before they are rendered."""

from __future__ import annotations

from typing import Any

from backend.console import Console
from backend.console.fmt import yuan
from backend.schemas.approvals import ApprovalPublic
from backend.schemas.audit import (
    AuditRecordPublic,
    EventPublic,
    ExposurePublic,
    ReconciliationPublic,
)
from backend.schemas.claims import ClaimEventPublic
from backend.schemas.payables import PayablePublic, PayableTree
from bench import console_samples as samples

Parse = Any


def test_the_tree_answer_as_the_api_serialises_it(console: Console, parse: Parse) -> None:
    raw = samples.demo_tree()
    answer = PayableTree.model_validate(raw).model_dump(mode="json")
    payable = PayablePublic.model_validate(samples.demo_payable()).model_dump(mode="json")
    assert answer["root"]["holder"] != raw["root"]["holder"]  # checksummed by the API
    doc = parse(console.tree_page(answer, payable=payable, members=samples.MEMBERS))
    nodes = {int(g.attrs["data-id"]): g for g in doc.find_all("g", cls="node")}
    assert len(nodes) == 13
    assert nodes[32].find("text", cls="amount").text() == yuan(250_000_055)
    # names and custody found whatever the case of the address
    assert nodes[30].find("text", cls="holder").text() == "华东精密制造有限公司"
    assert nodes[30].find("g", cls="custody").text() == "self"
    assert "2026-09-30 00:00:00 UTC" in doc.find("dl", cls="facts").text()


def test_the_other_answers_as_the_api_serialises_them(console: Console, parse: Parse) -> None:
    exposure = [
        ExposurePublic.model_validate(r).model_dump(mode="json") for r in samples.exposure_rows()
    ]
    doc = parse(console.exposure_page(exposure, members=samples.MEMBERS))
    assert len(doc.find_all("g", cls="bullet")) == 3
    assert "¥14,200,000.55" in doc.text()

    events = [EventPublic.model_validate(e).model_dump(mode="json") for e in samples.events()]
    doc = parse(console.events_page(events, members=samples.MEMBERS))
    assert "2026-03-03 02:11:09 UTC" in doc.text()
    assert "招商银行 上海分行" in doc.text()

    history = [
        ClaimEventPublic.model_validate(e).model_dump(mode="json") for e in samples.events()[1:]
    ]
    claim = samples.member_home()["claims"][0]
    doc = parse(console.claim_page(claim, history))
    assert f"/console/tx/{samples.tx_hash(31)}" in doc.links()

    records = [
        AuditRecordPublic.model_validate(r).model_dump(mode="json") for r in samples.audit_records()
    ]
    doc = parse(console.audit_log_page(records, verification={"ok": True, "records": 6}))
    assert len(doc.find_all("tr", cls="rec-ok")) == 6

    rec = ReconciliationPublic.model_validate(samples.reconciliation()).model_dump(mode="json")
    doc = parse(console.reconciliation_page(rec))
    assert "2 differences" in doc.text()


def test_an_approval_as_the_api_serialises_it(console: Console, parse: Parse) -> None:
    """A pending approval through ``ApprovalPublic`` (checksummed counterparty, ISO time) on
    the home page: its write, amount and counterparty by name."""
    home = samples.member_home()
    approval = ApprovalPublic.model_validate(home["approvals"][0]).model_dump(mode="json")
    doc = parse(
        console.home_page(
            {**home["member"], "dual_control": True},
            approvals=[approval],
            members=samples.MEMBERS,
        )
    )
    row = doc.find("tr", data_approval=approval["id"])
    assert row.find("strong").text() == "claims.transfer"
    assert yuan(20_000_000) in row.text()
    assert samples.MEMBERS[samples.SUPPLIERS[4]]["name"][:20] in row.text()
