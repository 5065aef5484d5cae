"""Bounded work (SPEC I-9): the gas of split, whole transfer, approve, the financier's resale
of part of its financed piece to a first-time holder citing an invoice, and settle-one-piece
does not grow with the number of pieces under a payable or the number of payables of an
obligor; both splits stay under the 150,000 ceiling (docs/gas.md).

Payables with 1, 10, 100 and 1,000 pieces are built (the pieces pipelined: mining off, one
holder's splits sent back to back with explicit gas, then mined), plus a payable issued
after the obligor already has 200 more. On each, a fresh split, whole transfer, approval and
settlement are measured by their receipts' ``gasUsed`` and must stay within ±5 % of the
1-piece payable's. To compare like with like, every measured call makes the same kinds of
storage writes: all recipients already hold pieces (their piece counters go non-zero →
non-zero), the financier already has exposure for the obligor, and each payable already has
a settled piece before the measured settlement (its settled value goes non-zero → non-zero).
The resale goes to a supplier registered just before, that never held a piece (its piece
counter was opened at registration, as for every supplier and financier).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account import Account

from ledger.deployment import DAY
from ledger.node import rpc
from ledger.roles import Role, roles_to_mask
from ledger.sender import TransactionSender
from ledger.bindings import ZERO_ADDRESS, ZERO_HASH
from tests.support.contracts import apply, finance, pay_ref, pipeline, terms_for
from bench.cast import Actor, Platform

SIZES = (1, 10, 100, 1_000)
EXTRA_PAYABLES = 200
TOLERANCE = 0.05
SPLIT_CEILING = 150_000
FACE = 10**12
OPS = ("split", "transfer", "approve", "resale", "settle")


@dataclass
class Measured:
    label: str
    payable: int
    root: int
    gas: dict[str, int] = field(default_factory=dict)
    moved: int = 0  # the piece split off, then transferred whole, then settled
    financed: int = 0  # the financed piece, resold in part, then settled first (unmeasured)


async def _issue(p: Platform, due: int, face: int = FACE) -> tuple[int, int]:
    invoice_id = await p.invoice(p.sup1, p.core, face)
    await p.core.transact(
        p.claim_ledger.functions.issuePayable(p.sup1.address, face, due, [invoice_id], ZERO_ADDRESS)
    )
    payable = int(await p.claim_ledger.functions.payableCount().call())
    return payable, (await p.suite.payable(payable)).root_claim_id


async def _grow(p: Platform, root: int, pieces: int) -> None:
    """Split ``pieces - 1`` one-unit pieces off ``root`` to sup2..sup5, pipelined."""
    recipients = [p.sup2, p.sup3, p.sup4, p.sup5]
    fns = [
        p.claim_ledger.functions.split(root, recipients[i % 4].address, 1, ZERO_HASH)
        for i in range(pieces - 1)
    ]
    await pipeline(p, p.sup1, fns, gas=200_000)


async def _extra_payables(p: Platform, count: int, due: int) -> None:
    """``count`` more payables of the obligor: invoices, confirmations and issues pipelined."""
    now = await p.now()
    ids = [p.unique("bulk-invoice") for _ in range(count)]
    await pipeline(
        p,
        p.sup1,
        [
            p.invoices.functions.registerInvoice(i, p.core.address, 1_000, now - 60, p.unique("d"))
            for i in ids
        ],
    )
    await pipeline(p, p.core, [p.invoices.functions.confirmInvoice(i) for i in ids])
    await pipeline(
        p,
        p.core,
        [
            p.claim_ledger.functions.issuePayable(p.sup1.address, 1_000, due, [i], ZERO_ADDRESS)
            for i in ids
        ],
        gas=500_000,
    )


async def _newcomer(p: Platform, label: str) -> Actor:
    """A supplier registered now, that has never held a piece."""
    account = Account.create()
    await rpc(p.w3, "anvil_setBalance", account.address, hex(10**21))
    kyc = await p.now() + 3650 * DAY
    await p.operator.transact(
        p.members.functions.registerMember(account.address, roles_to_mask((Role.SUPPLIER,)), kyc)
    )
    return Actor(label, account, TransactionSender(p.w3, account))


async def _measure_moves(p: Platform, m: Measured) -> None:
    """Split, whole transfer and approval on ``m``'s payable (before the due date)."""
    claim_ledger = p.claim_ledger.functions
    r = await p.sup1.transact(claim_ledger.split(m.root, p.sup4.address, 1_000, ZERO_HASH))
    m.gas["split"] = int(r["gasUsed"])
    m.moved = int(await claim_ledger.claimCount().call())
    r = await p.sup4.transact(claim_ledger.transferClaim(m.moved, p.sup5.address, ZERO_HASH))
    m.gas["transfer"] = int(r["gasUsed"])
    fid = await apply(p, p.sup1, m.root, p.bank, 5_000_000)
    terms = await terms_for(p, fid)
    r = await p.bank.transact(p.desk.functions.approveFinancing(fid, terms.tuple()))
    m.gas["approve"] = int(r["gasUsed"])
    m.financed = (await p.suite.financing(fid)).financed_claim_id or 0
    newcomer = await _newcomer(p, f"first-time holder of payable {m.payable}")
    invoice_id = await p.invoice(newcomer, p.bank, 1_000_000)
    r = await p.bank.transact(
        claim_ledger.split(m.financed, newcomer.address, 1_000_000, invoice_id)
    )
    m.gas["resale"] = int(r["gasUsed"])


