"""``tierflow demo``: a whole supply-chain finance story told through the HTTP API.

:func:`run_demo` is the scenario (the e2e test runs the very same function); the command
line only opens a console and prints the picture at the end. Everything goes through the
API with members' own keys, as a real deployment's clients would. The node's JSON-RPC is used
for the clock only: to read the chain's time (due dates are chain time, and a chain that has
run the demo before is ahead of the wall clock) and, on the local chain (id 31337) only, to
move it past the due date with anvil's ``evm_increaseTime`` so the payable can be settled.

The story:

1. the operator onboards a core enterprise, a bank, a clearing agent, five suppliers on
   three tiers and an auditor, and sets the core's program limit;
2. the tier-1 supplier registers two invoices to the core, the core confirms them and
   issues a payable naming its clearing agent;
3. tier 1 splits the claim to two tier-2 suppliers, each of them to a tier-3 supplier, every
   transfer citing a confirmed trade invoice from the recipient to the holder;
4. the bank sets a credit line on the core and an auto-approval policy; a tier-3 supplier
   looks at a quote and applies for a small amount, which the policy approves with no person
   involved; tier 1 applies for a larger one, which the bank's officer approves by hand with
   the registry number and the disbursement reference;
5. the clock moves past the due date; the clearing agent (and the core, for the last piece)
   record the payment of every piece;
6. the auditor fetches the lineage tree, the exposure, the reconciliation of the mirror with
   the chain, and verifies the API's audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from backend.config import ApiSettings
from ledger.anvil import ANVIL_CHAIN_ID, rpc_call

DAY = 86_400
YUAN = 100  # fen per yuan: amounts are minor units
FACE_VALUE = 1_000_000 * YUAN
PROGRAM_LIMIT = 50_000_000 * YUAN
CREDIT_LINE = 5_000_000 * YUAN
AUTO_MAX = 100_000 * YUAN  # the bank approves up to this much by itself
TERM_DAYS = 90
RATE_BPS = 450  # 4.5 % a year
FEE_BPS = 10  # 0.1 % of the amount
#: How long the demo waits for the bank's auto-approval to act on a request.
AUTO_DECISION_WAIT_S = 30.0

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


class DemoError(RuntimeError):
    """A step of the story was refused (the message names the request and the problem)."""


def yuan(fen: int) -> str:
    """An amount in fen as ``¥1,234.56``."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), YUAN)
    return f"{sign}¥{whole:,}.{cents:02d}"


def short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


@dataclass
class Actor:
    """A member (or the operator) speaking to the API with its own key."""

    name: str
    roles: tuple[str, ...]
    key: str
    http: httpx.AsyncClient
    address: str = ""

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        expect: Iterable[int] = (200, 201),
    ) -> Any:
        """One call; a write carries a fresh ``Idempotency-Key``. Raises :class:`DemoError`
        (with the problem's code and detail) on an unexpected status."""
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method != "GET" else {}
        r = await self.http.request(method, path, json=body, params=params, headers=headers)
        if r.status_code not in tuple(expect):
            try:
                problem = r.json()
                why = f"{problem.get('code')}: {problem.get('detail') or problem.get('title')}"
            except ValueError:
                why = r.text[:300]
            raise DemoError(f"{self.name}: {method} {path} → {r.status_code} {why}")
        return r.json() if r.content else None

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, body)

    async def put(self, path: str, body: Any = None) -> Any:
        return await self.request("PUT", path, body)


@dataclass(frozen=True)
class FinancingOutcome:
    """One financing request as the story ended it."""

    id: int
    applicant: str
    amount: int
    status: str
    decided_by: str  # "auto-approval" or the person's organisation
    seconds_to_decision: float  # from the application's answer to the approval being seen
    quote: dict[str, Any] | None
    record: dict[str, Any]


