"""Gas per operation, measured on a real anvil, written as a Markdown table.

Usage: ``scripts/gas-table [--out docs/gas.md]``. Each row is the receipt's ``gasUsed`` of a
fresh call in a steady state (recipients already hold pieces, storage slots warm in the same
way a production call would find them); "first-time holder" rows split to a member that never
held a piece (its piece counter was opened when it was registered, so that split writes no
slot from zero; registering a supplier pays for it). The split ceiling from the ledger issue
is 150,000 gas; every split row must stay under it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from pathlib import Path

from eth_account import Account
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.cast import build_platform
from ledger.anvil import AnvilProcess, dev_private_keys
from ledger.bindings import ZERO_HASH
from ledger.deployment import DAY
from ledger.node import close_web3, make_web3
from ledger.roles import Role, roles_to_mask

SPLIT_CEILING = 150_000


async def measure(url: str, progress: Progress) -> list[tuple[str, int, str]]:
    w3 = make_web3(url)
    p = await build_platform(w3, dev_private_keys())
    rows: list[tuple[str, int, str]] = []
    task = progress.add_task("measuring", total=18)

    def row(name: str, receipt: dict[str, int] | object, note: str = "") -> None:
        rows.append((name, int(receipt["gasUsed"]), note))  # type: ignore[index]
        progress.advance(task)

    core, sup1, sup2, sup3, bank, agent = p.core, p.sup1, p.sup2, p.sup3, p.bank, p.agent
    # warm-up payable so that every holder already holds a piece
    _, warm_root, _ = await p.issue(core, sup1, 10**9)
    r = await sup1.transact(
        p.claim_ledger.functions.split(warm_root, sup2.address, 1_000, ZERO_HASH)
    )
    row("split to a first-time holder", r, "its piece counter was opened at registration")
    await p.split(sup1, warm_root, sup3, 1_000)

    invoice_id = await p.invoice(sup1, core, 10**9)
    due = await p.now() + 90 * DAY
    r = await core.transact(
        p.claim_ledger.functions.issuePayable(sup1.address, 10**9, due, [invoice_id], agent.address)
    )
    row("issue payable (1 invoice)", r, "mints the root piece")
    root = int(await p.claim_ledger.functions.claimCount().call())

    r = await sup1.transact(
        p.claim_ledger.functions.split(root, sup2.address, 1_000_000, ZERO_HASH)
    )
    row("split", r, f"ceiling {SPLIT_CEILING:,}")
    piece = int(await p.claim_ledger.functions.claimCount().call())
    trade_invoice = await p.invoice(sup3, sup1, 1_000_000)
    r = await sup1.transact(
        p.claim_ledger.functions.split(root, sup3.address, 1_000_000, trade_invoice)
    )
    row("split citing a trade invoice", r)
    r = await sup2.transact(p.claim_ledger.functions.transferClaim(piece, sup3.address, ZERO_HASH))
    row("whole transfer", r)

    expires = await p.now() + 30 * DAY
    r = await sup1.transact(
        p.desk.functions.applyForFinancing(root, bank.address, 5_000_000, expires, 4_000_000, False)
    )
    row("apply for financing", r, "locks the value, commits min advance")
    financing_id = int(await p.desk.functions.financingCount().call())
    now = await p.now()
    days = math.ceil((due - now) / DAY)
    discount = await p.suite.discount_for(5_000_000, 450, days)
    terms = (5_000_000 - discount - 500, discount, 500, 450, days, False, b"R" * 32, b"D" * 32)
    r = await bank.transact(p.desk.functions.approveFinancing(financing_id, terms))
    row("approve financing", r, "moves the value; keeps its two references")
    newcomer = Account.create()
    kyc = await p.now() + 3650 * DAY
    r = await p.operator.transact(
        p.members.functions.registerMember(newcomer.address, roles_to_mask((Role.SUPPLIER,)), kyc)
    )
    row("register a supplier", r, "opens its piece counter on the ledger")
    # the financier sells part of its financed piece on to a supplier that holds no piece yet,
    # citing the supplier's invoice to the financier (exposure released)
    financed = int(await p.claim_ledger.functions.claimCount().call())
    resale_invoice = await p.invoice(p.sup4, bank, 1_000_000)
    r = await bank.transact(
        p.claim_ledger.functions.split(financed, p.sup4.address, 1_000_000, resale_invoice)
    )
    row(
        "split of a financed piece to a first-time holder citing an invoice",
        r,
        f"ceiling {SPLIT_CEILING:,}; releases exposure",
    )

    # 101 more pieces of sup2 to settle: one alone, a batch of 50 paid by one bank payment
    # (its reference recorded by the first piece, read by the others), then a batch of 50
    # paid by 50 payments (a reference recorded per piece, the dearest case)
    for _ in range(101):
        await p.split(sup1, root, sup2, 1_000)
    last = int(await p.claim_ledger.functions.claimCount().call())
    await p.warp_to(due)
    r = await core.transact(p.claim_ledger.functions.settleClaim(last - 100, b"P" * 32))
    row("settle one piece", r, "records its payment reference")
    ids = list(range(last - 99, last - 49))
    r = await agent.transact(p.claim_ledger.functions.settleClaims(ids, [b"Q" * 32] * 50))
    row("settle a batch of 50, one payment", r, f"{int(r['gasUsed']) // 50:,} per piece")
    ids = list(range(last - 49, last + 1))
    refs = [i.to_bytes(32, "big") for i in ids]
    r = await agent.transact(p.claim_ledger.functions.settleClaims(ids, refs))
    row("settle a batch of 50, 50 payments", r, f"{int(r['gasUsed']) // 50:,} per piece")

    # the overdue clock (SPEC §2): a freeze and a pause after the due date push the deadline
    ledger, registry = p.claim_ledger.functions, p.members.functions
    overdue_id, overdue_root, overdue_due = await p.issue(core, sup1, 10**6, due_in=DAY)
    r = await p.operator.transact(ledger.freezeClaim(overdue_root, b"C" * 32))
    row("freeze a piece", r, "its payable's clock is written from zero")
    await p.warp_to(overdue_due + DAY)
    row("pause", await p.operator.transact(registry.pause()), "appends to the pause log")
    row("unpause", await p.operator.transact(registry.unpause()), "appends to the pause log")
    r = await p.operator.transact(ledger.unfreezeClaim(overdue_root))
    row("unfreeze a piece", r, "adds the frozen, unpaused seconds since the due date")
    await p.warp_to(overdue_due + 10 * DAY)
    r = await p.outsider.transact(ledger.markOverdue(overdue_id))
    row("mark overdue", r, "reads the pause log")
    progress.advance(task)
    await close_web3(w3)
    return rows


def render(rows: list[tuple[str, int, str]]) -> str:
    lines = [
        "# Gas per operation",
        "",
        "Measured by `scripts/gas-table` on anvil (cancun, optimizer 200 runs, legacy codegen);",
        "each figure is the receipt's `gasUsed`, 21,000 base included.",
        "",
        "| operation | gas | note |",
        "| --- | ---: | --- |",
    ]
    lines += [f"| {name} | {gas:,} | {note} |" for name, gas, note in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    args = parser.parse_args()
    console = Console()
    with AnvilProcess.ephemeral() as node, Progress(console=console, transient=True) as progress:
        rows = asyncio.run(measure(node.url, progress))
    table = Table(title="gas per operation")
    for col in ("operation", "gas", "note"):
        table.add_column(col, justify="right" if col == "gas" else "left")
    for name, gas, note in rows:
        table.add_row(name, f"{gas:,}", note)
    console.print(table)
    split_gas = max(g for n, g, _ in rows if n.startswith("split"))
    if split_gas >= SPLIT_CEILING:
        console.print(f"[red]split costs {split_gas:,} gas, over the {SPLIT_CEILING:,} ceiling")
        raise SystemExit(1)
    if args.out:
        args.out.write_text(render(rows))
        console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
