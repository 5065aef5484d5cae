"""Events (SPEC I-8, I-10): every transition emits exactly its domain event, once; a reverted
call emits nothing.

Each case performs one transition and compares the receipt's decoded logs (by emitting
contract and topic, against the four contracts' ABIs) with the exact multiset of events it
must carry. Besides the domain event, the allowed extras are listed explicitly: the
ERC-3525 / ERC-721 compatibility events of a piece move (``Transfer``, ``SlotChanged``,
``TransferValue``), OpenZeppelin's ``RoleGranted`` per role at registration, the
``InvoiceUsed`` / ``InvoiceReleased`` of each invoice a payable or transfer touches and the
``ExposureReleased`` of a financed piece that is passed on or settled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.types import TxReceipt

from ledger.deployment import DAY
from ledger.roles import Role, roles_to_mask
from ledger.bindings import ZERO_ADDRESS, ZERO_HASH
from tests.support.contracts import (
    pay_ref,
    EXPLICIT_GAS,
    GRACE,
    EventDecoder,
    apply,
    call_tx,
    finance,
    terms_for,
    transact_at,
)
from bench.cast import Actor, Platform

FACE = 1_000_000
REASON = keccak(b"reason")
MOVE = {"Transfer": 1, "SlotChanged": 1, "TransferValue": 1}  # ERC-3525 events of a new piece

Case = Callable[[Platform], Awaitable[tuple[TxReceipt, dict[str, int]]]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__.removeprefix("_")] = fn
    return fn


def _new_account() -> str:
    return to_checksum_address(keccak(b"events-new-member")[12:])


# ---- members --------------------------------------------------------------------------------


@case
async def _registerMember(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    mask = roles_to_mask([Role.SUPPLIER, Role.FINANCIER])
    kyc = await p.now() + 365 * DAY
    r = await p.operator.transact(p.members.functions.registerMember(_new_account(), mask, kyc))
    return r, {"MemberRegistered": 1, "RoleGranted": 2}


@case
async def _renewKyc(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    kyc = await p.now() + 900 * DAY
    r = await p.operator.transact(p.members.functions.renewKyc(p.sup2.address, kyc))
    return r, {"MemberKycRenewed": 1}


@case
async def _suspendMember(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    r = await p.operator.transact(p.members.functions.suspendMember(p.sup2.address, REASON))
    return r, {"MemberSuspended": 1}


@case
async def _reinstateMember(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    await p.operator.transact(p.members.functions.suspendMember(p.sup2.address, REASON))
    r = await p.operator.transact(p.members.functions.reinstateMember(p.sup2.address))
    return r, {"MemberReinstated": 1}


@case
async def _pause(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    return await p.operator.transact(p.members.functions.pause()), {"Paused": 1}


@case
async def _unpause(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    await p.operator.transact(p.members.functions.pause())
    return await p.operator.transact(p.members.functions.unpause()), {"Unpaused": 1}


# ---- invoices and limits --------------------------------------------------------------------


@case
async def _registerInvoice(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    now = await p.now()
    fn = p.invoices.functions.registerInvoice(
        p.unique("i"), p.core.address, FACE, now - 60, p.unique("d")
    )
    return await p.sup1.transact(fn), {"InvoiceRegistered": 1}


@case
async def _confirmInvoice(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    invoice_id = await p.invoice(p.sup1, p.core, FACE, confirm=False)
    r = await p.core.transact(p.invoices.functions.confirmInvoice(invoice_id))
    return r, {"InvoiceConfirmed": 1}


@case
async def _voidInvoice(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    invoice_id = await p.invoice(p.sup1, p.core, FACE)
    return await p.sup1.transact(p.invoices.functions.voidInvoice(invoice_id)), {"InvoiceVoided": 1}


@case
async def _setProgramLimit(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    r = await p.operator.transact(p.claim_ledger.functions.setProgramLimit(p.core.address, 5))
    return r, {"ProgramLimitSet": 1}


@case
async def _setExposureLimit(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    r = await p.bank.transact(p.desk.functions.setExposureLimit(p.core.address, 5))
    return r, {"ExposureLimitSet": 1}


# ---- payables and pieces --------------------------------------------------------------------


@case
async def _issuePayable_two_invoices(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    a = await p.invoice(p.sup1, p.core, FACE // 2)
    b = await p.invoice(p.sup1, p.core, FACE // 2)
    due = await p.now() + 30 * DAY
    r = await p.core.transact(
        p.claim_ledger.functions.issuePayable(p.sup1.address, FACE, due, [a, b], p.agent.address)
    )
    events = EventDecoder(p)
    issued = events.one(r, "PayableIssued")
    assert (issued["payableId"], issued["rootClaimId"], issued["faceValue"]) == (1, 1, FACE)
    assert list(issued["invoiceIds"]) == [a, b]
    assert issued["clearingAgent"] == p.agent.address
    transfer = events.one(r, "Transfer")
    assert (transfer["from"], transfer["to"], transfer["tokenId"]) == (
        ZERO_ADDRESS,
        p.sup1.address,
        1,
    )
    value = events.one(r, "TransferValue")
    assert (value["_fromTokenId"], value["_toTokenId"], value["_value"]) == (0, 1, FACE)
    slot = events.one(r, "SlotChanged")
    assert (slot["_tokenId"], slot["_oldSlot"], slot["_newSlot"]) == (1, 0, 1)
    return r, {"PayableIssued": 1, "InvoiceUsed": 2, **MOVE}


@case
async def _split(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    r = await p.sup1.transact(p.claim_ledger.functions.split(root, p.sup2.address, 300, ZERO_HASH))
    events = EventDecoder(p)
    split = events.one(r, "ClaimSplit")
    assert (split["parentId"], split["claimId"], split["payableId"], split["value"]) == (
        root,
        root + 1,
        pid,
        300,
    )
    assert (split["from"], split["to"], split["depth"]) == (p.sup1.address, p.sup2.address, 1)
    value = events.one(r, "TransferValue")
    assert (value["_fromTokenId"], value["_toTokenId"], value["_value"]) == (root, root + 1, 300)
    return r, {"ClaimSplit": 1, **MOVE}


@case
async def _split_with_trade_invoice(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    invoice_id = await p.invoice(p.sup2, p.sup1, 300)
    r = await p.sup1.transact(p.claim_ledger.functions.split(root, p.sup2.address, 300, invoice_id))
    return r, {"ClaimSplit": 1, "InvoiceUsed": 1, **MOVE}


@case
async def _transferClaim(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    r = await p.sup1.transact(
        p.claim_ledger.functions.transferClaim(root, p.sup2.address, ZERO_HASH)
    )
    moved = EventDecoder(p).one(r, "ClaimTransferred")
    assert (moved["claimId"], moved["from"], moved["to"]) == (root, p.sup1.address, p.sup2.address)
    return r, {"ClaimTransferred": 1, "Transfer": 1}


@case
async def _erc721_transferFrom(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    fn = p.claim_ledger.get_function_by_signature("transferFrom(address,address,uint256)")
    r = await p.sup1.transact(fn(p.sup1.address, p.sup2.address, root))
    return r, {"ClaimTransferred": 1, "Transfer": 1}


@case
async def _erc3525_transferFrom(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    fn = p.claim_ledger.get_function_by_signature("transferFrom(uint256,address,uint256)")
    r = await p.sup1.transact(fn(root, p.sup2.address, 5))
    return r, {"ClaimSplit": 1, **MOVE}


@case
async def _split_of_financed_piece(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    piece = await finance(p, p.sup1, root, p.bank, 400_000)
    r = await p.bank.transact(
        p.claim_ledger.functions.split(piece, p.sup3.address, 1_000, ZERO_HASH)
    )
    return r, {"ClaimSplit": 1, "ExposureReleased": 1, **MOVE}


@case
async def _transfer_of_financed_piece(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    piece = await finance(p, p.sup1, root, p.bank, 400_000)
    r = await p.bank.transact(
        p.claim_ledger.functions.transferClaim(piece, p.sup3.address, ZERO_HASH)
    )
    released = EventDecoder(p).one(r, "ExposureReleased")
    assert (released["financier"], released["claimId"], released["value"]) == (
        p.bank.address,
        piece,
        400_000,
    )
    return r, {"ClaimTransferred": 1, "Transfer": 1, "ExposureReleased": 1}


@case
async def _freezeClaim(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    return await p.operator.transact(p.claim_ledger.functions.freezeClaim(root, REASON)), {
        "ClaimFrozen": 1
    }


@case
async def _unfreezeClaim(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    await p.operator.transact(p.claim_ledger.functions.freezeClaim(root, REASON))
    return await p.operator.transact(p.claim_ledger.functions.unfreezeClaim(root)), {
        "ClaimUnfrozen": 1
    }


@case
async def _cancelPayable(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    pid, _root, _due = await p.issue(p.core, p.sup1, FACE)
    r = await p.sup1.transact(p.claim_ledger.functions.cancelPayable(pid))
    return r, {"PayableCancelled": 1, "InvoiceReleased": 1, "TransferValue": 1, "Transfer": 1}


# ---- financing ------------------------------------------------------------------------------


@case
async def _applyForFinancing(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    expires = await p.now() + DAY
    r = await p.sup1.transact(
        p.desk.functions.applyForFinancing(root, p.bank.address, 400_000, expires, 0, False)
    )
    return r, {"FinancingApplied": 1}


async def _approve(p: Platform, amount: int) -> TxReceipt:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    fid = await apply(p, p.sup1, root, p.bank, amount)
    terms = await terms_for(p, fid)
    r: TxReceipt = await p.bank.transact(p.desk.functions.approveFinancing(fid, terms.tuple()))
    approved = EventDecoder(p).one(r, "FinancingApproved")
    assert (approved["financingId"], approved["financier"], approved["advance"]) == (
        fid,
        p.bank.address,
        terms.advance,
    )
    return r


@case
async def _approveFinancing_part(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    return await _approve(p, 400_000), {"FinancingApproved": 1, "ClaimSplit": 1, **MOVE}


@case
async def _approveFinancing_whole(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    return await _approve(p, FACE), {"FinancingApproved": 1, "ClaimTransferred": 1, "Transfer": 1}


@case
async def _approveFinancing_of_financed_piece(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    piece = await finance(p, p.sup1, root, p.bank, 400_000)
    fid = await apply(p, p.bank, piece, p.bank2, 100_000)
    terms = await terms_for(p, fid)
    r = await p.bank2.transact(p.desk.functions.approveFinancing(fid, terms.tuple()))
    return r, {"FinancingApproved": 1, "ClaimSplit": 1, "ExposureReleased": 1, **MOVE}


async def _pending(p: Platform, expires_in: int = DAY) -> int:
    _pid, root, _due = await p.issue(p.core, p.sup1, FACE)
    return await apply(p, p.sup1, root, p.bank, 400_000, expires_in=expires_in)


@case
async def _rejectFinancing(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    fid = await _pending(p)
    r = await p.bank.transact(p.desk.functions.rejectFinancing(fid, REASON))
    return r, {"FinancingRejected": 1}


@case
async def _withdrawFinancing(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    fid = await _pending(p)
    return await p.sup1.transact(p.desk.functions.withdrawFinancing(fid)), {"FinancingWithdrawn": 1}


@case
async def _expireFinancing(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    fid = await _pending(p)
    await p.warp_to((await p.suite.financing(fid)).expires_at)
    return await p.outsider.transact(p.desk.functions.expireFinancing(fid)), {"FinancingExpired": 1}


# ---- settlement and overdue -----------------------------------------------------------------


@case
async def _settleClaim_not_last(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, due = await p.issue(p.core, p.sup1, FACE, due_in=DAY)
    child = await p.split(p.sup1, root, p.sup2, 300)
    await p.warp_to(due)
    r = await p.core.transact(p.claim_ledger.functions.settleClaim(child, pay_ref(child)))
    settled = EventDecoder(p).one(r, "ClaimSettled")
    assert (settled["claimId"], settled["holder"], settled["value"], settled["paymentRef"]) == (
        child,
        p.sup2.address,
        300,
        pay_ref(child),
    )
    return r, {"ClaimSettled": 1}


@case
async def _settleClaim_last(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, due = await p.issue(p.core, p.sup1, FACE, due_in=DAY, agent=p.agent)
    child = await p.split(p.sup1, root, p.sup2, 300)
    await p.warp_to(due)
    await p.core.transact(p.claim_ledger.functions.settleClaim(child, pay_ref(child)))
    r = await p.agent.transact(p.claim_ledger.functions.settleClaim(root, pay_ref(root)))
    return r, {"ClaimSettled": 1, "PayableSettled": 1}


@case
async def _settleClaim_financed(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, due = await p.issue(p.core, p.sup1, FACE, due_in=30 * DAY)
    piece = await finance(p, p.sup1, root, p.bank, 400_000)
    await p.warp_to(due)
    r = await p.core.transact(p.claim_ledger.functions.settleClaim(piece, pay_ref(piece)))
    return r, {"ClaimSettled": 1, "ExposureReleased": 1}


@case
async def _settleClaims_batch_with_last(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    _pid, root, due = await p.issue(p.core, p.sup1, FACE, due_in=DAY)
    a = await p.split(p.sup1, root, p.sup2, 300)
    b = await p.split(p.sup1, root, p.sup3, 300)
    await p.warp_to(due)
    r = await p.core.transact(
        p.claim_ledger.functions.settleClaims([a, root, b], [pay_ref(a), pay_ref(root), pay_ref(b)])
    )
    return r, {"ClaimSettled": 3, "PayableSettled": 1}


@case
async def _markOverdue(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    pid, _root, due = await p.issue(p.core, p.sup1, FACE, due_in=DAY)
    await p.warp_to(due + GRACE + 1)
    return await p.outsider.transact(p.claim_ledger.functions.markOverdue(pid)), {
        "PayableOverdue": 1
    }


@case
async def _markOverdue_third_suspends(p: Platform) -> tuple[TxReceipt, dict[str, int]]:
    pids = [(await p.issue(p.core, p.sup1, FACE, due_in=DAY))[0] for _ in range(3)]
    due = (await p.suite.payable(pids[-1])).due_date
    await p.warp_to(due + GRACE + 1)
    for pid in pids[:2]:
        await p.outsider.transact(p.claim_ledger.functions.markOverdue(pid))
    r = await p.outsider.transact(p.claim_ledger.functions.markOverdue(pids[2]))
    suspended = EventDecoder(p).one(r, "MemberSuspended")
    assert (suspended["account"], suspended["automatic"]) == (p.core.address, True)
    return r, {"PayableOverdue": 1, "MemberSuspended": 1}


@pytest.mark.parametrize("name", list(CASES))
async def test_transition_emits_exactly_its_events(platform: Platform, name: str) -> None:
    receipt, expected = await CASES[name](platform)
    assert receipt["status"] == 1
    got = EventDecoder(platform).names(receipt)
    assert got == Counter(expected), f"{name}: expected {dict(expected)}, got {dict(got)}"


# ---- reverted calls emit nothing ------------------------------------------------------------


async def _mined_failure(actor: Actor, fn: Any) -> TxReceipt:
    """Send with explicit gas so the failing call is mined; return its receipt."""
    pending = await actor.sender.send(call_tx(fn, EXPLICIT_GAS))
    receipt = await pending.receipt()
    assert receipt["status"] == 0
    return receipt


async def test_reverted_calls_emit_nothing(platform: Platform) -> None:
    p = platform
    pid, root, due = await p.issue(p.core, p.sup1, FACE, due_in=30 * DAY)
    receipts: dict[str, TxReceipt] = {}
    receipts["split too much"] = await _mined_failure(
        p.sup1, p.claim_ledger.functions.split(root, p.sup2.address, FACE + 1, ZERO_HASH)
    )
    receipts["settle before due"] = await _mined_failure(
        p.core, p.claim_ledger.functions.settleClaim(root, pay_ref(root))
    )
    # reverts after events were already emitted in the same call frame tree
    short = await p.invoice(p.sup1, p.core, FACE - 1)
    receipts["issue: invoices short (after InvoiceUsed)"] = await _mined_failure(
        p.core,
        p.claim_ledger.functions.issuePayable(p.sup1.address, FACE, due, [short], ZERO_ADDRESS),
    )
    wrong = await p.invoice(p.sup1, p.sup2, 10)  # sold by the holder: wrong direction
    receipts["split: bad trade invoice (after mint)"] = await _mined_failure(
        p.sup1, p.claim_ledger.functions.split(root, p.sup2.address, 10, wrong)
    )
    fid = await apply(p, p.sup1, root, p.bank, 400_000)
    terms = await terms_for(p, fid)
    bad = (*terms.tuple()[:1], terms.discount + 1, *terms.tuple()[2:])
    receipts["approve: wrong terms"] = await _mined_failure(
        p.bank, p.desk.functions.approveFinancing(fid, bad)
    )
    await p.operator.transact(p.claim_ledger.functions.freezeClaim(root, REASON))
    receipts["approve: frozen (after exposure booked)"] = await _mined_failure(
        p.bank, p.desk.functions.approveFinancing(fid, terms.tuple())
    )
    receipts["pause by a non-operator"] = await _mined_failure(p.sup1, p.members.functions.pause())
    for what, receipt in receipts.items():
        assert receipt["logs"] == [], f"{what}: a reverted call emitted {receipt['logs']}"
    # and nothing changed
    assert await p.claim_ledger.functions.claimCount().call() == root
    assert (await p.suite.exposure(p.bank.address, p.core.address))[0] == 0
    assert (await p.suite.payable(pid)).settled_value == 0
    assert await p.claim_ledger.functions.payableCount().call() == pid


async def test_time_exact_revert_emits_nothing(platform: Platform) -> None:
    pid, _root, due = await platform.issue(platform.core, platform.sup1, FACE, due_in=DAY)
    await platform.set_next_timestamp(due + GRACE)
    receipt = await _mined_failure(
        platform.outsider, platform.claim_ledger.functions.markOverdue(pid)
    )
    assert receipt["logs"] == []
    ok = await transact_at(
        platform,
        platform.outsider,
        platform.claim_ledger.functions.markOverdue(pid),
        due + GRACE + 1,
    )
    assert EventDecoder(platform).names(ok) == Counter({"PayableOverdue": 1})