async def _measure_settle(p: Platform, m: Measured) -> None:
    claim_ledger = p.claim_ledger.functions
    # one bank payment per holder: each settlement records its own reference (zero → non-zero);
    # the first one also takes the payable's settled value from 0 to non-zero
    await p.core.transact(claim_ledger.settleClaim(m.financed, pay_ref(m.financed)))
    r = await p.core.transact(claim_ledger.settleClaim(m.moved, pay_ref(m.moved)))
    m.gas["settle"] = int(r["gasUsed"])


def _table(rows: list[Measured]) -> str:
    head = f"{'':>28}" + "".join(f"{op:>10}" for op in OPS)
    lines = [head] + [
        f"{m.label:>28}" + "".join(f"{m.gas.get(op, 0):>10}" for op in OPS) for m in rows
    ]
    return "\n".join(lines)


async def test_gas_is_flat_in_pieces_per_payable_and_payables_per_obligor(
    platform: Platform,
) -> None:
    p = platform
    due = await p.now() + 200 * DAY
    actors: list[Actor] = [p.sup2, p.sup3, p.sup4, p.sup5, p.bank, p.bank2]

    # baseline: everyone already holds a piece, the bank already has exposure for the obligor
    _pid, base_root = await _issue(p, due)
    for actor in actors:
        await p.split(p.sup1, base_root, actor, 1)
    await finance(p, p.sup1, base_root, p.bank, 1_000_000)

    rows: list[Measured] = []
    for size in SIZES:
        payable, root = await _issue(p, due)
        await _grow(p, root, size)
        rows.append(Measured(f"{size} piece(s) per payable", payable, root))
    for m in rows:
        assert await p.claim_ledger.functions.claimCount().call() >= m.root
        await _measure_moves(p, m)

    await _extra_payables(p, EXTRA_PAYABLES, due)
    payables_before = int(await p.claim_ledger.functions.payableCount().call())
    payable, root = await _issue(p, due)
    many = Measured(f"after {payables_before} payables", payable, root)
    await _measure_moves(p, many)
    rows.append(many)

    await p.warp_to(due)
    for m in rows:
        await _measure_settle(p, m)

    table = _table(rows)
    reference = rows[0]
    for op in OPS:
        ref = reference.gas[op]
        for m in rows[1:]:
            deviation = abs(m.gas[op] - ref) / ref
            assert deviation <= TOLERANCE, (
                f"{op} gas grows: {m.label} uses {m.gas[op]} vs {ref} ({deviation:.1%})\n{table}"
            )
    worst_split = max(max(m.gas["split"], m.gas["resale"]) for m in rows)
    assert worst_split < SPLIT_CEILING, f"a split costs {worst_split} gas\n{table}"
    # the large payable really has its 1,000 pieces (plus the measured split and financing)
    big = rows[SIZES.index(1_000)]
    pieces = await p.claim_ledger.functions.balanceOf(p.sup2.address).call()
    assert pieces >= 250, f"sup2 holds only {pieces} pieces"
    assert int(await p.claim_ledger.functions.claimCount().call()) >= big.root + 999
