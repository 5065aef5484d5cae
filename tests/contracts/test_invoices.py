"""Invoices, the trade background (SPEC §2 Invoice, I-3 unique backing, I-8 terminal states).

A fingerprint and a document hash are each registered once, ever (voiding does not free
them); an invoice backs at most one payable or one transfer; cancelling a payable releases
its invoices and its program limit; a transfer may cite a confirmed invoice from the
recipient to the holder covering the value, which is then Used.
"""

from __future__ import annotations

import pytest

from ledger.anvil import dev_private_keys
from ledger.deployment import DAY, DeploymentParameters
from ledger.bindings import ZERO_ADDRESS, ZERO_HASH, ClaimStatus, InvoiceStatus, PayableStatus
from tests.support.contracts import EventDecoder, expect_revert, finance
from bench.cast import Actor, Platform, build_platform

FACE = 1_000_000


async def _register(
    platform: Platform,
    seller: Actor,
    buyer: Actor,
    invoice_id: bytes,
    doc: bytes,
    amount: int = FACE,
) -> None:
    now = await platform.now()
    await seller.transact(
        platform.invoices.functions.registerInvoice(
            invoice_id, buyer.address, amount, now - 60, doc
        )
    )


async def _issue(
    platform: Platform, supplier: Actor, invoices: list[bytes], face: int = FACE
) -> int:
    due = await platform.now() + 30 * DAY
    await platform.core.transact(
        platform.claim_ledger.functions.issuePayable(supplier.address, face, due, invoices, ZERO_ADDRESS)
    )
    return int(await platform.claim_ledger.functions.payableCount().call())


# ---- uniqueness -----------------------------------------------------------------------------


async def test_RevertWhen_fingerprint_registered_twice(platform: Platform) -> None:
    invoice_id = platform.unique("fingerprint")
    await _register(platform, platform.sup1, platform.core, invoice_id, platform.unique("doc"))
    for seller in (platform.sup1, platform.sup2):  # the fingerprint is global, not per seller
        await expect_revert(
            _register(platform, seller, platform.core, invoice_id, platform.unique("doc")),
            "InvoiceAlreadyRegistered",
            invoiceId=invoice_id,
        )


async def test_RevertWhen_document_hash_registered_twice(platform: Platform) -> None:
    doc = platform.unique("doc")
    await _register(platform, platform.sup1, platform.core, platform.unique("a"), doc)
    await expect_revert(
        _register(platform, platform.sup2, platform.core2, platform.unique("b"), doc),
        "InvoiceDocumentAlreadyRegistered",
        documentHash=doc,
    )


@pytest.mark.parametrize("voider", ["sup1", "operator"])
async def test_RevertWhen_reregistering_after_void(platform: Platform, voider: str) -> None:
    invoice_id, doc = platform.unique("fp"), platform.unique("doc")
    await _register(platform, platform.sup1, platform.core, invoice_id, doc)
    receipt = await platform.actors[voider].transact(
        platform.invoices.functions.voidInvoice(invoice_id)
    )
    voided = EventDecoder(platform).one(receipt, "InvoiceVoided")
    assert voided["by"] == platform.actors[voider].address
    assert (await platform.suite.invoice(invoice_id)).status is InvoiceStatus.VOIDED
    await expect_revert(
        _register(platform, platform.sup1, platform.core, invoice_id, platform.unique("doc")),
        "InvoiceAlreadyRegistered",
        invoiceId=invoice_id,
    )
    await expect_revert(
        _register(platform, platform.sup1, platform.core, platform.unique("fp"), doc),
        "InvoiceDocumentAlreadyRegistered",
        documentHash=doc,
    )


async def test_RevertWhen_reregistering_after_use_and_release(platform: Platform) -> None:
    invoice_id, doc = platform.unique("fp"), platform.unique("doc")
    await _register(platform, platform.sup1, platform.core, invoice_id, doc)
    await platform.core.transact(platform.invoices.functions.confirmInvoice(invoice_id))
    pid = await _issue(platform, platform.sup1, [invoice_id])
    await platform.sup1.transact(platform.claim_ledger.functions.cancelPayable(pid))
    await expect_revert(
        _register(platform, platform.sup1, platform.core, invoice_id, platform.unique("doc")),
        "InvoiceAlreadyRegistered",
        invoiceId=invoice_id,
    )