@dataclass
class DemoResult:
    """What the story produced, as the auditor sees it at the end."""

    base_url: str
    chain_id: int
    members: dict[str, Actor]  # by role in the story ("core", "bank", "tier1", …)
    names: dict[str, str]  # address → name
    payable: dict[str, Any]  # the payable after settlement
    tree: dict[str, Any]  # GET /v1/payables/{id}/tree, as the auditor read it
    exposure_before: list[dict[str, Any]]  # the auditor's exposure rows before settlement
    exposure_after: list[dict[str, Any]]
    bank_exposure_before: list[dict[str, Any]]  # with ?financier=<bank>
    bank_exposure_after: list[dict[str, Any]]
    reconciliation: dict[str, Any]
    audit_log: dict[str, Any]  # GET /v1/audit/log/verify
    auto: FinancingOutcome
    manual: FinancingOutcome
    settlements: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


# -- the cast ----------------------------------------------------------------------------------

#: (story role, name, API roles).
CAST: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("core", "Huaxin Motors", ("core_enterprise",)),
    ("bank", "Bank of Qiantang", ("financier",)),
    ("clearing", "Zhongyuan Clearing", ("clearing_agent",)),
    ("tier1", "Anda Components", ("supplier",)),
    ("tier2a", "Boyuan Castings", ("supplier",)),
    ("tier2b", "Chenguang Plastics", ("supplier",)),
    ("tier3a", "Dongfang Steel", ("supplier",)),
    ("tier3b", "Fenghua Wiring", ("supplier",)),
    ("auditor", "Lianxin Audit", ("auditor",)),
)

#: Who passes how much to whom, parent first (the holder's piece is the one it received).
SPLITS: tuple[tuple[str, str, int], ...] = (
    ("tier1", "tier2a", 400_000 * YUAN),
    ("tier1", "tier2b", 250_000 * YUAN),
    ("tier2a", "tier3a", 150_000 * YUAN),
    ("tier2b", "tier3b", 100_000 * YUAN),
)
AUTO_FINANCING = ("tier3a", 60_000 * YUAN)  # under AUTO_MAX: the policy approves it
MANUAL_FINANCING = ("tier1", 200_000 * YUAN)  # above it: a person decides


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Story:
    """The state the steps share."""

    def __init__(self, base_url: str, operator_key: str, rpc_url: str, run: str) -> None:
        self.base_url = base_url
        self.rpc_url = rpc_url
        self.run = run  # makes invoice numbers unique when the demo runs again on one chain
        self._clients: list[httpx.AsyncClient] = []
        self.operator = Actor(
            "Platform operator", ("operator",), operator_key, self.client(operator_key)
        )
        self.actors: dict[str, Actor] = {}
        self.chain_id = 0
        self.payable: dict[str, Any] = {}
        self.pieces: dict[str, int] = {}  # story role → the piece it holds
        self.invoice_no = 0
        self.auto: FinancingOutcome | None = None
        self.manual: FinancingOutcome | None = None
        self.exposure_before: list[dict[str, Any]] = []
        self.bank_exposure_before: list[dict[str, Any]] = []
        self.settlements: list[dict[str, Any]] = []

    def client(self, key: str) -> httpx.AsyncClient:
        made = httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60.0
        )
        self._clients.append(made)
        return made

    async def close(self) -> None:
        for c in self._clients:
            await c.aclose()

    def __getitem__(self, role: str) -> Actor:
        return self.actors[role]

    @property
    def names(self) -> dict[str, str]:
        out = {a.address: a.name for a in self.actors.values()}
        if self.operator.address:
            out[self.operator.address] = self.operator.name
        return out

    async def chain_time(self) -> int:
        block = await asyncio.to_thread(
            rpc_call, self.rpc_url, "eth_getBlockByNumber", ["latest", False]
        )
        return int(block["timestamp"], 16)

    # -- invoices ------------------------------------------------------------------------

    async def invoice(self, seller: str, buyer: str, amount: int, confirm: bool = True) -> str:
        """``seller`` registers an invoice to ``buyer``, and ``buyer`` confirms it."""
        self.invoice_no += 1  # before any await: concurrent calls get distinct numbers
        number = f"{self.run}{self.invoice_no:03d}"
        body = {
            "buyer": self[buyer].address,
            "seller_tax_id": f"91330100MA{int(_sha256(seller)[:8], 16) % 10**8:08d}",
            "invoice_code": "3300231130",
            "number": number,
            "amount": amount,
            # Chain time: the registry refuses an invoice issued after the chain's now.
            "issue_date": datetime.fromtimestamp(await self.chain_time() - DAY, UTC).isoformat(),
            "document_sha256": _sha256(f"invoice {self.run} {number} {seller}->{buyer}"),
        }
        made = await self[seller].post("/v1/invoices", body)
        invoice_id: str = made["id"]
        if confirm:
            await self[buyer].post(f"/v1/invoices/{invoice_id}/confirm")
        return invoice_id


