"""Who may see what (AP-2), as the SQL clauses of backend/services/visibility.py select it
from a SQLite mirror filled by the indexer's own handlers and row builders (no chain)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from backend.errors import NotFound
from backend.services import visibility
from indexer import models as m
from tests.support.fakes import Mirror, address, caller, event, hx

CORE, SUP1, SUP2, SUP3, SUP4, BANK, AGENT = (
    address(n) for n in ("core", "sup1", "sup2", "sup3", "sup4", "bank", "agent")
)
ZERO = hx(0)
INVOICE = hx(0x1A)


@pytest.fixture
async def mirror(tmp_path: Path) -> AsyncIterator[Mirror]:
    """Payable 1 (core owes sup1, agent clears it): root piece 1 held by sup1; sup1 split
    piece 2 off for sup2, who passed it whole to sup3; sup3 split piece 3 off it for sup4;
    sup1 applied to the bank for part of piece 1. An invoice from sup1 to core."""
    made = await Mirror.create(tmp_path)
    await made.apply(
        [
            event(
                "InvoiceRegistry:InvoiceRegistered",
                invoiceId=INVOICE,
                seller=SUP1,
                buyer=CORE,
                amount=1_000,
                issueDate=1,
                documentHash=hx(2),
            ),
            event(
                "ClaimLedger:PayableIssued",
                payableId=1,
                obligor=CORE,
                supplier=SUP1,
                faceValue=1_000,
                dueDate=10**9,
                clearingAgent=AGENT,
                rootClaimId=1,
                longTerm=False,
                invoiceIds=[INVOICE],
            ),
            event(
                "ClaimLedger:ClaimSplit",
                parentId=1,
                claimId=2,
                payableId=1,
                depth=1,
                to=SUP2,
                value=300,
                invoiceId=ZERO,
            ),
            event("ClaimLedger:ClaimTransferred", claimId=2, to=SUP3),
            event(
                "ClaimLedger:ClaimSplit",
                parentId=2,
                claimId=3,
                payableId=1,
                depth=2,
                to=SUP4,
                value=100,
                invoiceId=ZERO,
            ),
            event(
                "FinancingDesk:FinancingApplied",
                financingId=1,
                claimId=1,
                applicant=SUP1,
                financier=BANK,
                amount=100,
                expiresAt=10**8,
                minAdvance=0,
                recourse=False,
            ),
        ]
    )
    try:
        yield made
    finally:
        await made.dispose()


async def _ids(mirror: Mirror, who: str, model: Any, clause: Any) -> set[object]:
    async with mirror.sessions() as session:
        return set((await session.execute(select(model.id).where(clause))).scalars())


@pytest.mark.parametrize(
    ("who", "claims", "payables", "financings", "invoices"),
    [
        ("sup1", {1, 2, 3}, {1}, {1}, {INVOICE}),  # the payable's supplier: every piece
        # held piece 2 once; piece 3 was split off it later, by sup3: not sup2's to see
        ("sup2", {2}, {1}, set(), set()),
        ("sup3", {2, 3}, {1}, set(), set()),  # holds piece 2 and split piece 3 off it
        ("sup4", {3}, {1}, set(), set()),  # holds piece 3
        ("core", {1, 2, 3}, {1}, set(), {INVOICE}),  # the obligor
        ("agent", {1, 2, 3}, {1}, set(), set()),  # the clearing agent
        ("bank", {1}, set(), {1}, set()),  # asked to finance piece 1
        ("stranger", set(), set(), set(), set()),
        ("auditor", {1, 2, 3}, {1}, {1}, {INVOICE}),  # everything
    ],
)
async def test_each_party_sees_its_own(
    mirror: Mirror,
    who: str,
    claims: set[int],
    payables: set[int],
    financings: set[int],
    invoices: set[str],
) -> None:
    c = caller(who)
    assert await _ids(mirror, who, m.Claim, visibility.claims_clause(c)) == claims
    assert await _ids(mirror, who, m.Payable, visibility.payables_clause(c)) == payables
    assert await _ids(mirror, who, m.Financing, visibility.financings_clause(c)) == financings
    assert await _ids(mirror, who, m.Invoice, visibility.invoices_clause(c)) == invoices


async def test_single_reads_answer_404_to_others(mirror: Mirror) -> None:
    async with mirror.sessions() as session:
        piece, obligor = await visibility.visible_claim(session, caller("sup3"), 2)
        assert (piece.holder, obligor) == (SUP3, CORE)
        with pytest.raises(NotFound) as hidden:
            await visibility.require_claim(session, caller("sup2"), 1)
        assert hidden.value.code == "claim_not_found"
        with pytest.raises(NotFound) as unknown:
            await visibility.require_claim(session, caller("auditor"), 99)
        assert unknown.value.code == "claim_not_found"
        with pytest.raises(NotFound) as payable:
            await visibility.require_payable(session, caller("stranger"), 1)
        assert payable.value.code == "payable_not_found"
        with pytest.raises(NotFound) as financing:
            await visibility.require_financing(session, caller("sup2"), 1)
        assert financing.value.code == "financing_not_found"
        with pytest.raises(NotFound) as invoice:
            await visibility.require_invoice(session, caller("bank"), INVOICE)
        assert invoice.value.code == "invoice_not_found"
        assert (await visibility.require_invoice(session, caller("core"), INVOICE)).seller == SUP1


@pytest.mark.parametrize(
    ("who", "visible"),
    [("core", True), ("sup1", True), ("agent", True), ("auditor", True), ("sup3", False)],
)
async def test_the_whole_tree_is_for_the_payables_own_parties(
    mirror: Mirror, who: str, visible: bool
) -> None:
    async with mirror.sessions() as session:
        payable = await visibility.require_payable(session, caller("auditor"), 1)
    assert visibility.tree_visible(caller(who), payable) is visible


@pytest.mark.parametrize(
    "who", ["sup1", "sup2", "sup3", "sup4", "core", "agent", "bank", "stranger"]
)
async def test_one_piece_is_read_by_the_list_rule(mirror: Mirror, who: str) -> None:
    """``visible_claim`` asks the rule of one piece (by its own, its parent's and its payable's
    rows); it answers as the list's clause does, piece by piece."""
    c = caller(who)
    listed = await _ids(mirror, who, m.Claim, visibility.claims_clause(c))
    async with mirror.sessions() as session:
        for piece in (1, 2, 3):
            try:
                await visibility.visible_claim(session, c, piece)
                seen = True
            except NotFound:
                seen = False
            assert seen is (piece in listed), (who, piece)


