"""Role matrix (TESTPLAN "Contracts", SPEC I-6): every mutator × every identity.

Each row names a mutator and, per identity, either ``OK`` or the exact custom error the call
must revert with. Each cell first builds the state in which the call succeeds for the right
identity (an invoice to confirm, a payable to split, an application to approve, a due date
reached …), then makes the call as the cell's identity; a refusal is therefore due to who
calls, not to the state. Error arguments are checked too (the caller, the claim, the role).

Identities: ``none`` is an unregistered account; ``supplier`` (sup1) is the supplier that
sells the invoice, receives the payable and holds its root piece; ``core`` is the obligor;
``financier`` (bank) is the financier named in applications; ``agent`` is the payable's
clearing agent; ``operator`` is the platform operator (also the default admin, not a member);
``auditor`` is a registered auditor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.deployment import DAY
from ledger.roles import Role
from ledger.bindings import ZERO_ADDRESS, ZERO_HASH
from tests.support.contracts import GRACE, OK, apply, expect_revert, finance, terms_for
from bench.cast import Actor, Platform

# ---- error names, abbreviated so the table stays readable -----------------------------------
ACU = "AccessControlUnauthorizedAccount"  # OpenZeppelin onlyRole (MemberRegistry)
LCU = "LedgerCallerUnauthorized"  # ClaimLedger: operator / admin / desk-only
NREG = "MemberNotRegistered"
ROLE = "MemberRoleMissing"
HOLD = "ClaimNotHolder"
BUYER = "InvoiceNotBuyer"
SELLER = "InvoiceNotSeller"
SETTLER = "PayableNotSettler"
FIN = "FinancingNotFinancier"
APPL = "FinancingNotApplicant"
ICNL = "InvoiceCallerNotLedger"
FCNL = "FinancingCallerNotLedger"
MCNL = "MemberCallerNotLedger"
MERGE = "ClaimMergeUnsupported"

IDENTITIES = ("none", "supplier", "core", "financier", "agent", "operator", "auditor")
ACTOR_OF = {
    "none": "outsider",
    "supplier": "sup1",
    "core": "core",
    "financier": "bank",
    "agent": "agent",
    "operator": "operator",
    "auditor": "auditor",
}

# fmt: off
MATRIX: dict[str, tuple[str, ...]] = {
    #                              none     supplier core     financ.  agent    operator auditor
    # -- MemberRegistry: operator administration
    "registerMember":              (ACU,     ACU,     ACU,     ACU,     ACU,     OK,      ACU),
    "renewKyc":                    (ACU,     ACU,     ACU,     ACU,     ACU,     OK,      ACU),
    "suspendMember":               (ACU,     ACU,     ACU,     ACU,     ACU,     OK,      ACU),
    "reinstateMember":             (ACU,     ACU,     ACU,     ACU,     ACU,     OK,      ACU),
    "pause":                       (ACU,     ACU,     ACU,     ACU,     ACU,     OK,      ACU),
    "unpause":                     (ACU,     ACU,     ACU,     ACU,     ACU,     OK,      ACU),
    # -- ClaimLedger: operator
    "setProgramLimit":             (LCU,     LCU,     LCU,     LCU,     LCU,     OK,      LCU),
    "freezeClaim":                 (LCU,     LCU,     LCU,     LCU,     LCU,     OK,      LCU),
    "unfreezeClaim":               (LCU,     LCU,     LCU,     LCU,     LCU,     OK,      LCU),
    # -- InvoiceRegistry
    "registerInvoice":             (NREG,    OK,      ROLE,    ROLE,    ROLE,    NREG,    ROLE),
    "confirmInvoice":              (BUYER,   BUYER,   OK,      BUYER,   BUYER,   BUYER,   BUYER),
    "voidInvoice":                 (SELLER,  OK,      SELLER,  SELLER,  SELLER,  OK,      SELLER),
    # -- ClaimLedger: payables and pieces
    "issuePayable":                (NREG,    ROLE,    OK,      ROLE,    ROLE,    NREG,    ROLE),
    "cancelPayable":               (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "split":                       (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "transferClaim":               (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "settleClaim":                 (SETTLER, SETTLER, OK,      SETTLER, OK,      SETTLER, SETTLER),
    "settleClaims":                (SETTLER, SETTLER, OK,      SETTLER, OK,      SETTLER, SETTLER),
    "markOverdue":                 (OK,      OK,      OK,      OK,      OK,      OK,      OK),
    # -- ClaimLedger: the ERC-3525 / ERC-721 surface
    "3525.transferFrom(id,to,v)":  (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "721.transferFrom":            (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "721.safeTransferFrom":        (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "721.safeTransferFrom(data)":  (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "3525.transferFrom(id,id,v)":  (MERGE,   MERGE,   MERGE,   MERGE,   MERGE,   MERGE,   MERGE),
    # approvals: the holder's own consent (docs/erc3525.md); anyone may approve for itself
    "3525.approve":                (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "721.approve":                 (HOLD,    OK,      HOLD,    HOLD,    HOLD,    HOLD,    HOLD),
    "setApprovalForAll":           (OK,      OK,      OK,      OK,      OK,      OK,      OK),
    # -- FinancingDesk
    "applyForFinancing":           (NREG,    OK,      HOLD,    HOLD,    HOLD,    NREG,    HOLD),
    "approveFinancing":            (FIN,     FIN,     FIN,     OK,      FIN,     FIN,     FIN),
    "rejectFinancing":             (FIN,     FIN,     FIN,     OK,      FIN,     FIN,     FIN),
    "withdrawFinancing":           (APPL,    OK,      APPL,    APPL,    APPL,    APPL,    APPL),
    "expireFinancing":             (OK,      OK,      OK,      OK,      OK,      OK,      OK),
    "setExposureLimit":            (NREG,    ROLE,    ROLE,    OK,      ROLE,    NREG,    ROLE),
    # -- hooks only the platform's own contracts may call
    "openHolderAccount":           (LCU,     LCU,     LCU,     LCU,     LCU,     LCU,     LCU),
    "lockForFinancing":            (LCU,     LCU,     LCU,     LCU,     LCU,     LCU,     LCU),
    "unlockFromFinancing":         (LCU,     LCU,     LCU,     LCU,     LCU,     LCU,     LCU),
    "financeLocked":               (LCU,     LCU,     LCU,     LCU,     LCU,     LCU,     LCU),
    "releaseExposure":             (FCNL,    FCNL,    FCNL,    FCNL,    FCNL,    FCNL,    FCNL),
    "useForPayable":               (ICNL,    ICNL,    ICNL,    ICNL,    ICNL,    ICNL,    ICNL),
    "useForTransfer":              (ICNL,    ICNL,    ICNL,    ICNL,    ICNL,    ICNL,    ICNL),
    "releaseInvoices":             (ICNL,    ICNL,    ICNL,    ICNL,    ICNL,    ICNL,    ICNL),
    "suspendForOverdue":           (MCNL,    MCNL,    MCNL,    MCNL,    MCNL,    MCNL,    MCNL),
}
# fmt: on

#: Non-view functions deliberately outside the matrix: OpenZeppelin's role and default-admin
#: plumbing (AccessControlDefaultAdminRules, its own tests cover it); not business mutators.
#: Rows for overloaded ERC-721 / ERC-3525 functions, by their ABI signature.
SIGNATURES = {
    "3525.transferFrom(id,to,v)": "transferFrom(uint256,address,uint256)",
    "3525.transferFrom(id,id,v)": "transferFrom(uint256,uint256,uint256)",
    "3525.approve": "approve(uint256,address,uint256)",
    "721.transferFrom": "transferFrom(address,address,uint256)",
    "721.safeTransferFrom": "safeTransferFrom(address,address,uint256)",
    "721.safeTransferFrom(data)": "safeTransferFrom(address,address,uint256,bytes)",
    "721.approve": "approve(address,uint256)",
}

NOT_IN_MATRIX = {
    "grantRole",
    "revokeRole",
    "renounceRole",
    "beginDefaultAdminTransfer",
    "cancelDefaultAdminTransfer",
    "acceptDefaultAdminTransfer",
    "changeDefaultAdminDelay",
    "rollbackDefaultAdminDelay",
}

NEW_MEMBER = to_checksum_address(keccak(b"tierflow-new-member")[12:])
REASON = keccak(b"court-order-42")
PAYMENT_REF = keccak(b"bank-payment-ref")


@dataclass
class Cell:
    """What a cell calls (built for a given caller) and the ids its errors must name."""

    call: Callable[[Actor], Any]
    ctx: dict[str, Any] = field(default_factory=dict)


Setup = Callable[[Platform, str], Awaitable[Cell]]
SETUPS: dict[str, Setup] = {}


def setup(*names: str) -> Callable[[Setup], Setup]:
    def register(fn: Setup) -> Setup:
        for name in names:
            SETUPS[name] = fn
        return fn

    return register


def _sig(p: Platform, signature: str) -> Any:
    return p.claim_ledger.get_function_by_signature(signature)


# ---- MemberRegistry -------------------------------------------------------------------------


@setup("registerMember")
async def _register_member(p: Platform, name: str) -> Cell:
    kyc = await p.now() + 365 * DAY
    return Cell(
        lambda a: p.members.functions.registerMember(NEW_MEMBER, Role.SUPPLIER.bit, kyc),
        {"role": Role.OPERATOR.role_id},
    )


@setup("renewKyc")
async def _renew_kyc(p: Platform, name: str) -> Cell:
    kyc = await p.now() + 1000 * DAY
    return Cell(
        lambda a: p.members.functions.renewKyc(p.sup2.address, kyc), {"role": Role.OPERATOR.role_id}
    )


@setup("suspendMember")
async def _suspend(p: Platform, name: str) -> Cell:
    return Cell(
        lambda a: p.members.functions.suspendMember(p.sup2.address, REASON),
        {"role": Role.OPERATOR.role_id},
    )


@setup("reinstateMember")
async def _reinstate(p: Platform, name: str) -> Cell:
    await p.operator.transact(p.members.functions.suspendMember(p.sup2.address, REASON))
    return Cell(
        lambda a: p.members.functions.reinstateMember(p.sup2.address),
        {"role": Role.OPERATOR.role_id},
    )


@setup("pause")
async def _pause(p: Platform, name: str) -> Cell:
    return Cell(lambda a: p.members.functions.pause(), {"role": Role.OPERATOR.role_id})


@setup("unpause")
async def _unpause(p: Platform, name: str) -> Cell:
    await p.operator.transact(p.members.functions.pause())
    return Cell(lambda a: p.members.functions.unpause(), {"role": Role.OPERATOR.role_id})


@setup("suspendForOverdue")
async def _suspend_for_overdue(p: Platform, name: str) -> Cell:
    return Cell(lambda a: p.members.functions.suspendForOverdue(p.core.address))


# ---- ClaimLedger: operator ------------------------------------------------------------------


@setup("setProgramLimit")
async def _program_limit(p: Platform, name: str) -> Cell:
    return Cell(lambda a: p.claim_ledger.functions.setProgramLimit(p.core2.address, 5_000))


@setup("freezeClaim")
async def _freeze(p: Platform, name: str) -> Cell:
    _pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    return Cell(lambda a: p.claim_ledger.functions.freezeClaim(root, REASON))


@setup("unfreezeClaim")
async def _unfreeze(p: Platform, name: str) -> Cell:
    _pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    await p.operator.transact(p.claim_ledger.functions.freezeClaim(root, REASON))
    return Cell(lambda a: p.claim_ledger.functions.unfreezeClaim(root))


# ---- InvoiceRegistry ------------------------------------------------------------------------


@setup("registerInvoice")
async def _register_invoice(p: Platform, name: str) -> Cell:
    invoice_id, doc, issued = p.unique("inv"), p.unique("doc"), await p.now() - 60
    return Cell(
        lambda a: p.invoices.functions.registerInvoice(
            invoice_id, p.core.address, 1_000, issued, doc
        ),
        {"role": Role.SUPPLIER.role_id},
    )


@setup("confirmInvoice")
async def _confirm_invoice(p: Platform, name: str) -> Cell:
    invoice_id = await p.invoice(p.sup1, p.core, 1_000, confirm=False)
    return Cell(lambda a: p.invoices.functions.confirmInvoice(invoice_id), {"invoice": invoice_id})


@setup("voidInvoice")
async def _void_invoice(p: Platform, name: str) -> Cell:
    invoice_id = await p.invoice(p.sup1, p.core, 1_000, confirm=False)
    return Cell(lambda a: p.invoices.functions.voidInvoice(invoice_id), {"invoice": invoice_id})


# ---- ClaimLedger: payables and pieces -------------------------------------------------------


@setup("issuePayable")
async def _issue(p: Platform, name: str) -> Cell:
    invoice_id = await p.invoice(p.sup1, p.core, 1_000)
    due = await p.now() + 90 * DAY
    return Cell(
        lambda a: p.claim_ledger.functions.issuePayable(
            p.sup1.address, 1_000, due, [invoice_id], ZERO_ADDRESS
        ),
        {"role": Role.CORE_ENTERPRISE.role_id},
    )


@setup(
    "cancelPayable",
    "split",
    "transferClaim",
    "3525.transferFrom(id,to,v)",
    "721.transferFrom",
    "721.safeTransferFrom",
    "721.safeTransferFrom(data)",
    "3525.transferFrom(id,id,v)",
    "3525.approve",
    "721.approve",
    "setApprovalForAll",
)
async def _root_piece(p: Platform, name: str) -> Cell:
    pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    sup1, sup2 = p.sup1.address, p.sup2.address
    calls: dict[str, Callable[[Actor], Any]] = {
        "cancelPayable": lambda a: p.claim_ledger.functions.cancelPayable(pid),
        "split": lambda a: p.claim_ledger.functions.split(root, sup2, 100, ZERO_HASH),
        "transferClaim": lambda a: p.claim_ledger.functions.transferClaim(root, sup2, ZERO_HASH),
        "3525.transferFrom(id,to,v)": lambda a: _sig(p, "transferFrom(uint256,address,uint256)")(
            root, sup2, 100
        ),
        # ERC-721: the caller names the holder as `from`, as an approved operator would
        "721.transferFrom": lambda a: _sig(p, "transferFrom(address,address,uint256)")(
            sup1, sup2, root
        ),
        "721.safeTransferFrom": lambda a: _sig(p, "safeTransferFrom(address,address,uint256)")(
            sup1, sup2, root
        ),
        "721.safeTransferFrom(data)": lambda a: _sig(
            p, "safeTransferFrom(address,address,uint256,bytes)"
        )(sup1, sup2, root, b"trade"),
        "3525.transferFrom(id,id,v)": lambda a: _sig(p, "transferFrom(uint256,uint256,uint256)")(
            root, root, 1
        ),
        "3525.approve": lambda a: _sig(p, "approve(uint256,address,uint256)")(root, sup2, 100),
        "721.approve": lambda a: _sig(p, "approve(address,uint256)")(sup2, root),
        "setApprovalForAll": lambda a: p.claim_ledger.functions.setApprovalForAll(sup2, True),
    }
    return Cell(calls[name], {"claim": root, "payable": pid})


@setup("settleClaim", "settleClaims")
async def _settle(p: Platform, name: str) -> Cell:
    pid, root, due = await p.issue(p.core, p.sup1, 1_000, due_in=DAY, agent=p.agent)
    await p.warp_to(due)
    if name == "settleClaim":
        return Cell(lambda a: p.claim_ledger.functions.settleClaim(root, PAYMENT_REF), {"payable": pid})
    return Cell(lambda a: p.claim_ledger.functions.settleClaims([root], [PAYMENT_REF]), {"payable": pid})


@setup("markOverdue")
async def _overdue(p: Platform, name: str) -> Cell:
    pid, _root, due = await p.issue(p.core, p.sup1, 1_000, due_in=DAY)
    await p.warp_to(due + GRACE + 1)
    return Cell(lambda a: p.claim_ledger.functions.markOverdue(pid))


# ---- FinancingDesk --------------------------------------------------------------------------


@setup("applyForFinancing")
async def _apply(p: Platform, name: str) -> Cell:
    _pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    expires = await p.now() + 7 * DAY
    # bank2 is named so that the bank, as a caller, is a non-holder rather than a self-dealer
    return Cell(
        lambda a: p.desk.functions.applyForFinancing(root, p.bank2.address, 400, expires, 0, False),
        {"claim": root},
    )


@setup("approveFinancing", "rejectFinancing", "withdrawFinancing")
async def _pending_financing(p: Platform, name: str) -> Cell:
    _pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    fid = await apply(p, p.sup1, root, p.bank, 400)
    terms = (await terms_for(p, fid)).tuple()
    calls: dict[str, Callable[[Actor], Any]] = {
        "approveFinancing": lambda a: p.desk.functions.approveFinancing(fid, terms),
        "rejectFinancing": lambda a: p.desk.functions.rejectFinancing(fid, REASON),
        "withdrawFinancing": lambda a: p.desk.functions.withdrawFinancing(fid),
    }
    return Cell(calls[name], {"financing": fid})


@setup("expireFinancing")
async def _expired_financing(p: Platform, name: str) -> Cell:
    _pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    fid = await apply(p, p.sup1, root, p.bank, 400, expires_in=DAY)
    expires = (await p.suite.financing(fid)).expires_at
    await p.warp_to(expires)
    return Cell(lambda a: p.desk.functions.expireFinancing(fid))


@setup("setExposureLimit")
async def _exposure_limit(p: Platform, name: str) -> Cell:
    return Cell(
        lambda a: p.desk.functions.setExposureLimit(p.core2.address, 5_000),
        {"role": Role.FINANCIER.role_id},
    )


# ---- hooks ----------------------------------------------------------------------------------


@setup("openHolderAccount")
async def _open_holder_account(p: Platform, name: str) -> Cell:
    return Cell(lambda a: p.claim_ledger.functions.openHolderAccount(NEW_MEMBER))


@setup("lockForFinancing")
async def _lock(p: Platform, name: str) -> Cell:
    _pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    return Cell(lambda a: p.claim_ledger.functions.lockForFinancing(root, p.sup1.address, 1))


@setup("unlockFromFinancing", "financeLocked")
async def _locked(p: Platform, name: str) -> Cell:
    _pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    await apply(p, p.sup1, root, p.bank, 400)
    if name == "unlockFromFinancing":
        return Cell(lambda a: p.claim_ledger.functions.unlockFromFinancing(root, 400))
    return Cell(lambda a: p.claim_ledger.functions.financeLocked(root, 400, p.bank.address))


@setup("releaseExposure")
async def _release_exposure(p: Platform, name: str) -> Cell:
    _pid, root, _due = await p.issue(p.core, p.sup1, 1_000)
    piece = await finance(p, p.sup1, root, p.bank, 400)
    return Cell(
        lambda a: p.desk.functions.releaseExposure(p.bank.address, p.core.address, piece, 400)
    )


@setup("useForPayable", "useForTransfer")
async def _confirmed_invoice(p: Platform, name: str) -> Cell:
    invoice_id = await p.invoice(p.sup1, p.core, 1_000)
    if name == "useForPayable":
        return Cell(
            lambda a: p.invoices.functions.useForPayable(
                [invoice_id], p.sup1.address, p.core.address, 1
            )
        )
    return Cell(
        lambda a: p.invoices.functions.useForTransfer(
            invoice_id, p.sup1.address, p.core.address, 1, 1
        )
    )


@setup("releaseInvoices")
async def _used_invoice(p: Platform, name: str) -> Cell:
    pid, _root, _due = await p.issue(p.core, p.sup1, 1_000)
    invoices = await p.suite.payable_invoices(pid)
    return Cell(lambda a: p.invoices.functions.releaseInvoices(invoices, pid))


# ---- expected error arguments ---------------------------------------------------------------


def expected_args(error: str, ctx: dict[str, Any], caller: str) -> dict[str, Any]:
    by_error: dict[str, Callable[[], dict[str, Any]]] = {
        ACU: lambda: {"account": caller, "neededRole": ctx["role"]},
        LCU: lambda: {"caller": caller},
        NREG: lambda: {"account": caller},
        ROLE: lambda: {"account": caller, "role": ctx["role"]},
        HOLD: lambda: {"claimId": ctx["claim"], "caller": caller},
        BUYER: lambda: {"invoiceId": ctx["invoice"], "caller": caller},
        SELLER: lambda: {"invoiceId": ctx["invoice"], "caller": caller},
        SETTLER: lambda: {"payableId": ctx["payable"], "caller": caller},
        FIN: lambda: {"financingId": ctx["financing"], "caller": caller},
        APPL: lambda: {"financingId": ctx["financing"], "caller": caller},
        ICNL: lambda: {"caller": caller},
        FCNL: lambda: {"caller": caller},
        MCNL: lambda: {"caller": caller},
    }
    make = by_error.get(error)
    return make() if make else {}


CELLS = [(m, ident) for m in MATRIX for ident in IDENTITIES]


@dataclass
class _MatrixState:
    """Snapshots around the current mutator's setup, shared by that mutator's cells."""

    mutator: str | None = None
    base: str | None = None  # before the setup
    ready: str | None = None  # after the setup
    cell: Cell | None = None


@pytest.fixture(scope="module")
async def matrix(platform_session: Platform) -> AsyncIterator[_MatrixState]:
    state = _MatrixState()
    try:
        yield state
    finally:
        if state.base is not None:
            await platform_session.revert(state.base)


async def _prepared(p: Platform, state: _MatrixState, mutator: str) -> Cell:
    """The mutator's setup state: built once, then restored by snapshot for each identity."""
    if state.mutator == mutator and state.ready is not None and state.cell is not None:
        await p.revert(state.ready)
        state.ready = await p.snapshot()
        return state.cell
    if state.base is not None:
        await p.revert(state.base)
    state.mutator, state.ready, state.cell = None, None, None
    state.base = await p.snapshot()
    cell = await SETUPS[mutator](p, mutator)
    state.mutator, state.cell, state.ready = mutator, cell, await p.snapshot()
    return cell