# -- the steps ---------------------------------------------------------------------------------


async def onboard(story: Story) -> str:
    kyc = (datetime.now(UTC) + timedelta(days=730)).isoformat()
    deployment = await story.operator.get("/v1/deployment")
    story.chain_id = int(deployment["chain_id"])

    async def one(role: str, name: str, roles: tuple[str, ...]) -> None:
        made = await story.operator.post(
            "/v1/members", {"name": name, "roles": list(roles), "kyc_expires_at": kyc}
        )
        story.actors[role] = Actor(name, roles, made["api_key"], story.client(made["api_key"]))
        story.actors[role].address = made["address"]

    # Concurrently: the operator's transactions still leave in nonce order (the API's sender
    # serialises them), but their receipts and the mirror's catching up are awaited together.
    await asyncio.gather(*(one(role, name, roles) for role, name, roles in CAST))
    story.actors = {role: story.actors[role] for role, _, _ in CAST}  # the cast's order
    await story.operator.put(
        f"/v1/members/{story['core'].address}/program-limit", {"program_limit": PROGRAM_LIMIT}
    )
    return (
        f"{len(CAST)} members onboarded; {story['core'].name}'s program limit {yuan(PROGRAM_LIMIT)}"
    )


async def issue(story: Story) -> str:
    invoices = list(
        await asyncio.gather(
            story.invoice("tier1", "core", 600_000 * YUAN),
            story.invoice("tier1", "core", 500_000 * YUAN),
        )
    )
    due = await story.chain_time() + TERM_DAYS * DAY
    story.payable = await story["core"].post(
        "/v1/payables",
        {
            "supplier": story["tier1"].address,
            "face_value": FACE_VALUE,
            "due_date": datetime.fromtimestamp(due, UTC).isoformat(),
            "invoice_ids": invoices,
            "clearing_agent": story["clearing"].address,
        },
    )
    story.pieces["tier1"] = int(story.payable["root_claim_id"])
    return (
        f"payable #{story.payable['id']}: {story['core'].name} owes {story['tier1'].name} "
        f"{yuan(FACE_VALUE)} in {TERM_DAYS} days (2 invoices confirmed)"
    )


async def pass_down(story: Story) -> str:
    # The trade invoices (each recipient sold goods to its holder) are registered and
    # confirmed together; the splits then go in order, each from the piece just received.
    trades = await asyncio.gather(*(story.invoice(to, holder, n) for holder, to, n in SPLITS))
    for (holder, recipient, amount), trade in zip(SPLITS, trades, strict=True):
        made = await story[holder].post(
            f"/v1/claims/{story.pieces[holder]}/transfers",
            {"to": story[recipient].address, "amount": amount, "invoice_id": trade},
        )
        story.pieces[recipient] = int(made["claim_id"])
    return f"{len(SPLITS)} splits down to tier 3, each backed by a confirmed trade invoice"


async def bank_terms(story: Story) -> str:
    bank, core = story["bank"], story["core"]
    # The registry number of the bank's umbrella registration of this credit line: the
    # auto-approval puts it on every financing it approves.
    await bank.put(
        f"/v1/credit-lines/{core.address}",
        {"limit": CREDIT_LINE, "registration_no": f"ZD-LINE-{story.run}"},
    )
    await bank.put(
        "/v1/financing-policy",
        {
            "enabled": True,
            "max_amount": AUTO_MAX,
            "max_tenor_days": 180,
            "allowed_obligors": [core.address],
            "annual_rate_bps": RATE_BPS,
            "fee_bps": FEE_BPS,
            "recourse": False,
        },
    )
    return (
        f"{bank.name}: credit line {yuan(CREDIT_LINE)} on {core.name}; auto-approves up to "
        f"{yuan(AUTO_MAX)} at {RATE_BPS / 100:g} %"
    )