async def _steps(mirror: Mirror, who: str, piece: int) -> int:
    """SQLite's virtual-machine steps (in tens) of one ``visible_claim``, seen or refused."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    async with mirror.sessions() as session:
        raw = await (await session.connection()).get_raw_connection()
        sqlite: Any = raw.driver_connection
        await sqlite.set_progress_handler(count, 10)
        with contextlib.suppress(NotFound):
            await visibility.visible_claim(session, caller(who), piece)
        await sqlite.set_progress_handler(None, 10)
    return steps[0]


async def test_one_piece_costs_the_same_whatever_the_others_splits(mirror: Mirror) -> None:
    """A piece's read looks up that piece, its parent and its payable: 300 splits of another
    payable, none of them the reader's, leave its cost as it was (it once went through every
    ``ClaimSplit`` of the platform, growing with everyone's splits)."""
    cases = [("sup3", 3), ("sup2", 3), ("stranger", 2)]  # split off by sup3; refused; refused
    before = [await _steps(mirror, who, piece) for who, piece in cases]
    others = [
        event(
            "ClaimLedger:PayableIssued",
            block=20,
            payableId=2,
            obligor=CORE,
            supplier=BANK,
            faceValue=10**6,
            dueDate=10**9,
            clearingAgent=ZERO,
            rootClaimId=100,
            longTerm=False,
            invoiceIds=[],
        )
    ]
    others += [
        event(
            "ClaimLedger:ClaimSplit",
            block=21 + n,
            parentId=100,
            claimId=101 + n,
            payableId=2,
            depth=1,
            to=CORE,
            value=1,
            invoiceId=ZERO,
        )
        for n in range(300)
    ]
    await mirror.apply(others)
    after = [await _steps(mirror, who, piece) for who, piece in cases]
    for (who, piece), b, a in zip(cases, before, after, strict=True):
        assert a <= b + 2, (who, piece, b, a)
