"""How ``tierflow demo`` shows its story: the lineage tree, exposure before and after, the
financing outcomes (rich renderables)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tierflow.demo_story import DemoResult, children_of, root_of, yuan

STATUS_STYLE = {
    "active": "green",
    "locked": "yellow",
    "financed": "cyan",
    "settled": "bold green",
    "frozen": "red",
    "cancelled": "dim",
    "issued": "green",
    "overdue": "red",
}


def short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def lineage_tree(result: DemoResult) -> Tree:
    """The payable's lineage as a rich Tree: holder, amount, status per piece."""
    p = result.payable
    names = result.names
    head = Text.assemble(
        (f"Payable #{p['id']} ", "bold"),
        f"{names.get(p['obligor'], short(p['obligor']))} owes ",
        (money(int(p["face_value"])), "bold"),
        f" · due {str(p['due_date'])[:10]} · ",
        _status(str(p["status"])),
    )
    tree = Tree(head, guide_style="dim")
    # Pieces held by a financier were sold to it: they keep that colour after settlement.
    financiers = {a.address for a in result.members.values() if "financier" in a.roles}

    def add(branch: Tree, node: dict[str, Any]) -> None:
        holder = str(node["holder"])
        financed = holder in financiers
        label = Text.assemble(
            (f"#{node['id']} ", "dim"),
            (names.get(holder, short(holder)), "bold cyan" if financed else "bold"),
            "  ",
            (money(int(node["amount"])), "bold"),
            "  ",
            _status(str(node["status"])),
            ("  financed" if financed else "", "cyan"),
            (f"  depth {node['depth']}", "dim"),
        )
        child = branch.add(label)
        for kid in sorted(children_of(node), key=lambda n: int(n["id"])):
            add(child, kid)

    add(tree, root_of(result.tree))
    return tree


def money(fen: Any) -> str:
    """``¥1,234`` (cents only when there are any); ``—`` for none."""
    if fen is None:
        return "—"
    text = yuan(int(fen))
    return text[:-3] if text.endswith(".00") else text


def _change(before: Any, after: Any) -> Text:
    if before == after:
        return Text(money(after))
    return Text.assemble((money(before), "dim"), " → ", (money(after), "bold"))


def exposure_table(result: DemoResult) -> Table:
    """The obligor's book and the bank's exposure on it, before maturity → after settlement."""
    names = result.names
    table = Table(
        title="Exposure: before maturity → after settlement",
        title_style="bold",
        header_style="bold",
    )
    before_rows = (*result.exposure_before, *result.bank_exposure_before)
    # Overdue is shown only when the story has any: a column of zeros is not information.
    overdue = any(r.get("overdue") for r in (*before_rows, *result.exposure_after))
    table.add_column("book", ratio=1)
    for col in ("limit", "issued", "outstanding", *(("overdue",) if overdue else ()), "financed"):
        table.add_column(col, justify="right", no_wrap=True)

    def key(r: dict[str, Any]) -> tuple[str, str]:
        return (str(r["obligor"]), str(r.get("financier") or ""))

    after = {key(r): r for r in (*result.exposure_after, *result.bank_exposure_after)}
    for b in before_rows:
        a = after.get(key(b), b)
        obligor = b.get("obligor_name") or names.get(b["obligor"], short(b["obligor"]))
        if b.get("financier") is None:
            book, limit = f"{obligor} (all financiers)", b.get("program_limit")
        else:
            book = f"{names.get(b['financier'], short(b['financier']))} on {obligor}"
            limit = b.get("exposure_limit")
        cells = [
            money(limit),
            money(b.get("issued")),
            _change(b.get("outstanding"), a.get("outstanding")),
            *((_change(b.get("overdue"), a.get("overdue")),) if overdue else ()),
            _change(b.get("financed"), a.get("financed")),
        ]
        table.add_row(book, *cells)
    return table


def financing_table(result: DemoResult) -> Table:
    table = Table(title="Financing", title_style="bold", header_style="bold")
    for col, justify in (
        ("#", "right"), ("applicant", "left"), ("amount", "right"), ("advance", "right"),
        ("cost", "right"), ("decided by", "left"), ("status", "left"),
    ):  # fmt: skip
        wraps = col in ("applicant", "decided by")
        table.add_column(col, justify=justify, no_wrap=not wraps, ratio=1 if wraps else None)  # type: ignore[arg-type]
    for f in (result.auto, result.manual):
        r = f.record
        by = (
            f"policy, {f.seconds_to_decision:.1f} s"
            if f.decided_by == "auto-approval"
            else f"{f.decided_by} (officer)"
        )
        cost = money(int(r["discount"]) + int(r["fees"]))
        table.add_row(
            str(f.id), f.applicant, money(f.amount), money(int(r["advance"])), cost, by,
            _status(f.status),
        )  # fmt: skip
    return table


def webhook_panel(result: DemoResult) -> Panel:
    """What tier 1's webhook received (each delivery's signature verified on arrival)."""
    hook = result.webhook
    if not hook or hook.get("refused"):
        why = hook.get("refused") if hook else "not registered"
        return Panel(Text(f"no webhook: {why}"), title="webhook", border_style="yellow")
    types = ", ".join(f"{name} ×{count}" for name, count in hook["types"].items())
    states = ", ".join(f"{n} {state}" for state, n in hook["deliveries"].items())
    text = Text.assemble(
        ("✓ " if hook["received"] and not hook["forged"] else "✗ ", "bold green"),
        f"{hook['received']} events received and verified "
        f"(Tierflow-Signature, HMAC-SHA256), {hook['forged']} refused\n",
        f"deliveries as the API lists them: {states}; {hook['attempts']} attempts\n",
        f"types: {types}",
    )
    return Panel(text, title="tier 1's webhook", border_style="cyan")


def render(result: DemoResult) -> Group:
    """The picture at the end: the lineage tree, financing, exposure, and the auditor's checks."""
    rec = result.reconciliation
    log = result.audit_log
    checked = sum(int(v) for v in rec.get("checked", {}).values())
    verdicts = Text.assemble(
        ("✓ " if rec.get("ok") else "✗ ", "bold green" if rec.get("ok") else "bold red"),
        f"mirror = chain at block {rec.get('block_number')}: {checked} objects compared, "
        f"{rec.get('differences_total')} differences\n",
        ("✓ " if log.get("ok") else "✗ ", "bold green" if log.get("ok") else "bold red"),
        f"audit log intact: {log.get('records')} records, every hash and link checked",
    )
    return Group(
        Panel(lineage_tree(result), title="lineage (the auditor's view)", border_style="cyan"),
        financing_table(result),
        exposure_table(result),
        webhook_panel(result),
        Panel(
            verdicts,
            title="audit",
            border_style="green" if rec.get("ok") and log.get("ok") else "red",
        ),
    )