async def _apply(
    story: Story, role: str, amount: int
) -> tuple[dict[str, Any], dict[str, Any], float]:
    applicant, bank = story[role], story["bank"]
    quote: dict[str, Any] = await applicant.get(
        "/v1/financing-quotes",
        claim_id=story.pieces[role],
        financier=bank.address,
        amount=amount,
    )
    made: dict[str, Any] = await applicant.post(
        "/v1/financing-requests",
        {"claim_id": story.pieces[role], "financier": bank.address, "amount": amount},
    )
    return quote, made, time.monotonic()


async def finance_automatically(story: Story) -> str:
    role, amount = AUTO_FINANCING
    quote, made, applied_at = await _apply(story, role, amount)
    deadline = applied_at + AUTO_DECISION_WAIT_S
    record = made
    # The policy decides after the application is mined; the applicant watches its request.
    while record["status"] == "applied" and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        record = await story[role].get(f"/v1/financing-requests/{made['id']}")
    waited = time.monotonic() - applied_at
    story.auto = FinancingOutcome(
        int(made["id"]),
        story[role].name,
        amount,
        record["status"],
        "auto-approval",
        waited,
        quote,
        record,
    )
    if record["status"] != "approved":
        decision = record.get("auto_decision") or {}
        raise DemoError(
            f"the auto-approval did not approve request #{made['id']} within "
            f"{AUTO_DECISION_WAIT_S:g} s: {record['status']} ({decision.get('detail')})"
        )
    return (
        f"{story[role].name} asked {yuan(amount)}: approved by the policy in {waited:.1f} s, "
        f"advance {yuan(int(record['advance']))}"
    )


async def finance_by_hand(story: Story) -> str:
    role, amount = MANUAL_FINANCING
    quote, made, applied_at = await _apply(story, role, amount)
    bank = story["bank"]
    # Above the policy's limit the request waits for a person: the bank's officer reads it
    # once the policy has looked at it (its note says why it was left), then approves at the
    # quoted rate.
    deadline = applied_at + AUTO_DECISION_WAIT_S
    pending = await bank.get(f"/v1/financing-requests/{made['id']}")
    while (
        pending["status"] == "applied"
        and pending.get("auto_decision") is None
        and time.monotonic() < deadline
    ):
        await asyncio.sleep(0.1)
        pending = await bank.get(f"/v1/financing-requests/{made['id']}")
    if pending["status"] != "applied":
        raise DemoError(
            f"request #{made['id']} was decided without the officer: {pending['status']}"
        )
    record = await bank.post(
        f"/v1/financing-requests/{made['id']}/approve",
        {
            "annual_rate_bps": RATE_BPS,
            "fees": int(quote["fees"]),
            "registration_no": f"ZD{story.run}{made['id']:04d}",
            "disbursement_ref": f"QT-DISB-{story.run}-{made['id']}",
        },
    )
    story.manual = FinancingOutcome(
        int(made["id"]), story[role].name, amount, record["status"], bank.name,
        time.monotonic() - applied_at, quote, record,
    )  # fmt: skip
    return (
        f"{story[role].name} asked {yuan(amount)}: approved by {bank.name}'s officer, "
        f"advance {yuan(int(record['advance']))}, registry no. {record['registration_no']}"
    )


async def snapshot_exposure(story: Story) -> str:
    auditor, bank = story["auditor"], story["bank"]
    # This story's obligor only: a platform that ran the demo before has other books.
    core = story["core"].address
    story.exposure_before = (await auditor.get("/v1/audit/exposure", obligor=core))["items"]
    story.bank_exposure_before = (
        await auditor.get("/v1/audit/exposure", obligor=core, financier=bank.address)
    )["items"]
    financed = sum(int(r["financed"]) for r in story.bank_exposure_before)
    return f"exposure before maturity: {bank.name} has financed {yuan(financed)}"


