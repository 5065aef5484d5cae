r"""The story ``tierflow demo`` tells through the HTTP API, step by step: onboarding, invoices,
a payable passed down three tiers, automatic and manual financing, maturity and settlement.
The demo's members are :class:`Actor`\s speaking HTTP through the client (``client/``) with
their own API keys. Two of them are ``self`` custody (docs/consent.md): a tier-2 supplier and
the bank hold their own chain keys (made here, in the demo's process, and never sent to the
platform); their writes come back as intents that the client verifies, decodes and signs, and
the bank's auto-approval is signed by the bank's own signer loop, as ``tierflow signer`` does."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account import Account

from client import TierflowClient
from client.commands import honouring_commitments, sign_open_intents
from client.intents import DecodedAction
from client.signing import KeyfileSigner
from tierflow.demo_actor import Actor, DemoError

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


#: The members that hold their own chain keys (custody ``self``); the others are ``hosted``.
SELF_CUSTODY: frozenset[str] = frozenset({"tier2a", "bank"})

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


def yuan(fen: int) -> str:
    """An amount in fen as ``¥1,234.56``."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), YUAN)
    return f"{sign}¥{whole:,}.{cents:02d}"


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
    #: Tier 1's webhook: events received (verified), their types, the deliveries' states.
    webhook: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


AUTO_FINANCING = ("tier3a", 60_000 * YUAN)  # under AUTO_MAX: the policy approves it


MANUAL_FINANCING = ("tier1", 200_000 * YUAN)  # above it: a person decides


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Story:
    """The state the steps share."""

    def __init__(self, base_url: str, operator_key: str, run: str) -> None:
        self.base_url = base_url
        self.run = run  # makes invoice numbers unique when the demo runs again on one chain
        self._clients: list[TierflowClient] = []
        self.clock_offset = 0.0  # the chain's clock minus the wall clock (see onboard)
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

    def client(self, key: str, signer: KeyfileSigner | None = None) -> TierflowClient:
        """A client with ``key`` (and, for a ``self`` member, its signer). It reads the chain's
        clock (a chain that ran the demo before is ahead of the wall clock, and intents expire
        in chain time)."""
        made = TierflowClient(
            self.base_url, key, signer=signer, clock=lambda: time.time() + self.clock_offset
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
        """The chain's clock, as the API gives it (a chain that ran the demo before is ahead
        of the wall clock)."""
        return int((await self.operator.get("/v1/deployment"))["chain_time"])

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


async def onboard(story: Story) -> str:
    kyc = (datetime.now(UTC) + timedelta(days=730)).isoformat()
    deployment = await story.operator.get("/v1/deployment")
    story.chain_id = int(deployment["chain_id"])
    story.clock_offset = float(deployment["chain_time"]) - time.time()

    async def one(role: str, name: str, roles: tuple[str, ...]) -> None:
        body: dict[str, Any] = {"name": name, "roles": list(roles), "kyc_expires_at": kyc}
        signer = None
        if role in SELF_CUSTODY:
            # The member's own key: made here, only its address goes to the platform.
            signer = KeyfileSigner(Account.create().key)
            body["address"] = signer.address
        made = await story.operator.post("/v1/members", body)
        actor = Actor(name, roles, made["api_key"], story.client(made["api_key"], signer))
        actor.address = made["address"]
        actor.custody = made.get("custody", "hosted")
        story.actors[role] = actor

    # Concurrently: the operator's transactions still leave in nonce order (the API's sender
    # serialises them), but their receipts and the mirror's catching up are awaited together.
    await asyncio.gather(*(one(role, name, roles) for role, name, roles in CAST))
    story.actors = {role: story.actors[role] for role, _, _ in CAST}  # the cast's order
    await story.operator.put(
        f"/v1/members/{story['core'].address}/program-limit", {"program_limit": PROGRAM_LIMIT}
    )
    own = ", ".join(story[role].name for role in sorted(SELF_CUSTODY))
    return (
        f"{len(CAST)} members onboarded ({own} hold their own keys); "
        f"{story['core'].name}'s program limit {yuan(PROGRAM_LIMIT)}"
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
    bank = story["bank"]

    def bank_policy(action: DecodedAction) -> bool:
        # The bank's own rule, re-checked by its signer before its key signs: only the
        # approval of this request, as its auto-approval prepared it.
        return action.function == "approveFinancing" and action.args.get("financingId") == int(
            made["id"]
        )

    # The policy decides after the application is mined; for a self bank the platform
    # prepares the approval as an intent, which the bank's own signer signs (what
    # `tierflow signer` does beside its key). The applicant watches its request.
    while record["status"] == "applied" and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if bank.custody == "self":
            # ... and never below the applicant's committed min_advance or recourse
            await sign_open_intents(
                bank.client, policy=honouring_commitments(bank.client, bank_policy)
            )
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
    deployment = await story.operator.get("/v1/deployment")
    if not deployment["local_chain"]:
        raise DemoError(
            f"chain {story.chain_id} is not the local development chain: the demo moves the "
            "clock only there"
        )
    due = int(
        datetime.fromisoformat(str(story.payable["due_date"]).replace("Z", "+00:00")).timestamp()
    )
    moved = await story.operator.post("/v1/dev/advance-time", {"until": due + 60})
    head = int(moved["block_number"] or 0)
    # The mirror must have the new block before the API decides anything "after the due
    # date"; /health says how far behind it is.
    deadline = time.monotonic() + 30
    while True:
        health = await story.operator.get("/health")
        if (health.get("mirrored_block") or 0) >= head:
            break
        if time.monotonic() > deadline:
            raise DemoError("the mirror did not reach the chain's head within 30 s")
        await asyncio.sleep(0.1)
    # The self members' clients check an intent's deadline against the chain's clock.
    story.clock_offset = float(await story.chain_time()) - time.time()
    return f"{TERM_DAYS} days later: the payable is due"


async def settle(story: Story) -> str:
    payable_id = story.payable["id"]
    tree = await story["clearing"].get(f"/v1/payables/{payable_id}/tree")
    pieces = [p for p in flatten(tree) if p["status"] != "settled"]
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


def children_of(node: dict[str, Any]) -> list[dict[str, Any]]:
    kids: list[dict[str, Any]] = node.get("children") or []
    return kids


def root_of(tree: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = tree.get("root") or tree
    return root


def flatten(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """Every piece of a tree response, parents before children."""
    out: list[dict[str, Any]] = []
    stack = [root_of(tree)]
    while stack:
        node = stack.pop(0)
        out.append(node)
        stack.extend(children_of(node))
    return out
