"""Event sufficiency, checked (SPEC I-10): the events alone rebuild the state the views report.

A seeded random walk drives the deployed suite through every kind of transition from its
deployment: members (suspension, reinstatement, KYC renewal, role grants), invoices
(registered, confirmed, voided, used, released), payables (issued with and without a clearing
agent, cancelled, settled singly and in batches by the obligor or its agent, overdue — three
of one obligor suspend it), pieces (splits citing a trade invoice or none, whole transfers,
the standard ERC-721 and ERC-3525 transfers by approved operators), financing (applied,
approved — whole pieces and parts, re-financing a financed piece — rejected, withdrawn,
expired), freezes, and program and exposure limit changes. Steps that the contracts refuse
are skipped (the walk picks plausible ones, not only valid ones).

Then every log of the suite's contracts from the deployment block to the last block N is
fetched and folded into plain dicts using only the events (and, for times the events do not
carry, their blocks' timestamps), and every object is compared with the view functions called
at block N: each piece (holder, value, lock, payable, parent, depth, status, frozen, financed,
approvals and allowances), payable (status, face, settled value, due date, issue time,
clearing agent, root, invoices, overdue clock and ``overdueFrom`` — freezes across the due
date and a pause included), pieces held per account (ERC-721 ``balanceOf``), invoice
(status, parties, amount, the payable it backs),
financing (every field), obligor account (limit, outstanding, overdue times), exposure per
financier and obligor (outstanding and limit), and member (status, KYC expiry, roles).
With the seeds tried (9010, 7, 11, 3, 5) nothing the views report is missing from the events;
dropping one handler (``ExposureReleased``) or a pause from the freeze clock makes it fail.

``TIERFLOW_REPLAY_SEED`` overrides the seed.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address

from bench.cast import Actor, Platform
from ledger.bindings import (
    ZERO_ADDRESS,
    ZERO_HASH,
    ClaimStatus,
    FinancingStatus,
    InvoiceStatus,
    MemberStatus,
    PayableStatus,
)
from ledger.deployment import DAY
from ledger.errors import ContractRevert
from ledger.roles import Role
from tests.support import model_rules as rules
from tests.support.contracts import GRACE, read_claims, terms_for

SEED = int(os.environ.get("TIERFLOW_REPLAY_SEED", "9010"))
STEPS = 70
SUPPLIERS = ("sup1", "sup2", "sup3", "sup4", "sup5")
HOLDERS = (*SUPPLIERS, "bank", "bank2")
BANKS = ("bank", "bank2")
CORES = ("core", "core2")
UNLIMITED = 2**256 - 1


# -- the plain model, built from events only ---------------------------------------------------


@dataclass
class Piece(rules.Claim):
    """A piece as the events tell it: the rules' claim piece (its flags give its status the
    way ``ClaimLedger._status`` does), with the ERC-721 and ERC-3525 approvals on it."""

    approved: str = ZERO_ADDRESS  # ERC-721 approved address
    allowances: dict[str, int] = field(default_factory=dict)  # ERC-3525 value allowances


@dataclass
class Replay:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, set[bytes]] = field(default_factory=dict)
    invoices: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    payables: dict[int, dict[str, Any]] = field(default_factory=dict)
    pieces: dict[int, Piece] = field(default_factory=dict)
    financings: dict[int, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, int]] = field(default_factory=dict)
    exposures: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    operator_approvals: dict[tuple[str, str], bool] = field(default_factory=dict)
    clocks: dict[int, dict[str, int]] = field(default_factory=dict)  # payable → overdue clock
    pauses: list[list[int | None]] = field(default_factory=list)  # [paused at, unpaused at]
    payment_refs: dict[bytes, tuple[str, int]] = field(default_factory=dict)  # → holder, payable
    counts: Counter[str] = field(default_factory=Counter)

    def account(self, obligor: str) -> dict[str, int]:
        return self.accounts.setdefault(
            obligor, {"limit": 0, "outstanding": 0, "previous": 0, "last": 0}
        )

    def exposure(self, financier: str, obligor: str) -> dict[str, int]:
        return self.exposures.setdefault((financier, obligor), {"outstanding": 0, "limit": 0})

    def clock(self, payable_id: int) -> dict[str, int]:
        return self.clocks.setdefault(payable_id, {"pieces": 0, "since": 0, "seconds": 0})

    def paused_before(self, t: int) -> int:
        """Seconds paused up to ``t`` (MemberRegistry's pause log, from the events)."""
        total = 0
        for start, end in self.pauses:
            assert start is not None
            if start <= t:
                total += (t if end is None or end > t else end) - start
        return total

    def paused_seconds(self, start: int, end: int, now: int) -> int:
        end = min(end, now)
        start = min(start, end)
        return self.paused_before(end) - self.paused_before(start)

    def overdue_from(self, payable_id: int, now: int) -> int:
        """ClaimLedger.overdueFrom at a block with timestamp ``now``."""
        clock, due = self.clock(payable_id), self.payables[payable_id]["due"]
        stopped = clock["seconds"]
        if now > due:
            runs_to = now
            if clock["pieces"]:
                runs_to = max(clock["since"], due)
                stopped += now - runs_to
            stopped += self.paused_seconds(due, runs_to, now)
        return int(due) + GRACE + stopped

    def fold(self, name: str, a: dict[str, Any], timestamp: int) -> None:
        self.counts[name] += 1
        a = {k: to_checksum_address(v) if _is_address(v) else v for k, v in a.items()}
        handler = getattr(self, f"on_{name}", None)
        if handler is not None:
            handler(a, timestamp)

    # members
    def on_MemberRegistered(self, a: dict[str, Any], ts: int) -> None:
        self.members[a["account"]] = {"status": MemberStatus.ACTIVE, "kyc": a["kycExpiresAt"]}

    def on_MemberKycRenewed(self, a: dict[str, Any], ts: int) -> None:
        self.members[a["account"]]["kyc"] = a["kycExpiresAt"]

    def on_MemberSuspended(self, a: dict[str, Any], ts: int) -> None:
        self.members[a["account"]]["status"] = MemberStatus.SUSPENDED

    def on_MemberReinstated(self, a: dict[str, Any], ts: int) -> None:
        self.members[a["account"]]["status"] = MemberStatus.ACTIVE

    def on_RoleGranted(self, a: dict[str, Any], ts: int) -> None:
        self.roles.setdefault(a["account"], set()).add(bytes(a["role"]))

    def on_RoleRevoked(self, a: dict[str, Any], ts: int) -> None:
        self.roles.setdefault(a["account"], set()).discard(bytes(a["role"]))

    # invoices
    def on_InvoiceRegistered(self, a: dict[str, Any], ts: int) -> None:
        self.invoices[bytes(a["invoiceId"])] = {
            "seller": a["seller"],
            "buyer": a["buyer"],
            "amount": a["amount"],
            "issue_date": a["issueDate"],
            "doc": bytes(a["documentHash"]),
            "status": InvoiceStatus.REGISTERED,
            "payable": 0,
        }

    def on_InvoiceConfirmed(self, a: dict[str, Any], ts: int) -> None:
        self.invoices[bytes(a["invoiceId"])]["status"] = InvoiceStatus.CONFIRMED

    def on_InvoiceVoided(self, a: dict[str, Any], ts: int) -> None:
        self.invoices[bytes(a["invoiceId"])]["status"] = InvoiceStatus.VOIDED

    def on_InvoiceUsed(self, a: dict[str, Any], ts: int) -> None:
        inv = self.invoices[bytes(a["invoiceId"])]
        inv["status"] = InvoiceStatus.USED
        if a["payableId"]:
            inv["payable"] = a["payableId"]

    def on_InvoiceReleased(self, a: dict[str, Any], ts: int) -> None:
        inv = self.invoices[bytes(a["invoiceId"])]
        inv["status"], inv["payable"] = InvoiceStatus.CONFIRMED, 0

    # payables and pieces
    def on_PayableIssued(self, a: dict[str, Any], ts: int) -> None:
        self.payables[a["payableId"]] = {
            "obligor": a["obligor"],
            "supplier": a["supplier"],
            "face": a["faceValue"],
            "settled": 0,
            "due": a["dueDate"],
            "issued_at": ts,
            "agent": a["clearingAgent"],
            "root": a["rootClaimId"],
            "invoices": [bytes(i) for i in a["invoiceIds"]],
            "status": PayableStatus.ISSUED,
        }
        root = a["rootClaimId"]
        self.pieces[root] = Piece(root, a["payableId"], 0, 0, a["supplier"], a["faceValue"])
        self.account(a["obligor"])["outstanding"] += a["faceValue"]

    def on_PayableCancelled(self, a: dict[str, Any], ts: int) -> None:
        p = self.payables[a["payableId"]]
        p["status"] = PayableStatus.CANCELLED
        self.pieces[a["rootClaimId"]].cancelled = True
        self.account(p["obligor"])["outstanding"] -= p["face"]

    def on_PayableOverdue(self, a: dict[str, Any], ts: int) -> None:
        self.payables[a["payableId"]]["status"] = PayableStatus.OVERDUE
        account = self.account(a["obligor"])
        # the two latest times payables fell overdue (overdueFrom), in any marking order
        at = a["overdueFrom"]
        if at >= account["last"]:
            account["previous"], account["last"] = account["last"], at
        elif at > account["previous"]:
            account["previous"] = at

    def on_PayableSettled(self, a: dict[str, Any], ts: int) -> None:
        self.payables[a["payableId"]]["status"] = PayableStatus.SETTLED

    def on_ProgramLimitSet(self, a: dict[str, Any], ts: int) -> None:
        self.account(a["obligor"])["limit"] = a["programLimit"]

    def on_ClaimSplit(self, a: dict[str, Any], ts: int) -> None:
        parent = self.pieces[a["parentId"]]
        parent.value -= a["value"]
        self.pieces[a["claimId"]] = Piece(
            a["claimId"], a["payableId"], a["parentId"], a["depth"], a["to"], a["value"]
        )

    def on_ClaimTransferred(self, a: dict[str, Any], ts: int) -> None:
        piece = self.pieces[a["claimId"]]
        piece.holder, piece.financed = a["to"], False
        piece.approved, piece.allowances = ZERO_ADDRESS, {}

    def on_ClaimFrozen(self, a: dict[str, Any], ts: int) -> None:
        piece = self.pieces[a["claimId"]]
        piece.frozen = True
        clock = self.clock(piece.payable_id)
        if clock["pieces"] == 0:
            clock["since"] = ts
        clock["pieces"] += 1

    def on_ClaimUnfrozen(self, a: dict[str, Any], ts: int) -> None:
        piece = self.pieces[a["claimId"]]
        piece.frozen = False
        clock = self.clock(piece.payable_id)
        clock["pieces"] -= 1
        if clock["pieces"] == 0:
            since = max(clock["since"], self.payables[piece.payable_id]["due"])
            span = ts - since if ts > since else 0
            clock["seconds"] += span - self.paused_seconds(since, ts, ts)

    def on_Paused(self, a: dict[str, Any], ts: int) -> None:
        self.pauses.append([ts, None])

    def on_Unpaused(self, a: dict[str, Any], ts: int) -> None:
        self.pauses[-1][1] = ts

    def on_ClaimSettled(self, a: dict[str, Any], ts: int) -> None:
        piece = self.pieces[a["claimId"]]
        piece.settled = True
        self.payment_refs.setdefault(bytes(a["paymentRef"]), (a["holder"], a["payableId"]))
        p = self.payables[a["payableId"]]
        p["settled"] += a["value"]
        self.account(p["obligor"])["outstanding"] -= a["value"]

    def on_Approval(self, a: dict[str, Any], ts: int) -> None:
        self.pieces[a["tokenId"]].approved = a["approved"]

    def on_ApprovalValue(self, a: dict[str, Any], ts: int) -> None:
        self.pieces[a["_tokenId"]].allowances[a["_operator"]] = a["_value"]

    def on_ApprovalForAll(self, a: dict[str, Any], ts: int) -> None:
        self.operator_approvals[(a["owner"], a["operator"])] = a["approved"]

    # financing
    def on_FinancingApplied(self, a: dict[str, Any], ts: int) -> None:
        self.financings[a["financingId"]] = {
            "claim": a["claimId"],
            "applicant": a["applicant"],
            "financier": a["financier"],
            "status": FinancingStatus.APPLIED,
            "amount": a["amount"],
            "expires": a["expiresAt"],
            "min_advance": a["minAdvance"],
            "recourse": a["recourse"],
            "advance": 0,
            "discount": 0,
            "fees": 0,
            "rate": 0,
            "financed_claim": None,
            "registration_no": ZERO_HASH,
            "disbursement_ref": ZERO_HASH,
        }
        self.pieces[a["claimId"]].locked += a["amount"]

    def _end(self, financing_id: int, status: FinancingStatus) -> None:
        f = self.financings[financing_id]
        f["status"] = status
        self.pieces[f["claim"]].locked -= f["amount"]

    def on_FinancingRejected(self, a: dict[str, Any], ts: int) -> None:
        self._end(a["financingId"], FinancingStatus.REJECTED)

    def on_FinancingWithdrawn(self, a: dict[str, Any], ts: int) -> None:
        self._end(a["financingId"], FinancingStatus.WITHDRAWN)

    def on_FinancingExpired(self, a: dict[str, Any], ts: int) -> None:
        self._end(a["financingId"], FinancingStatus.EXPIRED)

    def on_FinancingApproved(self, a: dict[str, Any], ts: int) -> None:
        # The piece moves (ClaimTransferred or ClaimSplit) before this event, in the same call.
        self._end(a["financingId"], FinancingStatus.APPROVED)
        f = self.financings[a["financingId"]]
        f.update(
            advance=a["advance"],
            discount=a["discount"],
            fees=a["fees"],
            rate=a["annualRateBps"],
            recourse=a["recourse"],
            financed_claim=a["financedClaimId"],
            registration_no=bytes(a["registrationNo"]),
            disbursement_ref=bytes(a["disbursementRef"]),
        )
        financed = self.pieces[a["financedClaimId"]]
        financed.financed = True
        obligor = self.payables[financed.payable_id]["obligor"]
        self.exposure(a["financier"], obligor)["outstanding"] += f["amount"]

    def on_ExposureLimitSet(self, a: dict[str, Any], ts: int) -> None:
        self.exposure(a["financier"], a["obligor"])["limit"] = a["exposureLimit"]

    def on_ExposureReleased(self, a: dict[str, Any], ts: int) -> None:
        self.exposure(a["financier"], a["obligor"])["outstanding"] -= a["value"]


def _is_address(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("0x") and len(value) == 42


async def replay(platform: Platform, to_block: int) -> Replay:
    """Every log of the suite's contracts from deployment to ``to_block``, folded in order."""
    by_key: dict[tuple[str, bytes], tuple[Any, str]] = {}
    for contract in platform.suite.contracts.values():
        for entry in contract.abi:
            if entry.get("type") == "event":
                topic = bytes(event_abi_to_log_topic(entry))
                by_key[(contract.address, topic)] = (contract, entry["name"])
    addresses = [c.address for c in platform.suite.contracts.values()]
    logs = await platform.w3.eth.get_logs(
        {
            "fromBlock": platform.deployment.start_block,
            "toBlock": to_block,
            "address": addresses,
        }
    )
    logs = sorted(logs, key=lambda log: (int(log["blockNumber"]), int(log["logIndex"])))
    timestamps: dict[int, int] = {}
    model = Replay()
    for log in logs:
        number = int(log["blockNumber"])
        if number not in timestamps:
            timestamps[number] = int((await platform.w3.eth.get_block(number))["timestamp"])
        contract, name = by_key[(to_checksum_address(log["address"]), bytes(log["topics"][0]))]
        decoded = getattr(contract.events, name)().process_log(log)
        model.fold(name, dict(decoded["args"]), timestamps[number])
    return model


# -- the scenario ------------------------------------------------------------------------------


class Walk:
    def __init__(self, platform: Platform, rng: random.Random) -> None:
        self.p, self.rng = platform, rng
        self.done: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.payables: list[int] = []

    def a(self, name: str) -> Actor:
        return self.p.actors[name]

    async def do(self, kind: str, actor: Actor, fn: Any) -> bool:
        try:
            await actor.transact(fn)
        except ContractRevert:
            self.refused[kind] += 1
            return False
        self.done[kind] += 1
        return True

    async def live_pieces(self) -> list[Any]:
        count = int(await self.p.claim_ledger.functions.claimCount().call())
        claims = await read_claims(self.p, range(1, count + 1))
        return [
            c
            for c in claims
            if c.status not in (ClaimStatus.SETTLED, ClaimStatus.CANCELLED)
            and not c.frozen
            and c.amount - c.locked_amount > 0
        ]

    def name_of(self, address: str) -> str:
        for name, actor in self.p.actors.items():
            if actor.address == address:
                return name
        raise KeyError(address)

    async def invoice(
        self, seller: Actor, buyer: Actor, amount: int, confirm: bool = True
    ) -> bytes:
        """A registered (and confirmed) invoice; an unknown id when the registry refuses it
        (a suspended party), so the step that cites it is refused in turn."""
        try:
            return await self.p.invoice(seller, buyer, amount, confirm=confirm)
        except ContractRevert:
            self.refused["invoice"] += 1
            return self.p.unique("refused-invoice")

    async def issue(self, core: str | None = None) -> None:
        core, sup = core or self.rng.choice(CORES), self.rng.choice(SUPPLIERS)
        face = self.rng.randint(10, 200) * 10_000
        invoice = await self.invoice(self.a(sup), self.a(core), face)
        due = await self.p.now() + self.rng.randint(40, 120) * DAY
        agent = self.a("agent").address if self.rng.random() < 0.5 else ZERO_ADDRESS
        fn = self.p.claim_ledger.functions.issuePayable(
            self.a(sup).address, face, due, [invoice], agent
        )
        if await self.do("issue", self.a(core), fn):
            self.payables.append(int(await self.p.claim_ledger.functions.payableCount().call()))

    async def step(self) -> None:
        r, rng = self.rng.random(), self.rng
        pieces = await self.live_pieces()
        if r < 0.08 or not pieces:
            await self.issue()
            return
        c = rng.choice(pieces)
        holder = self.name_of(c.holder)
        free = c.amount - c.locked_amount
        others = [h for h in HOLDERS if h != holder]
        to = rng.choice(others)
        ledger, desk = self.p.claim_ledger.functions, self.p.desk.functions
        members = self.p.members.functions
        if r < 0.25 and c.amount > 1:  # a piece of value 1 cannot split
            value = rng.randint(1, max(1, min(free, c.amount - 1)))
            invoice = ZERO_HASH
            if rng.random() < 0.3 and to in SUPPLIERS and holder in (*SUPPLIERS, *CORES):
                invoice = await self.invoice(self.a(to), self.a(holder), value)
            await self.do(
                "split", self.a(holder), ledger.split(c.id, self.a(to).address, value, invoice)
            )
        elif r < 0.33:
            await self.do(
                "transfer",
                self.a(holder),
                ledger.transferClaim(c.id, self.a(to).address, ZERO_HASH),
            )
        elif r < 0.39:
            op = rng.choice([h for h in HOLDERS if h not in (holder, to)])
            if await self.do(
                "erc721-approve", self.a(holder), ledger.approve(self.a(op).address, c.id)
            ):
                await self.do(
                    "erc721-transferFrom",
                    self.a(op),
                    ledger.transferFrom(c.holder, self.a(to).address, c.id),
                )
        elif r < 0.46:
            op = rng.choice([h for h in HOLDERS if h not in (holder, to)])
            value = rng.randint(1, c.amount)
            allow = rng.choice([value, c.amount, UNLIMITED])
            if (
                await self.do(
                    "erc3525-approve",
                    self.a(holder),
                    ledger.approve(c.id, self.a(op).address, allow),
                )
                and rng.random() < 0.8
            ):
                await self.do(
                    "erc3525-transferFrom",
                    self.a(op),
                    ledger.transferFrom(c.id, self.a(to).address, value),
                )
        elif r < 0.49:
            op = rng.choice([h for h in HOLDERS if h != holder])
            await self.do(
                "approval-for-all",
                self.a(holder),
                ledger.setApprovalForAll(self.a(op).address, rng.random() < 0.7),
            )
        elif r < 0.66:
            bank = rng.choice([b for b in BANKS if b != holder])
            amount = rng.randint(1, free) if rng.random() < 0.6 else free
            expires = await self.p.now() + rng.randint(1, 10) * DAY
            fn = desk.applyForFinancing(c.id, self.a(bank).address, amount, expires, 0, False)
            if not await self.do("apply", self.a(holder), fn):
                return
            fid = int(await desk.financingCount().call())
            end = rng.random()
            if end < 0.55:
                try:
                    terms = await terms_for(self.p, fid)
                except ContractRevert:
                    return
                await self.do("approve", self.a(bank), desk.approveFinancing(fid, terms.tuple()))
            elif end < 0.7:
                await self.do(
                    "reject", self.a(bank), desk.rejectFinancing(fid, self.p.unique("why"))
                )
            elif end < 0.85:
                await self.do("withdraw", self.a(holder), desk.withdrawFinancing(fid))
            # else: left pending, to expire
        elif r < 0.72:
            admin = self.a("operator")
            frozen = await self.do(
                "freeze", admin, ledger.freezeClaim(c.id, self.p.unique("court"))
            )
            if frozen and rng.random() < 0.7:
                await self.do("unfreeze", admin, ledger.unfreezeClaim(c.id))
        elif r < 0.76:
            pid = c.payable_id
            payable = await self.p.suite.payable(pid)
            root = await self.p.suite.claim(payable.root_claim_id)
            await self.do(
                "cancel",
                self.a(self.name_of(root.holder)),
                ledger.cancelPayable(pid),
            )
        elif r < 0.80:
            seller = rng.choice(SUPPLIERS)
            inv = await self.invoice(
                self.a(seller), self.a(rng.choice(CORES)), 1000, confirm=rng.random() < 0.5
            )
            who = self.a(seller) if rng.random() < 0.5 else self.a("operator")
            await self.do("void-invoice", who, self.p.invoices.functions.voidInvoice(inv))
        elif r < 0.84:
            core = rng.choice(CORES)
            limit = rng.choice([10**15, 10**7, 5 * 10**6])
            await self.do(
                "program-limit",
                self.a("operator"),
                ledger.setProgramLimit(self.a(core).address, limit),
            )
        elif r < 0.88:
            bank, core = rng.choice(BANKS), rng.choice(CORES)
            limit = rng.choice([10**14, 10**6])
            await self.do(
                "exposure-limit", self.a(bank), desk.setExposureLimit(self.a(core).address, limit)
            )
        elif r < 0.94:
            who = self.a(rng.choice((*SUPPLIERS, "bank2", "core2")))
            admin = self.a("operator")
            why = self.p.unique("kyc")
            suspended = await self.do("suspend", admin, members.suspendMember(who.address, why))
            if suspended and rng.random() < 0.7:
                await self.do("reinstate", admin, members.reinstateMember(who.address))
        else:
            who = self.a(rng.choice(HOLDERS))
            kyc = await self.p.now() + rng.randint(400, 3000) * DAY
            await self.do("renew-kyc", self.a("operator"), members.renewKyc(who.address, kyc))

    async def finish(self) -> None:
        """Lapse pending applications, pass every due date, settle most pieces, mark the rest
        overdue (one obligor thrice: suspended automatically)."""
        ledger, desk = self.p.claim_ledger.functions, self.p.desk.functions
        op = self.a("operator")
        for core in CORES:  # back under limits, so more is issued at the end
            await self.do("program-limit", op, ledger.setProgramLimit(self.a(core).address, 10**15))
        for name in (*SUPPLIERS, "core", "core2"):
            member = await self.p.suite.member(self.a(name).address)
            if member.status is MemberStatus.SUSPENDED:
                await self.do(
                    "reinstate", op, self.p.members.functions.reinstateMember(self.a(name).address)
                )
        for _ in range(3):  # three payables of core2 to go overdue
            before = len(self.payables)
            while len(self.payables) == before:
                await self.issue("core2")
        # A payable cancelled by its supplier, and exposure limits changed, whatever the seed.
        await self.issue("core")
        pid = self.payables[-1]
        payable = await self.p.suite.payable(pid)
        supplier = self.a(self.name_of(payable.supplier))
        if await self.do("cancel", supplier, ledger.cancelPayable(pid)):
            self.payables.pop()
        for lender, limit in (("bank", 10**13), ("bank2", 10**6)):
            fn = desk.setExposureLimit(self.a("core").address, limit)
            await self.do("exposure-limit", self.a(lender), fn)
        # Each way an application ends, and a freeze, at least once whatever the seed.
        for piece in await self.live_pieces():
            holder = self.name_of(piece.holder)
            if holder not in SUPPLIERS or piece.status is not ClaimStatus.ACTIVE:
                continue
            bank = self.a("bank")
            for end in ("withdraw", "reject"):
                expires = await self.p.now() + DAY
                fn = desk.applyForFinancing(piece.id, bank.address, 1, expires, 0, False)
                if not await self.do("apply", self.a(holder), fn):
                    break
                fid = int(await desk.financingCount().call())
                if end == "withdraw":
                    await self.do(end, self.a(holder), desk.withdrawFinancing(fid))
                else:
                    await self.do(end, bank, desk.rejectFinancing(fid, self.p.unique("no")))
            await self.do("freeze", op, ledger.freezeClaim(piece.id, self.p.unique("court")))
            await self.do("unfreeze", op, ledger.unfreezeClaim(piece.id))
            break
        # Two pieces of other payables frozen across their due dates: one thaws after the
        # pause, one stays frozen (a clock that is still stopped at the end).
        frozen: list[int] = []
        spared = set(self.payables[-3:])
        for piece in await self.live_pieces():
            if len(frozen) == 2:
                break
            if piece.payable_id in spared or piece.status is not ClaimStatus.ACTIVE:
                continue
            if await self.do("freeze", op, ledger.freezeClaim(piece.id, self.p.unique("court"))):
                frozen.append(piece.id)
                spared.add(piece.payable_id)
        for confirm, who in ((False, "sup3"), (True, "operator")):
            inv = await self.invoice(self.a("sup3"), self.a("core"), 1000, confirm=confirm)
            await self.do("void-invoice", self.a(who), self.p.invoices.functions.voidInvoice(inv))
        grant = self.p.members.functions.grantRole(Role.FINANCIER.role_id, self.a("sup5").address)
        await self.do("grant-role", op, grant)
        count = int(await desk.financingCount().call())
        last_due = 0
        for pid in self.payables:
            last_due = max(last_due, (await self.p.suite.payable(pid)).due_date)
        await self.p.warp_to(last_due + 1)
        # A pause after the due dates, while some pieces are still frozen: neither runs the
        # overdue clock (the payable clocks and overdueFrom are compared too).
        members = self.p.members.functions
        await self.do("pause", op, members.pause())
        await self.p.set_next_timestamp(await self.p.now() + 2 * DAY)
        await self.do("unpause", op, members.unpause())
        for fid in range(1, count + 1):
            if (await self.p.suite.financing(fid)).status is FinancingStatus.APPLIED:
                await self.do("expire", self.a("auditor"), desk.expireFinancing(fid))
        count = int(await ledger.claimCount().call())
        claims = await read_claims(self.p, range(1, count + 1))
        for c in claims:
            if c.frozen and c.id != frozen[-1] and (c.id in frozen or self.rng.random() < 0.5):
                await self.do("unfreeze", op, ledger.unfreezeClaim(c.id))
        claims = await read_claims(self.p, range(1, count + 1))
        by_payable: dict[int, list[Any]] = {}
        for c in claims:
            if c.status in (ClaimStatus.ACTIVE, ClaimStatus.FINANCED):
                by_payable.setdefault(c.payable_id, []).append(c)
        overdue_candidates = [pid for pid in self.payables[-3:]]
        for pid, pieces in by_payable.items():
            if pid in overdue_candidates:
                continue
            payable = await self.p.suite.payable(pid)
            obligor = self.a(self.name_of(payable.obligor))
            settler = obligor
            if payable.clearing_agent and self.rng.random() < 0.5:
                settler = self.a("agent")
            mine = [c for c in pieces if c.holder != settler.address]
            if self.rng.random() < 0.5 and len(mine) > 1:
                # one bank payment per holder: its reference covers all the holder's pieces
                pay = {c.holder: self.p.unique("pay") for c in mine}
                refs = [pay[c.holder] for c in mine]
                await self.do(
                    "settle-batch", settler, ledger.settleClaims([c.id for c in mine], refs)
                )
            else:
                for c in mine:
                    await self.do("settle", obligor, ledger.settleClaim(c.id, self.p.unique("pay")))
        await self.p.warp_to(await self.p.now() + GRACE + DAY)
        for pid in self.payables:
            await self.do("overdue", self.a("auditor"), ledger.markOverdue(pid))
        await self.do(
            "revoke-role",
            op,
            self.p.members.functions.revokeRole(Role.FINANCIER.role_id, self.a("sup5").address),
        )


# -- the comparison ----------------------------------------------------------------------------


async def compare(platform: Platform, model: Replay, block: int) -> list[str]:
    """Every difference between the replayed model and the views at ``block``."""
    suite, b = platform.suite, block
    diffs: list[str] = []

    def same(what: str, got: Any, want: Any) -> None:
        if got != want:
            diffs.append(f"{what}: view {got!r}, events {want!r}")

    ledger = platform.claim_ledger.functions
    now = int((await platform.w3.eth.get_block(b))["timestamp"])
    paused = await platform.members.functions.paused().call(block_identifier=b)
    same("paused", paused, bool(model.pauses) and model.pauses[-1][1] is None)
    same("claimCount", int(await ledger.claimCount().call(block_identifier=b)), len(model.pieces))
    same(
        "payableCount",
        int(await ledger.payableCount().call(block_identifier=b)),
        len(model.payables),
    )
    financing_count = int(await platform.desk.functions.financingCount().call(block_identifier=b))
    same("financingCount", financing_count, len(model.financings))

    for cid, piece in model.pieces.items():
        c = await suite.claim(cid, b)
        w = f"piece {cid}"
        same(f"{w} payable", c.payable_id, piece.payable_id)
        same(f"{w} parent", c.parent_id, piece.parent_id or None)
        same(f"{w} depth", c.depth, piece.depth)
        same(f"{w} holder", c.holder, piece.holder)
        same(f"{w} value", c.amount, piece.value)
        same(f"{w} locked", c.locked_amount, piece.locked)
        same(f"{w} status", c.status, ClaimStatus(int(piece.status)))
        same(f"{w} frozen", c.frozen, piece.frozen)
        same(f"{w} financed", c.financed, piece.financed)
        same(f"{w} due", c.due_date, model.payables[piece.payable_id]["due"])
        if piece.cancelled:
            continue
        approved = await ledger.getApproved(cid).call(block_identifier=b)
        same(f"{w} approved", to_checksum_address(approved), piece.approved)
        for operator, allowed in piece.allowances.items():
            got = await ledger.allowance(cid, operator).call(block_identifier=b)
            same(f"{w} allowance of {operator}", got, allowed)

    for holder in HOLDERS:
        address = platform.actors[holder].address
        got = await ledger.balanceOf(address).call(block_identifier=b)
        count = sum(1 for x in model.pieces.values() if x.holder == address and not x.cancelled)
        same(f"pieces held by {holder}", got, count)

    for (owner, operator), approved in model.operator_approvals.items():
        got = await ledger.isApprovedForAll(owner, operator).call(block_identifier=b)
        same(f"approval for all {owner}→{operator}", got, approved)

    for pid, p in model.payables.items():
        pv = await suite.payable(pid, b)
        w = f"payable {pid}"
        same(f"{w} status", pv.status, p["status"])
        same(f"{w} obligor", pv.obligor, p["obligor"])
        same(f"{w} supplier", pv.supplier, p["supplier"])
        same(f"{w} face", pv.face_value, p["face"])
        same(f"{w} settled", pv.settled_value, p["settled"])
        same(f"{w} due", pv.due_date, p["due"])
        same(f"{w} issued at", pv.issued_at, p["issued_at"])
        same(f"{w} agent", pv.clearing_agent or ZERO_ADDRESS, p["agent"])
        same(f"{w} root", pv.root_claim_id, p["root"])
        same(f"{w} invoices", await suite.payable_invoices(pid, b), p["invoices"])
        clock = await ledger.payableClock(pid).call(block_identifier=b)
        want_clock = model.clock(pid)
        same(f"{w} frozen pieces", clock[0], want_clock["pieces"])
        same(f"{w} frozen since", clock[1], want_clock["since"])
        same(f"{w} frozen seconds", clock[2], want_clock["seconds"])
        overdue_from = await ledger.overdueFrom(pid).call(block_identifier=b)
        same(f"{w} overdue from", overdue_from, model.overdue_from(pid, now))
        live = sum(x.value for x in model.pieces.values() if x.payable_id == pid and not x.settled)
        if p["status"] is not PayableStatus.CANCELLED:
            same(f"{w} conservation", live + p["settled"], p["face"])

    for iid, inv in model.invoices.items():
        row = await platform.invoices.functions.invoice(iid).call(block_identifier=b)
        seller, issue_date, status, buyer, payable_id, amount, doc = row
        w = f"invoice {iid.hex()[:8]}"
        same(f"{w} status", InvoiceStatus(status), inv["status"])
        same(f"{w} seller", to_checksum_address(seller), inv["seller"])
        same(f"{w} buyer", to_checksum_address(buyer), inv["buyer"])
        same(f"{w} amount", amount, inv["amount"])
        same(f"{w} issue date", issue_date, inv["issue_date"])
        same(f"{w} document", bytes(doc), inv["doc"])
        same(f"{w} locking payable", payable_id, inv["payable"])

    for fid, f in model.financings.items():
        fv = await suite.financing(fid, b)
        w = f"financing {fid}"
        same(f"{w} status", fv.status, f["status"])
        same(f"{w} claim", fv.claim_id, f["claim"])
        same(f"{w} applicant", fv.applicant, f["applicant"])
        same(f"{w} financier", fv.financier, f["financier"])
        same(f"{w} amount", fv.amount, f["amount"])
        same(f"{w} expires", fv.expires_at, f["expires"])
        same(f"{w} min advance", fv.min_advance, f["min_advance"])
        same(f"{w} recourse", fv.recourse, f["recourse"])
        same(f"{w} advance", fv.advance, f["advance"])
        same(f"{w} discount", fv.discount, f["discount"])
        same(f"{w} fees", fv.fees, f["fees"])
        same(f"{w} rate", fv.annual_rate_bps, f["rate"])
        same(f"{w} financed piece", fv.financed_claim_id, f["financed_claim"])
        same(f"{w} registration", bytes(fv.registration_no), f["registration_no"])
        same(f"{w} disbursement", bytes(fv.disbursement_ref), f["disbursement_ref"])

    for ref, (holder, payable_id) in model.payment_refs.items():
        paid = await suite.settlement_reference(ref, b)
        same(f"payment reference {ref.hex()}", (paid.holder, paid.payable_id), (holder, payable_id))

    cores = {platform.actors[c].address for c in CORES} | set(model.accounts)
    for obligor in cores:
        acct = await suite.obligor_account(obligor, b)
        want = model.account(obligor)
        w = f"obligor {obligor}"
        same(f"{w} limit", acct.program_limit, want["limit"])
        same(f"{w} outstanding", acct.outstanding, want["outstanding"])
        same(f"{w} previous overdue", acct.previous_overdue_at, want["previous"])
        same(f"{w} last overdue", acct.last_overdue_at, want["last"])

    for bank in BANKS:
        for obligor in cores:
            fin = platform.actors[bank].address
            outstanding, limit = await suite.exposure(fin, obligor, b)
            want = model.exposure(fin, obligor)
            w = f"exposure {bank}/{obligor}"
            same(f"{w} outstanding", outstanding, want["outstanding"])
            same(f"{w} limit", limit, want["limit"])
            financed = sum(
                x.value
                for x in model.pieces.values()
                if x.financed
                and not x.settled
                and x.holder == fin
                and model.payables[x.payable_id]["obligor"] == obligor
            )
            # (both sides from the events: the exposure is the financed pieces it holds)
            same(f"{w} replayed vs financed pieces held", want["outstanding"], financed)

    accounts = set(model.members) | set(model.roles) | {a.address for a in platform.actors.values()}
    for address in accounts:
        m = await suite.member(address, b)
        want_member = model.members.get(address, {"status": MemberStatus.NONE, "kyc": 0})
        w = f"member {address}"
        same(f"{w} status", m.status, want_member["status"])
        same(f"{w} kyc", m.kyc_expires_at, want_member["kyc"])
        held = model.roles.get(address, set())
        same(f"{w} roles", set(m.roles), {r for r in Role if r.role_id in held})
    return diffs


async def test_replaying_every_event_rebuilds_the_views(platform: Platform) -> None:
    rng = random.Random(SEED)
    walk = Walk(platform, rng)
    for _ in range(4):
        await walk.issue()
    for _ in range(STEPS):
        await walk.step()
    await walk.finish()
    block = int(await platform.w3.eth.block_number)

    model = await replay(platform, block)
    diffs = await compare(platform, model, block)
    assert not diffs, f"{len(diffs)} differences, e.g.:\n" + "\n".join(diffs[:20])

    # The walk was varied: each kind of transition happened, and so did each event.
    wanted = {
        "issue", "split", "transfer", "erc721-transferFrom", "erc3525-transferFrom", "apply",
        "approve", "reject", "withdraw", "expire", "freeze", "unfreeze", "cancel",
        "void-invoice", "program-limit", "exposure-limit", "suspend", "reinstate",
        "settle", "settle-batch", "overdue", "renew-kyc", "grant-role", "revoke-role",
        "pause", "unpause",
    }  # fmt: skip
    missing = sorted(k for k in wanted if walk.done[k] == 0)
    assert not missing, f"the walk never did {missing}: done {dict(walk.done)}"
    events = {
        "PayableIssued", "PayableCancelled", "PayableOverdue", "PayableSettled", "ClaimSplit",
        "ClaimTransferred", "ClaimFrozen", "ClaimUnfrozen", "ClaimSettled", "FinancingApplied",
        "FinancingApproved", "FinancingRejected", "FinancingWithdrawn", "FinancingExpired",
        "ExposureReleased", "InvoiceUsed", "InvoiceReleased", "InvoiceVoided",
        "MemberSuspended", "MemberReinstated", "Approval", "ApprovalValue",
    }  # fmt: skip
    assert not sorted(e for e in events if model.counts[e] == 0), dict(model.counts)
    automatic = [m for m, v in model.members.items() if v["status"] is MemberStatus.SUSPENDED]
    clocks = model.clocks.values()
    assert any(c["seconds"] > 0 for c in clocks), "no freeze ran past a due date"
    assert any(c["pieces"] > 0 for c in clocks), "no piece is frozen at the end"
    assert platform.actors["core2"].address in automatic, "three overdue payables suspend core2"