async def mature(story: Story) -> str:
    if story.chain_id != ANVIL_CHAIN_ID:
        raise DemoError(
            f"chain {story.chain_id} is not the local chain: the demo moves the clock only on "
            f"anvil ({ANVIL_CHAIN_ID})"
        )
    due = int(
        datetime.fromisoformat(str(story.payable["due_date"]).replace("Z", "+00:00")).timestamp()
    )
    now = await story.chain_time()
    if now < due:
        await asyncio.to_thread(rpc_call, story.rpc_url, "evm_increaseTime", [due - now + 60])
    await asyncio.to_thread(rpc_call, story.rpc_url, "evm_mine")
    # The mirror must have the new block before the API decides anything "after the due
    # date"; /health says how far behind it is.
    head = int(await asyncio.to_thread(rpc_call, story.rpc_url, "eth_blockNumber"), 16)
    deadline = time.monotonic() + 30
    while True:
        health = await story.operator.get("/health")
        if (health.get("mirrored_block") or 0) >= head:
            break
        if time.monotonic() > deadline:
            raise DemoError("the mirror did not reach the chain's head within 30 s")
        await asyncio.sleep(0.1)
    return f"{TERM_DAYS} days later: the payable is due"


async def settle(story: Story) -> str:
    payable_id = story.payable["id"]
    tree = await story["clearing"].get(f"/v1/payables/{payable_id}/tree")
    pieces = [p for p in _flatten(tree) if p["status"] != "settled"]
    for n, piece in enumerate(pieces):
        # The clearing agent records each payment; the core records the last itself.
        settler = story["core"] if n == len(pieces) - 1 else story["clearing"]
        made = await settler.post(
            f"/v1/payables/{payable_id}/settlements",
            {
                "items": [
                    {
                        "claim_id": int(piece["id"]),
                        "payment_ref": f"CNAPS-{story.run}-{payable_id}-{piece['id']}",
                    }
                ]
            },
        )
        story.settlements.append({"by": settler.name, "claim_id": int(piece["id"]), **made})
    return f"{len(pieces)} pieces paid to their holders, one by one"


# -- the tree, as the API gives it ---------------------------------------------------------


def _children(node: dict[str, Any]) -> list[dict[str, Any]]:
    kids: list[dict[str, Any]] = node.get("children") or []
    return kids