CELLS = [(m, ident) for m in MATRIX for ident in IDENTITIES]


@pytest.mark.parametrize(("mutator", "identity"), CELLS, ids=[f"{m}-{i}" for m, i in CELLS])
async def test_role_matrix(
    platform_session: Platform, matrix: _MatrixState, mutator: str, identity: str
) -> None:
    platform = platform_session
    cell = await _prepared(platform, matrix, mutator)
    actor = platform.actors[ACTOR_OF[identity]]
    expected = MATRIX[mutator][IDENTITIES.index(identity)]
    fn = cell.call(actor)
    if expected == OK:
        receipt = await actor.transact(fn)
        assert receipt["status"] == 1
    else:
        await expect_revert(
            actor.transact(fn), expected, **expected_args(expected, cell.ctx, actor.address)
        )


def test_matrix_covers_every_mutator(platform_abis: dict[str, list[dict[str, Any]]]) -> None:
    """Every non-view function of the four contracts is a row (or deliberately excluded).

    The ERC-3525 merge stub is ``pure`` (it always reverts) but is a mutator from a caller's
    point of view, so it is a row too.
    """
    stubs = {"approve", "setApprovalForAll", "transferFrom"}
    seen: set[str] = set()
    for abi in platform_abis.values():
        functions = [e for e in abi if e.get("type") == "function"]
        counts = Counter(e["name"] for e in functions)
        overloaded = {name for name, n in counts.items() if n > 1}
        for entry in functions:
            mutability = entry["stateMutability"]
            if mutability == "view" or (mutability == "pure" and entry["name"] not in stubs):
                continue
            name = entry["name"]
            if name in overloaded:
                name = f"{name}({','.join(i['type'] for i in entry['inputs'])})"
            seen.add(name)
    rows = {SIGNATURES.get(row, row) for row in MATRIX}
    missing = seen - rows - NOT_IN_MATRIX
    assert not missing, f"mutators missing from the role matrix: {sorted(missing)}"
    stale = rows - seen
    assert not stale, f"rows naming no contract function: {sorted(stale)}"
    assert set(SETUPS) == set(MATRIX)


@pytest.fixture(scope="module")
def platform_abis() -> dict[str, list[dict[str, Any]]]:
    from ledger.artifacts import load_artifact

    return {
        n: list(load_artifact(n).abi)
        for n in ("MemberRegistry", "InvoiceRegistry", "ClaimLedger", "FinancingDesk")
    }
