"""Auto-approval for a ``self`` bank, measured (issue 10, docs/consent.md): the seconds from a
supplier's application to the approval mined and mirrored, when the bank's key never leaves
the bank.

A :class:`bench.stack.Stack` of its own (anvil, ``tierflow index``, ``tierflow serve`` with one
worker unless ``--api-workers``, SQLite) is seeded on automine, then mines a block a second
(``evm_setIntervalMining``, as QBFT does). Financiers side by side, each with a credit line on
the same obligor and a matching financing policy:

- ``self, key file``: a ``self`` bank whose key is an encrypted key file, and
- ``self, SoftHSM2`` (when ``softhsm2-util`` is installed): one whose key lives in SoftHSM2;
  each runs ``tierflow signer --policy … --keyfile …`` (or ``--hsm …``) as a process of its
  own, exactly as a bank would beside its key;
- ``hosted``: a bank whose key the platform holds (the reference: the platform signs).

Every bank gets ``n`` applications from ``n`` hosted suppliers, each on a piece of its own:
*paced* (one application to each bank every ``pace_s`` seconds, like real use) and then a
*burst* (all ``n`` to each bank at once). Per application: the seconds from the apply
answer (the application mined and mirrored) to the approval mined and mirrored (the mirror's
status ``approved``), p50/p99/max per bank and pace, and the stages as the bench sees them
(one poll of the platform's database every 50 ms): the intent prepared (its row), signed
(it leaves ``open``), relayed and mined (its transaction recorded: the relay's answer is the
receipt) and mirrored; for the hosted bank the claim (the ``auto_decisions`` row) and the
approval recorded after its own transaction was mined and mirrored.

``python -m bench.perf.auto_approval [--applications 20] [--pace 2] [--signer-interval 1]
[--api-workers 1] [--no-hsm]``; ``tierflow bench`` runs it as a section (not with ``--quick``:
it takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eth_account import Account
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import select

from backend.models import AutoDecision, IntentRow
from bench.perf.figures import load_average, quantile
from bench.stack import Stack
from client import TierflowClient
from client.signing import KeyfileSigner, Pkcs11Signer, generate_pkcs11_key
from client.softhsm import init_softhsm_token
from db.engine import create_engine, sessions
from indexer import models as m
from ledger.anvil import rpc_call

DAY = 86_400
KYC = datetime.now(UTC) + timedelta(days=3650)
RATE_BPS = 600
PIECE = 1_000_000_00  # each supplier's piece per bank
APPLIED = 100_000_00  # one application
PASSWORD = "bench-auto-approval"
HSM_PIN, HSM_SO_PIN, HSM_TOKEN = "1234", "5678", "bench-auto-approval"
#: The stages of a ``self`` bank's approval, as seen from the platform's database.
SELF_STAGES = ("prepared", "signed", "mined", "mirrored")
HOSTED_STAGES = ("claimed", "mined", "mirrored")
POLL_S = 0.05


@dataclass
class Application:
    bank: str
    pace: str
    financing_id: int
    answered: float  # perf_counter at the apply answer
    seen: dict[str, float] = field(default_factory=dict)  # stage → perf_counter first seen

    @property
    def latency(self) -> float:
        done = self.seen.get("mirrored")
        return math.nan if done is None else done - self.answered


@dataclass
class Figure:
    """One bank at one pace: the applications' latencies and their stages."""

    bank: str
    custody: str
    pace: str
    count: int
    approved: int
    p50: float
    p99: float
    max: float
    stages: dict[str, float]  # stage → median seconds from the apply answer
    load_before: float
    load_after: float


@dataclass
class Bank:
    name: str
    custody: str
    address: str
    client: TierflowClient
    api_key: str
    signer_args: list[str] = field(default_factory=list)
    signer_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Options:
    applications: int = 20
    pace_s: float = 2.0
    block_time_s: float = 1.0
    signer_interval_s: float = 1.0
    hsm: bool = True
    api_workers: int = 1


