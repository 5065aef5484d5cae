"""Pause (SPEC I-11): while the operator has paused the platform every business mutator
reverts with ``EnforcedPause`` and every view still answers — with the same answers; after
unpausing, each of the refused calls succeeds from the very same state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.abi import collapse_if_tuple
from eth_utils.crypto import keccak

from ledger.artifacts import load_artifact
from ledger.deployment import DAY
from ledger.roles import Role
from ledger.bindings import ZERO_ADDRESS, ZERO_HASH, FinancingStatus, PayableStatus
from tests.support.contracts import GRACE, apply, expect_revert, pay_ref, terms_for, transact_at
from bench.cast import Actor, Platform

FACE = 1_000_000
REASON = keccak(b"reason")
#: View functions that are guards: they revert by design while paused.
GUARDS = {"requireActive", "requireMember", "requireTransfer", "requireNotPaused"}
#: `pure` functions that are mutator stubs (always revert), not views.
STUBS = {"transferFrom"}


@dataclass
class World:
    """The state built before pausing: one object ready for each business mutator."""

    inv_to_confirm: bytes
    inv_to_void: bytes
    inv_to_issue: bytes
    p_cancel: int  # untouched payable its supplier may cancel
    p_moves: int  # payable whose root is split / applied for
    r_moves: int
    r_transfer: int  # a root to transfer whole
    r_transfer_721: int  # another, for the ERC-721 entry point
    f_approve: int
    f_reject: int
    f_withdraw: int
    f_expire: int
    p_settle: int  # due, past grace: settle and mark overdue
    r_settle: int
    c_settle_a: int
    c_settle_b: int


async def build(p: Platform) -> World:
    inv_to_confirm = await p.invoice(p.sup1, p.core, FACE, confirm=False)
    inv_to_void = await p.invoice(p.sup1, p.core, FACE)
    inv_to_issue = await p.invoice(p.sup1, p.core, FACE)
    p_cancel, _r, _d = await p.issue(p.core, p.sup1, FACE)
    p_moves, r_moves, _d = await p.issue(p.core, p.sup1, FACE, due_in=90 * DAY)
    _p, r_transfer, _d = await p.issue(p.core, p.sup1, FACE, due_in=90 * DAY)
    _p, r_transfer_721, _d = await p.issue(p.core, p.sup1, FACE, due_in=90 * DAY)
    f_approve = await apply(p, p.sup1, r_moves, p.bank, 100_000, expires_in=30 * DAY)
    f_reject = await apply(p, p.sup1, r_moves, p.bank, 100_000, expires_in=30 * DAY)
    f_withdraw = await apply(p, p.sup1, r_moves, p.bank, 100_000, expires_in=30 * DAY)
    f_expire = await apply(p, p.sup1, r_moves, p.bank2, 100_000, expires_in=DAY)
    p_settle, r_settle, due = await p.issue(p.core, p.sup1, FACE, due_in=2 * DAY)
    c_settle_a = await p.split(p.sup1, r_settle, p.sup2, 1_000)
    c_settle_b = await p.split(p.sup1, r_settle, p.sup3, 1_000)
    await p.warp_to(due + GRACE + 1)
    return World(
        inv_to_confirm,
        inv_to_void,
        inv_to_issue,
        p_cancel,
        p_moves,
        r_moves,
        r_transfer,
        r_transfer_721,
        f_approve,
        f_reject,
        f_withdraw,
        f_expire,
        p_settle,
        r_settle,
        c_settle_a,
        c_settle_b,
    )


def mutators(
    p: Platform, w: World, now: int, approve_terms: tuple[Any, ...]
) -> list[tuple[str, Actor, Callable[[], Any]]]:
    """Every business mutator as (name, caller, call), in an order that succeeds unpaused."""
    claim_ledger, desk, invoices = p.claim_ledger.functions, p.desk.functions, p.invoices.functions
    erc721_transfer = p.claim_ledger.get_function_by_signature(
        "transferFrom(address,address,uint256)"
    )
    erc3525_split = p.claim_ledger.get_function_by_signature(
        "transferFrom(uint256,address,uint256)"
    )
    new_invoice, new_doc = p.unique("inv"), p.unique("doc")
    return [
        (
            "registerInvoice",
            p.sup1,
            lambda: invoices.registerInvoice(new_invoice, p.core.address, FACE, now - 60, new_doc),
        ),
        ("confirmInvoice", p.core, lambda: invoices.confirmInvoice(w.inv_to_confirm)),
        ("voidInvoice", p.sup1, lambda: invoices.voidInvoice(w.inv_to_void)),
        (
            "issuePayable",
            p.core,
            lambda: claim_ledger.issuePayable(
                p.sup1.address, FACE, now + 30 * DAY, [w.inv_to_issue], ZERO_ADDRESS
            ),
        ),
        ("cancelPayable", p.sup1, lambda: claim_ledger.cancelPayable(w.p_cancel)),
        ("split", p.sup1, lambda: claim_ledger.split(w.r_moves, p.sup2.address, 1_000, ZERO_HASH)),
        ("erc3525.transferFrom", p.sup1, lambda: erc3525_split(w.r_moves, p.sup3.address, 1_000)),
        (
            "applyForFinancing",
            p.sup1,
            lambda: desk.applyForFinancing(w.r_moves, p.bank2.address, 1_000, now + DAY, 0, False),
        ),
        ("approveFinancing", p.bank, lambda: desk.approveFinancing(w.f_approve, approve_terms)),
        ("rejectFinancing", p.bank, lambda: desk.rejectFinancing(w.f_reject, REASON)),
        ("withdrawFinancing", p.sup1, lambda: desk.withdrawFinancing(w.f_withdraw)),
        ("expireFinancing", p.outsider, lambda: desk.expireFinancing(w.f_expire)),
        (
            "transferClaim",
            p.sup1,
            lambda: claim_ledger.transferClaim(w.r_transfer, p.sup2.address, ZERO_HASH),
        ),
        (
            "erc721.transferFrom",
            p.sup1,
            lambda: erc721_transfer(p.sup1.address, p.sup3.address, w.r_transfer_721),
        ),
        ("markOverdue", p.outsider, lambda: claim_ledger.markOverdue(w.p_settle)),
        (
            "settleClaim",
            p.core,
            lambda: claim_ledger.settleClaim(w.c_settle_a, pay_ref(w.c_settle_a)),
        ),
        (
            "settleClaims",
            p.core,
            lambda: claim_ledger.settleClaims(
                [w.c_settle_b, w.r_settle], [pay_ref(w.c_settle_b), pay_ref(w.r_settle)]
            ),
        ),
        ("setExposureLimit", p.bank, lambda: desk.setExposureLimit(p.core2.address, 7)),
        (
            "erc3525.approve",
            p.sup1,
            lambda: p.claim_ledger.get_function_by_signature("approve(uint256,address,uint256)")(
                w.r_moves, p.bank.address, 5
            ),
        ),
        (
            "erc721.approve",
            p.sup1,
            lambda: p.claim_ledger.get_function_by_signature("approve(address,uint256)")(
                p.bank.address, w.r_moves
            ),
        ),
        ("setApprovalForAll", p.sup1, lambda: claim_ledger.setApprovalForAll(p.bank.address, True)),
    ]


def views(p: Platform, w: World) -> list[tuple[str, Any]]:
    """Every view of the five contracts with sensible arguments (guards and stubs aside)."""
    by_name: dict[str, Any] = {
        # a forwarder request (unsigned: verify answers False, hashRequest its digest)
        "request": (p.sup1.address, p.claim_ledger.address, 0, 100_000, 1, 2**40, b"", b""),
        "role": Role.SUPPLIER.role_id,
        "account": p.sup1.address,
        "owner": p.sup1.address,
        "interfaceId": bytes.fromhex("80ac58cd"),
        "invoiceId": w.inv_to_issue,
        "tokenId": w.r_moves,
        "claimId": w.r_moves,
        "payableId": w.p_moves,
        "operator": p.bank.address,
        "obligor": p.core.address,
        "financier": p.bank.address,
        "financingId": w.f_approve,
        "amount": 100_000,
        "annualRateBps": 600,
        "termDays": 90,
        "from": 0,  # pausedSeconds over all time
        "to": 2**64 - 1,
        "registrationNo": bytes(32),
        "disbursementRef": bytes(32),
        "paymentRef": pay_ref(w.c_settle_a),
    }
    by_type: dict[str, Any] = {"uint256": w.r_moves, "address": p.sup2.address}
    calls = []
    for name, contract in p.suite.contracts.items():
        for entry in load_artifact(name).abi:
            if entry.get("type") != "function" or entry["stateMutability"] not in ("view", "pure"):
                continue
            if entry["name"] in GUARDS | STUBS:
                continue
            types = [collapse_if_tuple(dict(i)) for i in entry["inputs"]]
            signature = f"{entry['name']}({','.join(types)})"
            args = [by_name.get(i["name"], by_type.get(i["type"])) for i in entry["inputs"]]
            assert None not in args, f"no argument for {name}.{signature}"
            calls.append(
                (f"{name}.{signature}", contract.get_function_by_signature(signature)(*args))
            )
    return calls


async def test_pause_gates_every_business_mutator_and_views_still_answer(
    platform: Platform,
) -> None:
    p = platform
    w = await build(p)
    now = await p.now()
    terms = (await terms_for(p, w.f_approve)).tuple()
    calls = mutators(p, w, now, terms)
    view_calls = views(p, w)
    assert len(view_calls) > 40
    before = {name: await fn.call() for name, fn in view_calls}
    guards = p.members.functions
    await guards.requireNotPaused().call()
    await guards.requireActive(p.sup1.address, Role.SUPPLIER.role_id).call()
    await guards.requireTransfer(p.sup1.address, p.sup2.address).call()
    await guards.requireMember(p.sup1.address).call()

    await p.operator.transact(p.members.functions.pause())

    assert await p.members.functions.paused().call() is True
    for name, caller, make in calls:
        try:
            await expect_revert(caller.transact(make()), "EnforcedPause")
        except AssertionError as exc:
            raise AssertionError(f"{name} while paused: {exc}") from exc
    during = {name: await fn.call() for name, fn in view_calls}
    # the pause itself is what these report: paused, and the paused seconds growing (the
    # overdue clock stands still, SPEC §2)
    reporting_the_pause = {"MemberRegistry.paused()", "MemberRegistry.pausedSeconds(uint64,uint64)"}
    changed = {n for n in before if before[n] != during[n]} - reporting_the_pause
    assert not changed, f"views answered differently while paused: {sorted(changed)}"
    for guard in (
        guards.requireNotPaused(),
        guards.requireActive(p.sup1.address, Role.SUPPLIER.role_id),
        guards.requireTransfer(p.sup1.address, p.sup2.address),
        guards.requireMember(p.sup1.address),
    ):
        await expect_revert(guard.call(), "EnforcedPause")
    # a non-operator cannot lift the pause
    await expect_revert(
        p.sup1.transact(p.members.functions.unpause()),
        "AccessControlUnauthorizedAccount",
        account=p.sup1.address,
    )

    await p.operator.transact(p.members.functions.unpause())

    for name, caller, make in calls:
        try:
            receipt = await caller.transact(make())
        except Exception as exc:
            raise AssertionError(f"{name} after unpause: {exc}") from exc
        assert receipt["status"] == 1, name
    assert (await p.suite.financing(w.f_approve)).status is FinancingStatus.APPROVED
    assert (await p.suite.financing(w.f_expire)).status is FinancingStatus.EXPIRED
    assert (await p.suite.payable(w.p_settle)).status is PayableStatus.SETTLED
    assert (await p.suite.payable(w.p_cancel)).status is PayableStatus.CANCELLED


async def test_RevertWhen_pausing_twice_or_unpausing_unpaused(platform: Platform) -> None:
    members = platform.members.functions
    await expect_revert(platform.operator.transact(members.unpause()), "ExpectedPause")
    await platform.operator.transact(members.pause())
    await expect_revert(platform.operator.transact(members.pause()), "EnforcedPause")


# ---- the overdue clock (SPEC §2, issue 9) ---------------------------------------------------


async def test_a_pause_stops_the_overdue_clock(platform: Platform) -> None:
    """A pause from the due date on pushes the deadline by its length; one before the due
    date does not (nothing could be paid then anyway). Before the fix the payable went
    overdue at due date + grace + 1 whatever the pause."""
    p = platform
    members, ledger = p.members.functions, p.claim_ledger.functions
    pid, _root, due = await p.issue(p.core, p.sup1, FACE, due_in=10 * DAY)
    await transact_at(p, p.operator, members.pause(), due - 2 * DAY)
    await transact_at(p, p.operator, members.unpause(), due - DAY)
    await transact_at(p, p.operator, members.pause(), due + DAY)
    await p.warp_to(due + 2 * DAY)
    assert await ledger.overdueFrom(pid).call() == due + GRACE + DAY  # moves while paused
    await transact_at(p, p.operator, members.unpause(), due + 4 * DAY)
    assert await members.pausedSeconds(due, due + 5 * DAY).call() == 3 * DAY
    deadline = due + GRACE + 3 * DAY
    assert await ledger.overdueFrom(pid).call() == deadline
    mark = ledger.markOverdue(pid)
    for ts in (due + GRACE + 1, deadline):
        await expect_revert(
            transact_at(p, p.outsider, mark, ts),
            "PayableNotOverdueYet",
            payableId=pid,
            overdueFrom=deadline,
        )
    await transact_at(p, p.outsider, mark, deadline + 1)
    assert (await p.suite.payable(pid)).status is PayableStatus.OVERDUE
