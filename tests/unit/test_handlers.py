"""Every indexer handler against an in-memory unit of work: the rows each event makes or
changes, as the contract changed its storage (no chain, no database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from indexer.handlers import HANDLERS, prefetch_keys
from indexer.handlers.members import ROLE_BITS
from ledger.artifacts import load_artifact
from ledger.roles import Role
from tests.support.fakes import MemoryUnitOfWork, address, event, hx

CORE, SUP1, SUP2, BANK, AGENT = (address(n) for n in ("core", "sup1", "sup2", "bank", "agent"))
ZERO = hx(0)
ZERO_ADDRESS = "0x" + "00" * 20
SUPPLIER_ROLE = "0x" + Role.SUPPLIER.role_id.hex()
FINANCIER_ROLE = "0x" + Role.FINANCIER.role_id.hex()
INVOICE = hx(0x1A)
DUE = 5_000_000


async def apply(uow: MemoryUnitOfWork, key: str, t: int = 1_000, **args: Any) -> None:
    await uow.apply(event(key, **args), block_time=t)


def row(uow: MemoryUnitOfWork, table: str, *key: object) -> dict[str, Any]:
    return uow.rows[table][tuple(key)]


async def test_members_roles_kyc_suspension_and_pause() -> None:
    uow = MemoryUnitOfWork()
    await apply(uow, "MemberRegistry:RoleGranted", role=SUPPLIER_ROLE, account=SUP1, sender=CORE)
    await apply(uow, "MemberRegistry:MemberRegistered", account=SUP1, kycExpiresAt=9_000)
    member = row(uow, "members", SUP1)
    assert member["roles"] == ROLE_BITS[SUPPLIER_ROLE]  # from the grant made before
    assert (member["status"], member["kyc_expires_at"]) == ("active", 9_000)
    await apply(uow, "MemberRegistry:RoleGranted", role=FINANCIER_ROLE, account=SUP1, sender=CORE)
    assert member["roles"] == Role.SUPPLIER.bit | Role.FINANCIER.bit
    await apply(uow, "MemberRegistry:RoleRevoked", role=FINANCIER_ROLE, account=SUP1, sender=CORE)
    assert member["roles"] == Role.SUPPLIER.bit
    assert (FINANCIER_ROLE, SUP1) not in uow.rows["role_grants"]
    await apply(uow, "MemberRegistry:MemberKycRenewed", account=SUP1, kycExpiresAt=12_000)
    assert member["kyc_expires_at"] == 12_000
    await apply(uow, "MemberRegistry:MemberSuspended", account=SUP1, reasonHash=hx(7))
    assert (member["status"], member["suspension_reason"]) == ("suspended", hx(7))
    await apply(uow, "MemberRegistry:MemberReinstated", account=SUP1)
    assert (member["status"], member["suspension_reason"]) == ("active", None)
    await apply(uow, "MemberRegistry:Paused", account=CORE)
    assert row(uow, "platform_state", "paused")["value"] == "true"
    await apply(uow, "MemberRegistry:Unpaused", account=CORE)
    assert row(uow, "platform_state", "paused")["value"] == "false"


async def test_invoices_lifecycle() -> None:
    uow = MemoryUnitOfWork()
    await apply(
        uow,
        "InvoiceRegistry:InvoiceRegistered",
        invoiceId=INVOICE,
        seller=SUP1,
        buyer=CORE,
        amount=500,
        issueDate=900,
        documentHash=hx(2),
    )
    invoice = row(uow, "invoices", INVOICE)
    assert invoice["status"] == "registered"
    assert (invoice["seller"], invoice["buyer"], invoice["amount"]) == (SUP1, CORE, 500)
    await apply(uow, "InvoiceRegistry:InvoiceConfirmed", invoiceId=INVOICE)
    assert invoice["status"] == "confirmed"
    await apply(uow, "InvoiceRegistry:InvoiceUsed", invoiceId=INVOICE, payableId=3, claimId=0)
    assert (invoice["status"], invoice["payable_id"], invoice["claim_id"]) == ("used", 3, None)
    await apply(uow, "InvoiceRegistry:InvoiceReleased", invoiceId=INVOICE)
    assert (invoice["status"], invoice["payable_id"]) == ("confirmed", None)
    await apply(uow, "InvoiceRegistry:InvoiceVoided", invoiceId=INVOICE)
    assert invoice["status"] == "voided"


async def _issued(uow: MemoryUnitOfWork, face: int = 1_000, agent: str = AGENT) -> None:
    await apply(
        uow,
        "ClaimLedger:PayableIssued",
        t=1_234,
        payableId=1,
        obligor=CORE,
        supplier=SUP1,
        faceValue=face,
        dueDate=DUE,
        clearingAgent=agent,
        rootClaimId=1,
        longTerm=False,
        invoiceIds=[INVOICE],
    )


async def test_payable_issued_makes_the_payable_its_root_piece_and_the_obligors_account() -> None:
    uow = MemoryUnitOfWork()
    await apply(uow, "ClaimLedger:ProgramLimitSet", obligor=CORE, programLimit=10_000)
    await _issued(uow)
    payable = row(uow, "payables", 1)
    assert payable["status"] == "issued"
    assert (payable["issued_at"], payable["face_value"], payable["settled_value"]) == (
        1_234,
        1_000,
        0,
    )
    assert payable["clearing_agent"] == AGENT
    root = row(uow, "claims", 1)
    assert (root["holder"], root["amount"], root["depth"], root["parent_id"]) == (
        SUP1,
        1_000,
        0,
        None,
    )
    assert (root["status"], root["due_date"], root["invoice_id"]) == ("active", DUE, None)
    assert uow.appended["payable_invoices"] == [
        {"payable_id": 1, "position": 0, "invoice_id": INVOICE, "block_number": 10}
    ]
    account = row(uow, "obligor_accounts", CORE)
    assert (account["program_limit"], account["outstanding"]) == (10_000, 1_000)


async def test_no_clearing_agent_is_none() -> None:
    uow = MemoryUnitOfWork()
    await _issued(uow, agent=ZERO_ADDRESS)
    assert row(uow, "payables", 1)["clearing_agent"] is None


async def test_payable_cancelled_overdue_settled() -> None:
    uow = MemoryUnitOfWork()
    await _issued(uow)
    overdue = {"payableId": 1, "unsettledValue": 1_000}
    await apply(uow, "ClaimLedger:PayableOverdue", t=9_000, overdueFrom=7_000, **overdue)
    assert row(uow, "payables", 1)["status"] == "overdue"
    assert row(uow, "obligor_accounts", CORE)["last_overdue_at"] == 7_000  # when it fell overdue
    await apply(uow, "ClaimLedger:PayableOverdue", t=9_001, overdueFrom=8_000, **overdue)
    account = row(uow, "obligor_accounts", CORE)
    assert (account["previous_overdue_at"], account["last_overdue_at"]) == (7_000, 8_000)
    # marked later but fell overdue earlier: it joins the two latest in its place, or not at all
    await apply(uow, "ClaimLedger:PayableOverdue", t=9_002, overdueFrom=7_500, **overdue)
    account = row(uow, "obligor_accounts", CORE)
    assert (account["previous_overdue_at"], account["last_overdue_at"]) == (7_500, 8_000)
    await apply(uow, "ClaimLedger:PayableOverdue", t=9_003, overdueFrom=6_000, **overdue)
    account = row(uow, "obligor_accounts", CORE)
    assert (account["previous_overdue_at"], account["last_overdue_at"]) == (7_500, 8_000)
    await apply(uow, "ClaimLedger:PayableSettled", payableId=1)
    assert row(uow, "payables", 1)["status"] == "settled"
    await apply(uow, "ClaimLedger:PayableCancelled", payableId=1, rootClaimId=1)
    assert row(uow, "payables", 1)["status"] == "cancelled"
    assert row(uow, "claims", 1)["status"] == "cancelled"
    assert row(uow, "obligor_accounts", CORE)["outstanding"] == 0


async def test_split_transfer_freeze_settle() -> None:
    uow = MemoryUnitOfWork()
    await _issued(uow)
    await apply(
        uow,
        "ClaimLedger:ClaimSplit",
        parentId=1,
        claimId=2,
        payableId=1,
        depth=1,
        to=SUP2,
        value=300,
        invoiceId=ZERO,
    )
    assert row(uow, "claims", 1)["amount"] == 700
    child = row(uow, "claims", 2)
    assert (child["parent_id"], child["depth"], child["holder"], child["amount"]) == (
        1,
        1,
        SUP2,
        300,
    )
    assert (child["due_date"], child["invoice_id"], child["status"]) == (DUE, None, "active")
    await apply(uow, "ClaimLedger:ClaimFrozen", claimId=2, reasonHash=hx(9))
    assert (child["frozen"], child["status"]) == (True, "frozen")
    await apply(uow, "ClaimLedger:ClaimUnfrozen", claimId=2)
    assert (child["frozen"], child["status"]) == (False, "active")
    await apply(uow, "ClaimLedger:ClaimTransferred", claimId=2, to=BANK)
    assert (child["holder"], child["status"]) == (BANK, "active")
    await apply(
        uow,
        "ClaimLedger:ClaimSettled",
        claimId=2,
        payableId=1,
        holder=BANK,
        value=300,
        paymentRef=hx(5),
    )
    assert child["status"] == "settled"
    assert row(uow, "payables", 1)["settled_value"] == 300
    assert row(uow, "obligor_accounts", CORE)["outstanding"] == 700
    (settlement,) = uow.appended["settlements"]
    assert (settlement["claim_id"], settlement["amount"], settlement["holder"]) == (2, 300, BANK)


async def test_split_citing_a_trade_invoice_keeps_it() -> None:
    uow = MemoryUnitOfWork()
    await _issued(uow)
    await apply(
        uow,
        "ClaimLedger:ClaimSplit",
        parentId=1,
        claimId=2,
        payableId=1,
        depth=1,
        to=SUP2,
        value=1,
        invoiceId=INVOICE,
    )
    assert row(uow, "claims", 2)["invoice_id"] == INVOICE


async def _applied(uow: MemoryUnitOfWork, amount: int = 400) -> None:
    await _issued(uow)
    await apply(
        uow,
        "FinancingDesk:FinancingApplied",
        financingId=1,
        claimId=1,
        applicant=SUP1,
        financier=BANK,
        amount=amount,
        expiresAt=4_000,
        minAdvance=0,
        recourse=False,
    )


async def test_financing_applied_locks_and_approved_moves_the_amount() -> None:
    uow = MemoryUnitOfWork()
    await apply(
        uow, "FinancingDesk:ExposureLimitSet", financier=BANK, obligor=CORE, exposureLimit=9
    )
    await _applied(uow)
    root = row(uow, "claims", 1)
    assert (root["locked_amount"], root["status"]) == (400, "locked")
    financing = row(uow, "financings", 1)
    assert (financing["status"], financing["obligor"], financing["amount"]) == (
        "applied",
        CORE,
        400,
    )
    assert (financing["advance"], financing["registration_no"]) == (0, None)
    await apply(
        uow,
        "ClaimLedger:ClaimSplit",
        parentId=1,
        claimId=2,
        payableId=1,
        depth=1,
        to=BANK,
        value=400,
        invoiceId=ZERO,
    )
    await apply(
        uow,
        "FinancingDesk:FinancingApproved",
        financingId=1,
        financier=BANK,
        advance=390,
        discount=8,
        fees=2,
        annualRateBps=500,
        recourse=True,
        registrationNo=hx(0xAB),
        disbursementRef=ZERO,
        financedClaimId=2,
    )
    assert financing["status"] == "approved"
    assert (financing["advance"], financing["discount"], financing["fees"]) == (390, 8, 2)
    assert (financing["registration_no"], financing["disbursement_ref"]) == (hx(0xAB), None)
    assert (root["locked_amount"], root["status"]) == (0, "active")
    financed = row(uow, "claims", 2)
    assert (financed["financed"], financed["status"]) == (True, "financed")
    exposure = row(uow, "exposures", BANK, CORE)
    assert (exposure["outstanding"], exposure["exposure_limit"]) == (400, 9)
    await apply(uow, "FinancingDesk:ExposureReleased", financier=BANK, obligor=CORE, value=400)
    assert exposure["outstanding"] == 0
    # A financier passing its piece on: the transfer ends its holding.
    await apply(uow, "ClaimLedger:ClaimTransferred", claimId=2, to=SUP2)
    assert (financed["financed"], financed["status"]) == (False, "active")


@pytest.mark.parametrize(
    ("key", "status"),
    [
        ("FinancingDesk:FinancingRejected", "rejected"),
        ("FinancingDesk:FinancingWithdrawn", "withdrawn"),
        ("FinancingDesk:FinancingExpired", "expired"),
    ],
)
async def test_a_decision_other_than_approval_unlocks(key: str, status: str) -> None:
    uow = MemoryUnitOfWork()
    await _applied(uow)
    await apply(uow, key, financingId=1, reasonHash=hx(3))
    financing = row(uow, "financings", 1)
    assert financing["status"] == status
    assert (row(uow, "claims", 1)["locked_amount"], row(uow, "claims", 1)["status"]) == (
        0,
        "active",
    )
    assert financing["reason_hash"] == (hx(3) if status == "rejected" else None)


async def test_financing_desk_bound_is_platform_state() -> None:
    uow = MemoryUnitOfWork()
    await apply(uow, "ClaimLedger:FinancingDeskBound", financingDesk=BANK)
    assert row(uow, "platform_state", "financing_desk")["value"] == BANK


async def test_an_event_about_an_unknown_object_is_refused() -> None:
    uow = MemoryUnitOfWork()
    with pytest.raises(LookupError):
        await uow.apply(event("ClaimLedger:ClaimFrozen", claimId=99, reasonHash=ZERO))


def test_prefetch_lists_the_rows_handlers_read() -> None:
    split = event(
        "ClaimLedger:ClaimSplit",
        parentId=1,
        claimId=2,
        payableId=1,
        depth=1,
        to=SUP2,
        value=1,
        invoiceId=ZERO,
    )
    limit = event("FinancingDesk:ExposureLimitSet", financier=BANK, obligor=CORE, exposureLimit=1)
    wanted = prefetch_keys([split, limit, event("ClaimLedger:Unhandled", claimId=5)])
    assert wanted["claims"] == {(1,), (2,)}
    assert wanted["payables"] == {(1,)}
    assert wanted["exposures"] == {(BANK, CORE)}
    assert wanted["obligor_accounts"] == {(CORE,)}


def test_every_handler_is_exercised_here() -> None:
    # Every registered handler is applied by a test of this module (named here as it is
    # applied, so the check holds whichever of its tests a worker runs).
    source = Path(__file__).read_text()
    missing = sorted(key for key in HANDLERS if f'"{key}"' not in source)
    assert missing == []


def test_approval_events_are_kept_raw_not_handled() -> None:
    # docs/erc3525.md: ERC-721 / ERC-3525 approvals change no business state, so the mirror
    # keeps them as raw events only (like Transfer, TransferValue and SlotChanged); the
    # allowance views are read from the chain.
    for name in ("Approval", "ApprovalForAll", "ApprovalValue"):
        assert f"ClaimLedger:{name}" not in HANDLERS
    events = {e["name"] for e in load_artifact("ClaimLedger").abi if e.get("type") == "event"}
    assert {"Approval", "ApprovalForAll", "ApprovalValue"} <= events
