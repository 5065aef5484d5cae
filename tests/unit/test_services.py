"""The main services against a fake ledger port and a SQLite mirror (no anvil, no server):
the calls they submit, the answers they build, and what they refuse before the chain.

The fake answers each call with the events a test scripts and applies them to the mirror
through the indexer's own handlers, as the indexer would before a write's answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.errors import Conflict, Invalid, NotFound
from backend.models import ApiKey, AutoDecision, CreditLine, FinancingPolicy, KeystoreEntry
from backend.ports import Ports
from backend.services import (
    claims,
    commands,
    credit_lines,
    financing,
    invoices,
    members,
    payables,
    policy,
    quotes,
)
from backend.services.commands import Command
from backend.services.encodings import encode_registration, sha256_text
from backend.services.lists import chain_position
from ledger import calls
from ledger.codec import DecodedEvent
from ledger.deployment import DAY
from ledger.errors import ContractRevert, DecodedRevert
from ledger.roles import Role
from tests.support.fakes import (
    FakeLedger,
    Mirror,
    address,
    claim_view,
    event,
    hx,
    ports,
    write,
)

CORE, SUP1, SUP2, BANK, AGENT = (address(n) for n in ("core", "sup1", "sup2", "bank", "agent"))
ZERO = hx(0)
NOW = 1_000_000
DUE = NOW + 91 * DAY
DOC = "ab" * 32


@pytest.fixture
async def mirror(tmp_path: Path) -> AsyncIterator[Mirror]:
    made = await Mirror.create(tmp_path)
    try:
        yield made
    finally:
        await made.dispose()


@pytest.fixture
def ledger(mirror: Mirror) -> FakeLedger:
    return FakeLedger(mirror, now=NOW)


@pytest.fixture
def p(mirror: Mirror, ledger: FakeLedger) -> Ports:
    return ports(mirror, ledger)


def invoice_registered(invoice_id: str, seller: str = SUP1, buyer: str = CORE) -> DecodedEvent:
    return event(
        "InvoiceRegistry:InvoiceRegistered",
        invoiceId=invoice_id,
        seller=seller,
        buyer=buyer,
        amount=5_000,
        issueDate=NOW - 10,
        documentHash="0x" + DOC,
    )


def payable_issued(face: int = 1_000) -> DecodedEvent:
    return event(
        "ClaimLedger:PayableIssued",
        payableId=1,
        obligor=CORE,
        supplier=SUP1,
        faceValue=face,
        dueDate=DUE,
        clearingAgent=AGENT,
        rootClaimId=1,
        longTerm=False,
        invoiceIds=[hx(0x1A)],
    )


def split_event(value: int, claim_id: int = 2, to: str = SUP2) -> DecodedEvent:
    return event(
        "ClaimLedger:ClaimSplit",
        parentId=1,
        claimId=claim_id,
        payableId=1,
        depth=1,
        to=to,
        value=value,
        invoiceId=ZERO,
    )


def revert(name: str, **args: object) -> ContractRevert:
    return ContractRevert(DecodedRevert(name, dict(args)))


# -- invoices ---------------------------------------------------------------------------------


async def test_register_an_invoice(p: Ports, ledger: FakeLedger) -> None:
    fingerprint = invoices.fingerprint("9131 0000", "", "No-7")
    ledger.on("registerInvoice", [invoice_registered(fingerprint)])
    answer = await invoices.register(
        p, write("sup1"), CORE, "9131 0000", "", "No-7", 5_000, NOW - 10, DOC
    )
    assert ledger.calls == [calls.register_invoice(fingerprint, CORE, 5_000, NOW - 10, DOC)]
    assert answer["id"] == fingerprint
    assert (answer["status"], answer["seller"], answer["number"]) == ("registered", SUP1, "No-7")
    assert answer["tx_hash"]
    assert answer["block_number"] == 101


async def test_register_answers_from_the_event_when_the_mirror_is_late(
    p: Ports, ledger: FakeLedger
) -> None:
    ledger.mirrored = False
    fingerprint = invoices.fingerprint("X1", "C", "N")
    ledger.on("registerInvoice", [invoice_registered(fingerprint)])
    answer = await invoices.register(p, write("sup1"), CORE, "X1", "C", "N", 5_000, NOW - 10, DOC)
    assert (answer["id"], answer["status"], answer["seller_tax_id"]) == (
        fingerprint,
        "registered",
        "X1",
    )
    assert answer["document_sha256"] == DOC


async def test_only_parties_confirm_an_invoice(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await mirror.apply([invoice_registered(hx(0x1A))])
    with pytest.raises(NotFound):
        await invoices.confirm(p, write("bank"), hx(0x1A))
    assert ledger.calls == []
    ledger.on("confirmInvoice", [event("InvoiceRegistry:InvoiceConfirmed", invoiceId=hx(0x1A))])
    answer = await invoices.confirm(p, write("core"), hx(0x1A))
    assert ledger.calls == [calls.confirm_invoice(hx(0x1A))]
    assert answer["status"] == "confirmed"


# -- payables ---------------------------------------------------------------------------------


async def test_issue_a_payable(p: Ports, ledger: FakeLedger) -> None:
    ledger.on("issuePayable", [payable_issued()])
    answer = await payables.issue(p, write("core"), SUP1, 1_000, DUE, [hx(0x1A)], AGENT)
    assert ledger.calls == [calls.issue_payable(SUP1, 1_000, DUE, [hx(0x1A)], AGENT)]
    assert (answer["id"], answer["root_claim_id"], answer["status"]) == (1, 1, "issued")
    assert answer["invoice_ids"] == [hx(0x1A)]
    assert answer["outstanding_value"] == 1_000


async def test_issue_answers_from_the_event_when_the_mirror_is_late(
    p: Ports, ledger: FakeLedger
) -> None:
    ledger.mirrored = False
    ledger.on("issuePayable", [payable_issued()])
    answer = await payables.issue(p, write("core"), SUP1, 1_000, DUE, [hx(0x1A)], None)
    assert (answer["id"], answer["clearing_agent"], answer["invoice_ids"]) == (1, AGENT, [hx(0x1A)])
    assert answer["issued_at"].timestamp() == NOW


async def test_settle_refuses_pieces_of_another_payable(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await mirror.apply([payable_issued()])
    with pytest.raises(Invalid) as refused:
        await payables.settle(p, write("core"), 1, [{"claim_id": 7, "payment_ref": "BANK-1"}])
    assert (refused.value.code, refused.value.extra) == ("claim_not_in_payable", {"claim_ids": [7]})
    assert ledger.calls == []
    settled = event(
        "ClaimLedger:ClaimSettled",
        claimId=1,
        payableId=1,
        holder=SUP1,
        value=1_000,
        paymentRef="0x" + sha256_text("BANK-1").hex(),
    )
    ledger.on("settleClaim", [settled, event("ClaimLedger:PayableSettled", payableId=1)])
    answer = await payables.settle(p, write("core"), 1, [{"claim_id": 1, "payment_ref": "BANK-1"}])
    assert ledger.calls == [calls.settle_claim(1, sha256_text("BANK-1"))]
    assert answer["payable_settled"] is True
    assert answer["payable"]["status"] == "settled"
    assert answer["settlements"][0]["amount"] == 1_000


# -- claims -----------------------------------------------------------------------------------


async def test_transfer_less_than_the_whole_splits(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await mirror.apply([payable_issued()])
    ledger.on("split", [split_event(300)])
    answer = await claims.transfer(p, write("sup1"), 1, SUP2, 300)
    assert ledger.calls == [calls.split(1, SUP2, 300, None)]
    assert (answer["kind"], answer["claim_id"], answer["from_claim_id"]) == ("split", 2, 1)
    assert (answer["claim"]["holder"], answer["claim"]["parent_id"]) == (SUP2, 1)
    assert answer["source"]["amount"] == 700


async def test_transfer_of_the_whole_checks_the_pending_piece_first(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await mirror.apply([payable_issued()])
    ledger.pending[1] = claim_view(1, 999, SUP1, DUE)  # a split not yet mirrored
    with pytest.raises(Conflict) as changed:
        await claims.transfer(p, write("sup1"), 1, SUP2, 1_000)
    assert (changed.value.code, changed.value.extra) == ("claim_changed", {"amount": 999})
    assert ledger.calls == []
    ledger.pending[1] = claim_view(1, 1_000, SUP1, DUE)
    ledger.on("transferClaim", [event("ClaimLedger:ClaimTransferred", claimId=1, to=SUP2)])
    answer = await claims.transfer(p, write("sup1"), 1, SUP2, 1_000, hx(0x2B))
    assert ledger.calls == [calls.transfer_claim(1, SUP2, hx(0x2B))]
    assert (answer["kind"], answer["claim"]["holder"], answer["to"]) == ("transfer", SUP2, SUP2)


async def test_a_late_mirror_answers_what_it_will_show(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await mirror.apply([payable_issued()])
    ledger.mirrored = False
    ledger.on("split", [split_event(250)])
    answer = await claims.transfer(p, write("sup1"), 1, SUP2, 250)
    assert answer["claim"]["id"] == 2
    assert (answer["claim"]["amount"], answer["claim"]["available_amount"]) == (250, 250)
    assert (answer["claim"]["depth"], answer["claim"]["status"]) == (1, "active")
    assert answer["source"]["amount"] == 1_000  # as it was seen: the mirror is behind


async def test_no_transfer_of_a_piece_the_caller_cannot_see(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await mirror.apply([payable_issued()])
    with pytest.raises(NotFound):
        await claims.transfer(p, write("sup2"), 1, SUP2, 10)
    assert ledger.calls == []


async def test_the_chains_refusal_is_the_answer(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await mirror.apply([payable_issued()])
    ledger.on("split", revert("ClaimPastDueDate", claimId=1))
    with pytest.raises(ContractRevert) as refused:
        await claims.transfer(p, write("sup1"), 1, SUP2, 10)
    assert refused.value.name == "ClaimPastDueDate"


# -- financing --------------------------------------------------------------------------------


async def _applied(p: Ports, mirror: Mirror, ledger: FakeLedger) -> dict[str, object]:
    await mirror.apply([payable_issued()])
    applied = event(
        "FinancingDesk:FinancingApplied",
        financingId=1,
        claimId=1,
        applicant=SUP1,
        financier=BANK,
        amount=400,
        expiresAt=financing.default_expiry(NOW, DUE),
        minAdvance=0,
        recourse=False,
    )
    ledger.on("applyForFinancing", [applied])
    return await financing.apply(p, write("sup1"), 1, BANK, 400)


async def test_apply_locks_with_the_default_expiry(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    answer = await _applied(p, mirror, ledger)
    expiry = NOW + financing.DEFAULT_EXPIRY_S
    assert ledger.calls == [calls.apply_for_financing(1, BANK, 400, expiry)]
    assert (answer["id"], answer["status"], answer["obligor"]) == (1, "applied", CORE)
    assert answer["advance"] is None


async def test_approve_prices_by_the_desks_convention(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await _applied(p, mirror, ledger)
    ledger.calls.clear()
    ledger.submitted.clear()
    with pytest.raises(Invalid) as no_rate:
        await financing.approve(p, write("bank"), 1)
    assert no_rate.value.code == "annual_rate_required"
    await financing.approve(
        p, write("bank"), 1, annual_rate_bps=500, fees=4, registration_no="REG-1"
    )
    pricing = quotes.price(400, 500, 4, DUE, NOW + quotes.APPROVAL_MARGIN_S, None)
    terms = pricing.terms(False, encode_registration("REG-1"), b"\x00" * 32)
    assert ledger.calls == [calls.approve_financing(1, terms)]
    assert pricing.term_days == 91


async def test_only_the_financier_decides_and_reasons_are_hashed(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await _applied(p, mirror, ledger)
    with pytest.raises(NotFound):
        await financing.reject(p, write("sup2"), 1, "no")
    ledger.on(
        "rejectFinancing",
        [event("FinancingDesk:FinancingRejected", financingId=1, reasonHash=hx(1))],
    )
    answer = await financing.reject(p, write("bank"), 1, "too risky")
    assert ledger.calls[-1] == calls.reject_financing(1, sha256_text("too risky"))
    assert answer["status"] == "rejected"


async def test_credit_line_sets_the_limit_and_keeps_the_registration(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    ledger.on(
        "setExposureLimit",
        [
            event(
                "FinancingDesk:ExposureLimitSet", financier=BANK, obligor=CORE, exposureLimit=9_000
            )
        ],
    )
    answer = await credit_lines.set_credit_line(p, write("bank"), CORE, 9_000, "REG-9")
    assert ledger.calls == [calls.set_exposure_limit(CORE, 9_000)]
    assert (answer["limit"], answer["available"], answer["registration_no"]) == (
        9_000,
        9_000,
        "REG-9",
    )
    async with mirror.sessions() as session:
        line = await session.get(CreditLine, (BANK, CORE))
    assert line is not None
    assert line.registration_no == "REG-9"


async def test_a_new_policy_forgets_declined_decisions(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await _applied(p, mirror, ledger)
    async with mirror.sessions() as session:
        session.add(
            AutoDecision(
                financing_id=1, financier=BANK, outcome="declined", detail="x", decided_at=1
            )
        )
        await session.commit()
    answer = await policy.put_policy(p, write("bank"), True, 10_000, 120, [CORE], 500, 10, False)
    assert (answer["enabled"], answer["allowed_obligors"]) == (True, [CORE])
    async with mirror.sessions() as session:
        assert await session.get(AutoDecision, 1) is None
        stored = await session.get(FinancingPolicy, BANK)
    assert stored is not None
    assert json.loads(stored.allowed_obligors) == [CORE]
    await mirror.apply(
        [
            event(
                "MemberRegistry:RoleGranted",
                role="0x" + Role.FINANCIER.role_id.hex(),
                account=BANK,
                sender=CORE,
            ),
            event("MemberRegistry:MemberRegistered", account=BANK, kycExpiresAt=DUE),
        ]
    )
    quote = await quotes.quote(p, write("sup1").caller, 1, 100, BANK, None, None)
    assert (quote["annual_rate_bps"], quote["fee_bps"], quote["term_days"]) == (500, 10, 91)
    assert quote["auto_approval"]["would_approve"] is False  # no credit line yet


# -- members ----------------------------------------------------------------------------------


async def test_onboard_a_member(p: Ports, mirror: Mirror, ledger: FakeLedger) -> None:
    ledger.gas_price_wei = 1
    with pytest.raises(Invalid) as past:
        await members.create_member(p, write("operator"), "Acme", ["supplier"], NOW)
    assert past.value.code == "kyc_expiry_invalid"
    made = address("sup1")
    ledger.on(
        "registerMember",
        [event("MemberRegistry:MemberRegistered", account=made, kycExpiresAt=NOW + DAY)],
    )
    answer = await members.create_member(p, write("operator"), "Acme", ["supplier"], NOW + DAY)
    mask = Role.SUPPLIER.bit
    assert ledger.calls == [calls.register_member(made, mask, NOW + DAY)]
    assert ledger.funded == [(address("operator"), made, members.GAS_ALLOWANCE_WEI)]
    assert (answer["address"], answer["name"]) == (made, "Acme")
    assert answer["api_key"].startswith("tf_")
    async with mirror.sessions() as session:
        assert await session.get(KeystoreEntry, made) is not None
        keys = (await session.execute(select(ApiKey).where(ApiKey.member == made))).scalars()
        assert [k.id for k in keys] == [answer["api_key_id"]]


# -- commands ---------------------------------------------------------------------------------


async def test_a_command_runs_from_its_json_alone(
    p: Ports, mirror: Mirror, ledger: FakeLedger
) -> None:
    await mirror.apply([payable_issued()])
    ledger.on("split", [split_event(100)])
    command = Command(
        "claims.transfer", {"claim_id": 1, "to": SUP2, "amount": 100, "invoice_id": None}
    )
    stored = json.loads(json.dumps({"operation": command.operation, "args": command.args}))
    answer = await commands.execute(p, write("sup1"), Command(stored["operation"], stored["args"]))
    assert answer["kind"] == "split"
    assert answer["claim"]["available_amount"] == 100
    assert ledger.calls == [calls.split(1, SUP2, 100, None)]
    assert commands.spec("claims.transfer").creates


def test_every_write_route_names_a_registered_command() -> None:
    assert set(commands.COMMANDS) >= {
        "members.create",
        "invoices.register",
        "payables.settle",
        "claims.transfer",
        "financing.approve",
        "credit_lines.set",
        "financing_policy.put",
    }
    with pytest.raises(KeyError):
        Command("claims.teleport", {})


async def test_lists_page_by_keyset(p: Ports, mirror: Mirror) -> None:
    await mirror.apply([invoice_registered(hx(n)) for n in (1, 2, 3)])
    await mirror.apply([payable_issued(), split_event(100), split_event(50, claim_id=3)])
    sup1 = write("sup1").caller
    async with mirror.sessions() as session:
        first = await invoices.list_invoices(session, sup1, None, 2)
        rest = await invoices.list_invoices(session, sup1, invoices.invoice_key(first[-1]), 2)
        history = await claims.history(session, sup1, 1, None, 2)
        later = await claims.history(session, sup1, 1, chain_position(history[-1]), 10)
        with pytest.raises(Invalid):
            await invoices.list_invoices(session, sup1, [1, 2, 3], 2)
    assert [i["id"] for i in first + rest] == [hx(1), hx(2), hx(3)]
    assert [e["event"] for e in history + later] == ["PayableIssued", "ClaimSplit", "ClaimSplit"]