def _root(tree: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = tree.get("root") or tree
    return root


def _flatten(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """Every piece of a tree response, parents before children."""
    out: list[dict[str, Any]] = []
    stack = [_root(tree)]
    while stack:
        node = stack.pop(0)
        out.append(node)
        stack.extend(_children(node))
    return out


# -- the run ------------------------------------------------------------------------------------

Step = Callable[[Story], Awaitable[str]]
AUDIT_STEP = "the auditor's view"
STEPS: tuple[tuple[str, Step], ...] = (
    ("onboarding the members", onboard),
    ("invoices, confirmation, the payable", issue),
    ("passing the claim down three tiers", pass_down),
    ("the bank's credit line and policy", bank_terms),
    ("a financing the policy approves", finance_automatically),
    ("a financing a person approves", finance_by_hand),
    ("exposure before maturity", snapshot_exposure),
    ("moving the clock past the due date", mature),
    ("settlement, piece by piece", settle),
)


async def run_demo(
    base_url: str, operator_key: str, rpc_url: str, console: Console | None = None
) -> DemoResult:
    """Run the whole story against a running platform; return what the auditor saw."""
    console = console or Console(stderr=True)
    story = Story(base_url.rstrip("/"), operator_key, rpc_url, uuid.uuid4().hex[:8].upper())
    timings: dict[str, float] = {}
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("", total=len(STEPS) + 1)
            for title, step in STEPS:
                progress.update(task, description=title)
                started = time.perf_counter()
                said = await step(story)
                timings[title] = time.perf_counter() - started
                progress.console.print(
                    f"[green]✓[/green] {said} [dim]({timings[title]:.1f} s)[/dim]"
                )
                progress.advance(task)
            progress.update(task, description=AUDIT_STEP)
            started = time.perf_counter()
            result = await audit(story)
            timings[AUDIT_STEP] = time.perf_counter() - started
            progress.console.print(
                "[green]✓[/green] the auditor read the lineage tree, the exposure, the "
                "reconciliation and the audit log "
                f"[dim]({timings[AUDIT_STEP]:.1f} s)[/dim]"
            )
            progress.advance(task)
        result.timings = timings
        return result
    finally:
        await story.close()


async def audit(story: Story) -> DemoResult:
    auditor, bank = story["auditor"], story["bank"]
    payable_id = story.payable["id"]
    tree = await auditor.get(f"/v1/payables/{payable_id}/tree")
    payable = await auditor.get(f"/v1/payables/{payable_id}")
    core = story["core"].address
    exposure = (await auditor.get("/v1/audit/exposure", obligor=core))["items"]
    bank_exposure = (await auditor.get("/v1/audit/exposure", obligor=core, financier=bank.address))[
        "items"
    ]
    reconciliation = await auditor.get("/v1/audit/reconciliation")
    log = await auditor.get("/v1/audit/log/verify")
    if story.auto is None or story.manual is None:
        raise DemoError("the financing steps did not run")
    return DemoResult(
        base_url=story.base_url,
        chain_id=story.chain_id,
        members=dict(story.actors),
        names=story.names,
        payable=payable,
        tree=tree,
        exposure_before=story.exposure_before,
        exposure_after=exposure,
        bank_exposure_before=story.bank_exposure_before,
        bank_exposure_after=bank_exposure,
        reconciliation=reconciliation,
        audit_log=log,
        auto=story.auto,
        manual=story.manual,
        settlements=story.settlements,
    )


# -- the picture --------------------------------------------------------------------------------


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
        for kid in sorted(_children(node), key=lambda n: int(n["id"])):
            add(child, kid)

    add(tree, _root(result.tree))
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
        Panel(
            verdicts,
            title="audit",
            border_style="green" if rec.get("ok") and log.get("ok") else "red",
        ),
    )


# -- the command ---------------------------------------------------------------------------

#: The line ``tierflow serve`` prints once when it generated the operator's key.
_KEY_LINE = re.compile(r"operator's API key \(shown once, keep it\): (tf_[0-9a-f]{12}_\S+)")


def operator_key_from_log(data_dir: Path) -> str | None:
    """The operator key ``tierflow run`` printed into ``<data_dir>/logs/api.log``, if any."""
    log = data_dir / "logs" / "api.log"
    if not log.exists():
        return None
    found = _KEY_LINE.findall(log.read_text(errors="replace"))
    return str(found[-1]) if found else None


def demo_command(
    base_url: Annotated[
        str | None,
        typer.Option(help="The API (default: http://$TIERFLOW_API_HOST:$TIERFLOW_API_PORT)."),
    ] = None,
    operator_key: Annotated[
        str | None,
        typer.Option(
            help="The operator's API key (default: $TIERFLOW_OPERATOR_API_KEY, else the key "
            "`tierflow run` printed into $TIERFLOW_DATA_DIR/logs/api.log)."
        ),
    ] = None,
    rpc_url: Annotated[
        str | None, typer.Option(help="JSON-RPC URL, for the clock (default: $TIERFLOW_RPC_URL).")
    ] = None,
) -> None:
    """Run a full scenario through the HTTP API of a running platform (`tierflow run`):
    onboarding, invoices, a payable passed down three tiers, financing, settlement, audit."""
    settings = ApiSettings()
    console = Console(stderr=True)
    key = operator_key
    if key is None and settings.operator_api_key is not None:
        key = settings.operator_api_key.get_secret_value()
    key = key or operator_key_from_log(settings.data_dir)
    if key is None:
        console.print(
            "[red]no operator key:[/red] pass --operator-key or set TIERFLOW_OPERATOR_API_KEY"
        )
        raise typer.Exit(2)
    base = base_url or f"http://{settings.api_host}:{settings.api_port}"
    try:
        result = asyncio.run(run_demo(base, key, rpc_url or settings.rpc_url, console))
    except DemoError as exc:
        console.print(f"[red]the demo stopped:[/red] {exc}")
        raise typer.Exit(1) from exc
    except (httpx.HTTPError, OSError) as exc:
        console.print(f"[red]cannot reach the platform at {base}:[/red] {exc}")
        raise typer.Exit(1) from exc
    Console().print(render(result))
    if not (result.reconciliation.get("ok") and result.audit_log.get("ok")):
        raise typer.Exit(1)