# ---- status rules ---------------------------------------------------------------------------


async def test_invoice_backs_exactly_one_payable(platform: Platform) -> None:
    invoice_id = await platform.invoice(platform.sup1, platform.core, FACE)
    await _issue(platform, platform.sup1, [invoice_id], FACE // 2)
    invoice = await platform.suite.invoice(invoice_id)
    assert invoice.status is InvoiceStatus.USED
    # half its amount is unused, but it backs no second payable
    await expect_revert(
        _issue(platform, platform.sup1, [invoice_id], FACE // 2),
        "InvoiceStatusInvalid",
        invoiceId=invoice_id,
        status=InvoiceStatus.USED,
    )
    await expect_revert(
        platform.sup1.transact(platform.invoices.functions.voidInvoice(invoice_id)),
        "InvoiceStatusInvalid",
        invoiceId=invoice_id,
        status=InvoiceStatus.USED,
    )


async def test_RevertWhen_same_invoice_listed_twice(platform: Platform) -> None:
    invoice_id = await platform.invoice(platform.sup1, platform.core, FACE)
    await expect_revert(
        _issue(platform, platform.sup1, [invoice_id, invoice_id], 2 * FACE),
        "InvoiceStatusInvalid",
        invoiceId=invoice_id,
        status=InvoiceStatus.USED,
    )
    assert (await platform.suite.invoice(invoice_id)).status is InvoiceStatus.CONFIRMED
    assert await platform.claim_ledger.functions.payableCount().call() == 0


@pytest.mark.parametrize("state", ["registered", "voided"])
async def test_RevertWhen_unconfirmed_or_voided_invoice_backs_payable(
    platform: Platform, state: str
) -> None:
    invoice_id = await platform.invoice(
        platform.sup1, platform.core, FACE, confirm=state == "voided"
    )
    if state == "voided":
        await platform.sup1.transact(platform.invoices.functions.voidInvoice(invoice_id))
    status = InvoiceStatus.VOIDED if state == "voided" else InvoiceStatus.REGISTERED
    await expect_revert(
        _issue(platform, platform.sup1, [invoice_id]),
        "InvoiceStatusInvalid",
        invoiceId=invoice_id,
        status=status,
    )


async def test_RevertWhen_invoice_parties_differ_from_payable(platform: Platform) -> None:
    to_core2 = await platform.invoice(platform.sup1, platform.core2, FACE)
    await expect_revert(
        _issue(platform, platform.sup1, [to_core2]),
        "InvoicePartiesMismatch",
        invoiceId=to_core2,
        seller=platform.sup1.address,
        buyer=platform.core.address,
    )
    from_sup1 = await platform.invoice(platform.sup1, platform.core, FACE)
    await expect_revert(
        _issue(platform, platform.sup2, [from_sup1]),
        "InvoicePartiesMismatch",
        invoiceId=from_sup1,
        seller=platform.sup2.address,
        buyer=platform.core.address,
    )
    unknown = platform.unique("nobody-registered-this")
    await expect_revert(
        _issue(platform, platform.sup1, [unknown]), "InvoiceNotFound", invoiceId=unknown
    )


async def test_terminal_invoice_states_absorb(platform: Platform) -> None:
    invoice_id = await platform.invoice(platform.sup1, platform.core, FACE)
    confirm = platform.invoices.functions.confirmInvoice(invoice_id)
    void = platform.invoices.functions.voidInvoice(invoice_id)
    await expect_revert(
        platform.core.transact(confirm),
        "InvoiceStatusInvalid",
        invoiceId=invoice_id,
        status=InvoiceStatus.CONFIRMED,
    )
    await platform.sup1.transact(void)
    for actor, fn in ((platform.sup1, void), (platform.operator, void), (platform.core, confirm)):
        await expect_revert(
            actor.transact(fn),
            "InvoiceStatusInvalid",
            invoiceId=invoice_id,
            status=InvoiceStatus.VOIDED,
        )


# ---- cancellation ---------------------------------------------------------------------------


async def test_cancelPayable_releases_invoices_and_limit(platform: Platform) -> None:
    a = await platform.invoice(platform.sup1, platform.core, 600_000)
    b = await platform.invoice(platform.sup1, platform.core, 400_000)
    pid = await _issue(platform, platform.sup1, [a, b])
    root = (await platform.suite.payable(pid)).root_claim_id
    assert (await platform.suite.obligor_account(platform.core.address)).outstanding == FACE
    pieces_before = await platform.claim_ledger.functions.balanceOf(platform.sup1.address).call()

    receipt = await platform.sup1.transact(platform.claim_ledger.functions.cancelPayable(pid))

    released = [e for e in EventDecoder(platform).decode(receipt) if e.name == "InvoiceReleased"]
    assert [(e.args["invoiceId"], e.args["payableId"]) for e in released] == [(a, pid), (b, pid)]
    for invoice_id in (a, b):
        assert (await platform.suite.invoice(invoice_id)).status is InvoiceStatus.CONFIRMED
    assert (await platform.suite.payable(pid)).status is PayableStatus.CANCELLED
    assert (await platform.suite.claim(root)).status is ClaimStatus.CANCELLED
    assert (await platform.suite.obligor_account(platform.core.address)).outstanding == 0
    assert await platform.claim_ledger.functions.balanceOf(platform.sup1.address).call() == (
        pieces_before - 1
    )
    await expect_revert(
        platform.claim_ledger.functions.ownerOf(root).call(), "ClaimNotFound", claimId=root
    )
    # Cancelled absorbs
    await expect_revert(
        platform.sup1.transact(platform.claim_ledger.functions.cancelPayable(pid)),
        "PayableStatusInvalid",
        payableId=pid,
        status=PayableStatus.CANCELLED,
    )
    await expect_revert(
        platform.sup1.transact(
            platform.claim_ledger.functions.split(root, platform.sup2.address, 1, ZERO_HASH)
        ),
        "ClaimNotLive",
        claimId=root,
        status=ClaimStatus.CANCELLED,
    )
    # the released invoices back a new payable
    pid2 = await _issue(platform, platform.sup1, [a, b])
    assert await platform.suite.payable_invoices(pid2) == [a, b]


async def test_RevertWhen_cancelling_a_touched_root(platform: Platform) -> None:
    pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    child = await platform.split(platform.sup1, root, platform.sup2, 1)
    await expect_revert(
        platform.sup1.transact(platform.claim_ledger.functions.cancelPayable(pid)),
        "PayableNotCancellable",
        payableId=pid,
    )
    assert (await platform.suite.claim(child)).amount == 1

    pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    await finance(platform, platform.sup1, root, platform.bank, 1_000)
    await expect_revert(
        platform.sup1.transact(platform.claim_ledger.functions.cancelPayable(pid)),
        "PayableNotCancellable",
        payableId=pid,
    )


# ---- trade background of transfers ----------------------------------------------------------


async def _trade_invoice(
    platform: Platform, seller: Actor, buyer: Actor, amount: int, confirm: bool = True
) -> bytes:
    """An invoice for goods ``seller`` sold to ``buyer`` (a holder paying with a piece)."""
    return await platform.invoice(seller, buyer, amount, confirm=confirm)


async def test_split_citing_trade_invoice_marks_it_used(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    invoice_id = await _trade_invoice(platform, platform.sup2, platform.sup1, 250_000)
    receipt = await platform.sup1.transact(
        platform.claim_ledger.functions.split(root, platform.sup2.address, 250_000, invoice_id)
    )
    child = int(await platform.claim_ledger.functions.claimCount().call())
    events = EventDecoder(platform)
    used = events.one(receipt, "InvoiceUsed")
    assert (used["invoiceId"], used["payableId"], used["claimId"]) == (invoice_id, 0, child)
    assert events.one(receipt, "ClaimSplit")["invoiceId"] == invoice_id
    assert (await platform.suite.invoice(invoice_id)).status is InvoiceStatus.USED
    # used once: it backs no second transfer
    await expect_revert(
        platform.sup1.transact(
            platform.claim_ledger.functions.split(root, platform.sup2.address, 1, invoice_id)
        ),
        "InvoiceStatusInvalid",
        invoiceId=invoice_id,
        status=InvoiceStatus.USED,
    )


async def test_transferClaim_citing_trade_invoice_marks_it_used(platform: Platform) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    invoice_id = await _trade_invoice(platform, platform.sup2, platform.sup1, FACE)
    receipt = await platform.sup1.transact(
        platform.claim_ledger.functions.transferClaim(root, platform.sup2.address, invoice_id)
    )
    used = EventDecoder(platform).one(receipt, "InvoiceUsed")
    assert (used["invoiceId"], used["payableId"], used["claimId"]) == (invoice_id, 0, root)
    assert (await platform.suite.invoice(invoice_id)).status is InvoiceStatus.USED
    assert (await platform.suite.claim(root)).holder == platform.sup2.address


@pytest.mark.parametrize("move", ["split", "transfer"])
@pytest.mark.parametrize(
    "problem", ["unconfirmed", "wrong_direction", "wrong_recipient", "too_small", "unknown"]
)
async def test_RevertWhen_trade_invoice_does_not_fit(
    platform: Platform, move: str, problem: str
) -> None:
    _pid, root, _due = await platform.issue(platform.core, platform.sup1, FACE)
    value = 250_000 if move == "split" else FACE
    sup1, sup2 = platform.sup1, platform.sup2
    expected: dict[str, object]
    if problem == "unconfirmed":
        inv = await _trade_invoice(platform, sup2, sup1, value, confirm=False)
        error, expected = "InvoiceStatusInvalid", {"status": InvoiceStatus.REGISTERED}
    elif problem == "wrong_direction":  # sold by the holder to the recipient
        inv = await _trade_invoice(platform, sup1, sup2, value)
        error, expected = "InvoicePartiesMismatch", {"seller": sup2.address, "buyer": sup1.address}
    elif problem == "wrong_recipient":  # sup3 sold to sup1, but the piece goes to sup2
        inv = await _trade_invoice(platform, platform.sup3, sup1, value)
        error, expected = "InvoicePartiesMismatch", {"seller": sup2.address, "buyer": sup1.address}
    elif problem == "too_small":
        inv = await _trade_invoice(platform, sup2, sup1, value - 1)
        error, expected = "InvoiceAmountInsufficient", {"amount": value - 1, "needed": value}
    else:
        inv = platform.unique("never-registered")
        error, expected = "InvoiceNotFound", {}
    fn = (
        platform.claim_ledger.functions.split(root, sup2.address, value, inv)
        if move == "split"
        else platform.claim_ledger.functions.transferClaim(root, sup2.address, inv)
    )
    await expect_revert(sup1.transact(fn), error, invoiceId=inv, **expected)
    claim = await platform.suite.claim(root)
    assert (claim.holder, claim.amount) == (sup1.address, FACE)
    assert await platform.claim_ledger.functions.claimCount().call() == root
    if problem != "unknown":
        status = InvoiceStatus.REGISTERED if problem == "unconfirmed" else InvoiceStatus.CONFIRMED
        assert (await platform.suite.invoice(inv)).status is status


async def test_trade_invoice_required_by_deployment(platform: Platform) -> None:
    """With tradeInvoiceRequired, every trade move cites an invoice; financing moves do not."""
    strict = await build_platform(
        platform.w3, dev_private_keys(), DeploymentParameters(trade_invoice_required=True)
    )
    assert await strict.claim_ledger.functions.TRADE_INVOICE_REQUIRED().call() is True
    _pid, root, _due = await strict.issue(strict.core, strict.sup1, FACE)
    claim_ledger = strict.claim_ledger.functions
    await expect_revert(
        strict.sup1.transact(claim_ledger.split(root, strict.sup2.address, 1_000, ZERO_HASH)),
        "ClaimTradeInvoiceRequired",
    )
    await expect_revert(
        strict.sup1.transact(claim_ledger.transferClaim(root, strict.sup2.address, ZERO_HASH)),
        "ClaimTradeInvoiceRequired",
    )
    invoice_id = await strict.invoice(strict.sup2, strict.sup1, 1_000)
    await strict.sup1.transact(claim_ledger.split(root, strict.sup2.address, 1_000, invoice_id))
    # a sale to a financier needs no trade invoice
    financed = await finance(strict, strict.sup1, root, strict.bank, 10_000)
    assert (await strict.suite.claim(financed)).financed is True