def figure(apps: list[Application], bank: Bank, pace: str, before: float) -> Figure:
    done = [a.latency for a in apps if not math.isnan(a.latency)]
    stages = SELF_STAGES if bank.custody == "self" else HOSTED_STAGES
    medians = {
        s: quantile([a.seen[s] - a.answered for a in apps if s in a.seen], 0.5) for s in stages
    }
    return Figure(
        bank.name,
        bank.custody,
        pace,
        len(apps),
        len(done),
        quantile(done, 0.5),
        quantile(done, 0.99),
        max(done) if done else math.nan,
        medians,
        before,
        load_average(),
    )


class Watch:
    """One poll of the platform's database every :data:`POLL_S` for every application being
    watched: when each stage was first seen (cheaper than a GET per application)."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)
        self.sessions = sessions(self.engine)
        self.apps: dict[int, Application] = {}
        self.task: asyncio.Task[None] | None = None
        self.looked = asyncio.Event()  # set after every poll

    async def _poll(self) -> None:
        while True:
            waiting = [a for a in self.apps.values() if "mirrored" not in a.seen]
            if waiting:
                await self._look(waiting)
            self.looked.set()
            await asyncio.sleep(POLL_S)

    async def _look(self, waiting: list[Application]) -> None:
        ids = [a.financing_id for a in waiting]
        keys = [f"auto-approval-{i}" for i in ids]
        async with self.sessions() as session:
            status = dict(
                (
                    await session.execute(
                        select(m.Financing.id, m.Financing.status).where(m.Financing.id.in_(ids))
                    )
                ).all()
            )
            decisions = {
                d.financing_id: d
                for d in (
                    await session.execute(
                        select(AutoDecision).where(AutoDecision.financing_id.in_(ids))
                    )
                ).scalars()
            }
            intents = {
                i.idempotency_key: i
                for i in (
                    await session.execute(
                        select(IntentRow).where(IntentRow.idempotency_key.in_(keys))
                    )
                ).scalars()
            }
        now = time.perf_counter()
        for a in waiting:
            reached: list[str] = []
            intent = intents.get(f"auto-approval-{a.financing_id}")
            decision = decisions.get(a.financing_id)
            if intent is not None:
                reached.append("prepared")
                if intent.status != "open":
                    reached.append("signed")
                if intent.tx_hash is not None:
                    reached.append("mined")
            elif decision is not None:
                reached.append("claimed")
                if decision.tx_hash is not None:
                    reached.append("mined")
            if status.get(a.financing_id) == "approved":
                reached += ["mined", "mirrored"]
            for stage in reached:
                a.seen.setdefault(stage, now)

    def start(self) -> None:
        self.task = asyncio.create_task(self._poll())

    async def until_done(self, apps: list[Application], within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while any("mirrored" not in a.seen for a in apps) and time.monotonic() < deadline:
            self.looked.clear()
            await self.looked.wait()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.engine.dispose()


def chain_time(stack: Stack) -> int:
    block = rpc_call(stack.rpc_url, "eth_getBlockByNumber", ["latest", False])
    return int(block["timestamp"], 16)


@contextlib.asynccontextmanager
async def platform(
    opts: Options, directory: Path, progress: Progress
) -> AsyncIterator[tuple[Stack, list[Bank], list[tuple[TierflowClient, dict[str, int]]]]]:
    """The stack, its banks (policies set, credit lines signed) and the suppliers with a
    piece per bank; a block a second from then on."""
    env = {"TIERFLOW_API_WORKERS": str(opts.api_workers)}
    async with Stack.start(directory / "stack", extra_env=env) as stack:
        clients: list[TierflowClient] = []

        def client(key: str | None, signer: Any = None) -> TierflowClient:
            made = TierflowClient(stack.base_url, key, signer=signer, timeout=120.0)
            clients.append(made)
            return made

        operator = client(stack.operator_key)
        closing = contextlib.ExitStack()  # the HSM session, once opened
        task = progress.add_task("auto-approval: seeding", total=None)
        try:
            core_made = await operator.members.create("AA Core", ["core_enterprise"], KYC)
            core = client(core_made.api_key)
            tier1_made = await operator.members.create("AA Tier 1", ["supplier"], KYC)
            tier1 = client(tier1_made.api_key)
            await operator.members.set_program_limit(core_made.address, 10**14)
            banks: list[Bank] = []

            async def bank(name: str, signer: Any = None) -> Bank:
                made = await operator.members.create(
                    name, ["financier"], KYC, address=signer.address if signer else None
                )
                return Bank(
                    name,
                    str(made.custody),
                    made.address,
                    client(made.api_key, signer),
                    str(made.api_key),
                )

            keyfile = directory / "bank-key.json"
            KeyfileSigner.write_keyfile(keyfile, Account.create().key, PASSWORD)
            file_signer = KeyfileSigner.from_keyfile(keyfile, PASSWORD)
            made = await bank("self bank, key file", file_signer)
            made.signer_args = ["--keyfile", str(keyfile)]
            made.signer_env = {"TIERFLOW_SIGNER_PASSWORD": PASSWORD}
            banks.append(made)
            if opts.hsm and shutil.which("softhsm2-util"):
                token = init_softhsm_token(directory / "hsm", HSM_TOKEN, HSM_PIN, HSM_SO_PIN)
                hsm_address = generate_pkcs11_key(
                    token.label, token.pin, "bank", module=token.module
                )
                hsm_signer = Pkcs11Signer(token.label, token.pin, "bank", module=token.module)
                closing.callback(hsm_signer.close)
                assert hsm_signer.address == hsm_address
                made = await bank("self bank, SoftHSM2", hsm_signer)
                made.signer_args = ["--hsm", "--hsm-token", token.label, "--hsm-key", "bank"]
                made.signer_env = {**token.env, "TIERFLOW_SIGNER_HSM_PIN": token.pin}
                banks.append(made)
            banks.append(await bank("hosted bank"))
            for b in banks:
                await b.client.credit_lines.set(
                    core_made.address, 10**13, registration_no=f"AA-{b.address[2:8]}"
                )
                await b.client.financing_policy.put(
                    enabled=True,
                    max_amount=10**12,
                    max_tenor_days=365,
                    annual_rate_bps=RATE_BPS,
                    fee_bps=10,
                    allowed_obligors=[core_made.address],
                )
            n = opts.applications
            face = PIECE * n * len(banks) * 2
            invoice = await tier1.invoices.register(
                buyer=core_made.address,
                seller_tax_id="91330100MA2AUTOAP1",
                number=f"AA-{time.time_ns()}",
                amount=face,
                issue_date=datetime.fromtimestamp(chain_time(stack) - DAY, UTC),
                document_sha256="ab" * 32,
            )
            await core.invoices.confirm(invoice.id)
            payable = await core.payables.issue(
                supplier=tier1_made.address,
                face_value=face,
                due_date=chain_time(stack) + 90 * DAY,
                invoice_ids=[invoice.id],
            )
            suppliers: list[tuple[TierflowClient, dict[str, int]]] = []
            for i in range(n):
                made_supplier = await operator.members.create(f"AA Supplier {i}", ["supplier"], KYC)
                pieces = {}
                for b in banks:
                    given = await tier1.claims.transfer(
                        payable.root_claim_id, to=made_supplier.address, amount=PIECE
                    )
                    pieces[b.name] = given.claim_id
                suppliers.append((client(made_supplier.api_key), pieces))
            progress.update(task, total=1, completed=1)
            rpc_call(stack.rpc_url, "evm_setAutomine", [False])
            rpc_call(stack.rpc_url, "evm_setIntervalMining", [int(opts.block_time_s)])
            yield stack, banks, suppliers
        finally:
            closing.close()
            for made_client in clients:
                await made_client.aclose()


def policy_file(directory: Path) -> Path:
    path = directory / "bank-policy.json"
    path.write_text(json.dumps({"functions": ["approveFinancing"], "max_value": 10**12}))
    return path


async def measure(opts: Options, progress: Progress) -> list[Figure]:
    out: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="tierflow-bench-auto-") as tmp:
        directory = Path(tmp)
        async with platform(opts, directory, progress) as (stack, banks, suppliers):
            policy = policy_file(directory)
            for b in banks:
                if b.custody == "self":
                    stack.spawn(
                        f"signer-{len(stack.procs)}",
                        "signer",
                        *["--policy", str(policy), "--base-url", stack.base_url],
                        *["--interval", f"{opts.signer_interval_s:g}", *b.signer_args],
                        extra_env={"TIERFLOW_SIGNER_API_KEY": b.api_key, **b.signer_env},
                    )
            await signers_ready(stack)
            watch = Watch(stack.database_url)
            watch.start()
            try:
                for pace in ("paced", "burst"):
                    out += await one_pace(opts, pace, banks, suppliers, watch, progress)
            finally:
                await watch.close()
                for name, proc in list(stack.procs.items()):
                    if name.startswith("signer-") and proc.popen.poll() is not None:
                        raise RuntimeError(f"{name} exited:\n{proc.tail()}")
    return out


async def signers_ready(stack: Stack, within_s: float = 120.0) -> None:
    """Every signer process has started (its ``signing as`` line): a bank starts its signer
    before the day's applications, so its start-up is not an application's latency."""
    deadline = time.monotonic() + within_s
    for name, proc in stack.procs.items():
        if not name.startswith("signer-"):
            continue
        while "signing as" not in proc.tail():
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{proc.tail()}")
            await asyncio.sleep(0.2)


async def one_pace(
    opts: Options,
    pace: str,
    banks: list[Bank],
    suppliers: list[tuple[TierflowClient, dict[str, int]]],
    watch: Watch,
    progress: Progress,
) -> list[Figure]:
    apps: dict[str, list[Application]] = {b.name: [] for b in banks}
    task = progress.add_task(f"auto-approval: {pace}", total=len(banks) * len(suppliers))
    before = load_average()

    async def apply(supplier: TierflowClient, pieces: dict[str, int], b: Bank) -> None:
        made = await supplier.financing.apply(
            claim_id=pieces[b.name], financier=b.address, amount=APPLIED
        )
        app = Application(b.name, pace, made.id, time.perf_counter())
        watch.apps[made.id] = app
        apps[b.name].append(app)
        progress.advance(task)

    if pace == "paced":
        pending = []
        for supplier, pieces in suppliers:
            pending += [asyncio.create_task(apply(supplier, pieces, b)) for b in banks]
            await asyncio.sleep(opts.pace_s)
        await asyncio.gather(*pending)
    else:
        await asyncio.gather(*(apply(s, p, b) for s, p in suppliers for b in banks))
    every = [a for listed in apps.values() for a in listed]
    await watch.until_done(every, within_s=180.0)
    return [figure(apps[b.name], b, pace, before) for b in banks]


def seconds(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f} s"


def rows(figures: list[Figure]) -> list[str]:
    lines = [
        "| bank | pace | approved | p50 | p99 | max | stages (median from the apply answer) "
        "| load before → after |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for f in figures:
        stages = " → ".join(f"{s} {seconds(v)}" for s, v in f.stages.items())
        lines.append(
            f"| {f.bank} | {f.pace} | {f.approved}/{f.count} | {seconds(f.p50)} "
            f"| {seconds(f.p99)} | {seconds(f.max)} | {stages} "
            f"| {f.load_before:.2f} → {f.load_after:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applications", type=int, default=20)
    parser.add_argument("--pace", type=float, default=2.0, help="seconds between applications")
    parser.add_argument("--signer-interval", type=float, default=1.0)
    parser.add_argument("--no-hsm", action="store_true", help="no SoftHSM2 bank")
    parser.add_argument("--api-workers", type=int, default=1)
    args = parser.parse_args()
    opts = Options(
        applications=args.applications,
        pace_s=args.pace,
        signer_interval_s=args.signer_interval,
        hsm=not args.no_hsm,
        api_workers=args.api_workers,
    )
    console = Console()
    start = load_average()
    with Progress(console=console, transient=True) as progress:
        figures = asyncio.run(measure(opts, progress))
    console.print(
        f"{opts.applications} applications per bank and pace, a block every "
        f"{opts.block_time_s:g} s, {opts.api_workers} API worker(s), "
        f"tierflow signer --interval {opts.signer_interval_s:g}; "
        f"1-min load average {start:.2f} before, {load_average():.2f} after"
    )
    console.print("\n".join(rows(figures)))


if __name__ == "__main__":
    main()
