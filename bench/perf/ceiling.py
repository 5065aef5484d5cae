"""The chain's ceiling for an operation: the same calls the platform makes, signed before the
clock starts and sent as JSON-RPC batches of at most :data:`IN_FLIGHT`, one batch at a time.

Bounded on purpose: anvil 1.7.1 stops mining and grows without bound when a few thousand
transactions from one sender are queued at once. The clock stops when every receipt is in;
each must have status 1 (a ceiling of reverted calls would flatter the chain).

Every write operation has one (:data:`OPERATIONS`): :func:`operation_ceiling` prepares what
its calls consume (:func:`prepare_calls`: pieces to pass on whole, open applications to
approve, due pieces to settle; not timed) and measures the pre-signed calls. The transaction
layer's figures send calls prepared the same way (:func:`bench.perf.writes.call_writes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from rich.progress import Progress

from bench.indexer_load import (
    BLOCK_GAS,
    FACE,
    RATE_BPS,
    Driver,
    Key,
    Log,
    RpcFailed,
    Tx,
    codec,
    discount_for,
)
from bench.perf.bracket import Step
from bench.perf.chain import NUDGE_AFTER_S, BenchChain
from bench.perf.figures import Rate, load_average
from ledger import calls
from ledger.calls import ContractCall
from ledger.deployment import DAY

IN_FLIGHT = 64
RESEND_AFTER_S = 5.0

#: ``plan(i)``: the i-th call of a run (holder, call) — the same plan drives every path.
Plan = Callable[[int], Tx]


def split_plan(driver: Driver, roots: dict[str, int], holders: Sequence[Key]) -> Plan:
    """Splits of one unit from each holder's root to the next supplier, holders in turn."""
    suppliers = driver.cast.suppliers

    def plan(i: int) -> Tx:
        holder = holders[i % len(holders)]
        to = suppliers[(suppliers.index(holder) + 1) % len(suppliers)]
        return driver.split_tx(holder, roots[holder.address], to.address, 1)

    return plan


async def receipts(driver: Driver, hashes: Sequence[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for i in range(0, len(hashes), 256):
        chunk = hashes[i : i + 256]
        out += await driver.rpc.batch([("eth_getTransactionReceipt", [h]) for h in chunk])
    return out


async def mined(
    driver: Driver, hashes: Sequence[str], senders: Sequence[str], raws: Sequence[str]
) -> None:
    """Wait until each sender's last transaction of a batch has a receipt: nonces are mined in
    order, so the whole batch is in and what is in flight stays bounded by one batch. (anvil
    answers ``eth_sendRawTransaction`` before it mines: sending batch after batch without this
    queues thousands, and anvil 1.7.1 then stops mining.) Seen once on a loaded machine: a
    transaction of a batch never mined with the pool empty; after :data:`RESEND_AFTER_S`
    without a receipt the batch is sent again (the same bytes: known ones are refused)."""
    last = list({s: h for s, h in zip(senders, hashes, strict=True)}.values())
    deadline = time.perf_counter() + RESEND_AFTER_S
    nudge = time.perf_counter() + NUDGE_AFTER_S
    for _ in range(3):
        while time.perf_counter() < deadline:
            got = await driver.rpc.batch([("eth_getTransactionReceipt", [h]) for h in last])
            if all(r is not None for r in got):
                return
            if time.perf_counter() > nudge:
                # anvil (1.7.1, automine on) sometimes leaves a batch pending after its clock
                # was moved: mine it by hand rather than wait for the resend
                status = await driver.rpc.call("txpool_status")
                if int(status["pending"], 16):
                    await driver.rpc.call("evm_mine")
                nudge = time.perf_counter() + NUDGE_AFTER_S
            await asyncio.sleep(0.002)
        for raw in raws:
            with contextlib.suppress(RpcFailed):
                await driver.rpc.call("eth_sendRawTransaction", [raw])
        deadline = time.perf_counter() + RESEND_AFTER_S
    raise RuntimeError(f"a ceiling batch was not mined, though sent three times: {last}")


async def measure_ceiling(
    driver: Driver,
    plan: Plan,
    count: int,
    *,
    name: str,
    operation: str,
    holders: int,
    progress: Progress,
) -> Rate:
    """Send ``count`` calls of ``plan`` pre-signed, in batches of ≤ 64 whose gas limits stay
    within half a block (each batch mined before the next leaves), then check every receipt."""
    await driver.refresh_gas_price()
    # room for the base fee to climb meanwhile (blocks of settlement batches fill past the
    # target): a transaction priced below it waits in the pool for ever
    driver.gas_price *= 10
    await driver.sync_nonces()
    txs = [plan(i) for i in range(count)]
    # anvil drops a sender's later transactions when one no longer fits the block being built:
    # a batch's gas limits stay within half a block (64 splits; 12 settlement batches of 50)
    in_flight = min(IN_FLIGHT, max(1, BLOCK_GAS // max(t.gas for t in txs)))
    raws, hashes = driver.sign(txs)
    senders = [t.key.address for t in txs]
    task = progress.add_task(name, total=count)
    rate = Rate(name, operation, "ceiling", clients=1, holders=holders, count=count)
    rate.load_before = load_average()
    t0 = time.perf_counter()
    for i in range(0, count, in_flight):
        sent = time.perf_counter()
        chunk = raws[i : i + in_flight]
        await driver.rpc.batch([("eth_sendRawTransaction", [r]) for r in chunk])
        await mined(
            driver, hashes[i : i + in_flight], senders[i : i + in_flight], raws[i : i + in_flight]
        )
        took = time.perf_counter() - sent
        rate.latencies += [took] * len(chunk)
        progress.advance(task, len(chunk))
    got = await receipts(driver, hashes)
    while any(r is None for r in got):  # interval mining: wait for the last blocks
        await asyncio.sleep(0.02)
        got = await receipts(driver, hashes)
    rate.seconds = time.perf_counter() - t0
    rate.load_after = load_average()
    failed = [h for h, r in zip(hashes, got, strict=True) if int(r["status"], 16) != 1]
    if failed:
        raise RuntimeError(f"{len(failed)} of {count} ceiling calls reverted, first {failed[0]}")
    return rate


# -- every write operation: the calls it consumes, prepared before the clock ----------------------

#: The write operations the bench measures, by the name its figures carry.
OPERATIONS: tuple[str, ...] = (
    "split",
    "transfer",
    "application",
    "approval",
    "settlement batch",
)
#: Pieces in one settlement batch (``ClaimLedger.settleClaims``, at most 100), a payment
#: reference each, as ``POST /v1/payables/{id}/settlements`` sends them (bench.perf.api_writes).
SETTLEMENT_BATCH = 50
#: Gas limits for the ceiling's pre-signed calls (docs/gas.md's figures with room).
CALL_GAS = {
    "split": 250_000,
    "transfer": 200_000,
    "application": 250_000,
    "approval": 400_000,
    "settlement batch": 2_400_000,
}
#: Value moved by a split, applied for, approved (fen): small, so the roots last.
UNIT = 1_000
#: Splits the setup sends per JSON-RPC round (each mined before the next).
SETUP_CHUNK = 250


@dataclass(frozen=True)
class Call:
    """One write of an operation: ``key`` calls ``call`` (a :class:`ledger.calls.ContractCall`,
    the same value the API's services build)."""

    key: Key
    call: ContractCall
    gas: int

    def tx(self, driver: Driver) -> Tx:
        data = codec().calldata(self.call.contract, self.call.function, *self.call.args)
        return Tx(self.key, driver.addresses[self.call.contract], data, self.gas)


def signers(chain: BenchChain, operation: str, holders: int) -> list[Key]:
    """Who signs an operation's calls: suppliers split, transfer and apply; financiers approve
    (the bench chain has two); obligors (cores, two) settle. ``holders`` is capped at what the
    chain has."""
    cast = chain.driver.cast
    if operation == "approval":
        pool = cast.financiers
    elif operation == "settlement batch":
        pool = cast.cores
    else:
        pool = cast.suppliers
    return pool[: max(1, min(holders, len(pool)))]


async def _execute(driver: Driver, txs: Sequence[Tx]) -> list[Log]:
    logs: list[Log] = []
    await driver.sync_nonces()
    await driver.refresh_gas_price()
    for i in range(0, len(txs), SETUP_CHUNK):
        logs += await driver.execute(txs[i : i + SETUP_CHUNK])
    return logs


def _cs(address: str) -> str:
    return to_checksum_address(address)


def _next_supplier(chain: BenchChain, holder: Key, skip: int = 1) -> Key:
    suppliers = chain.suppliers
    return suppliers[(suppliers.index(holder) + skip) % len(suppliers)]


async def prepare_calls(chain: BenchChain, operation: str, holders: int, count: int) -> list[Call]:
    """``count`` calls of ``operation`` signed by ``holders`` accounts in turn (see
    :func:`signers`), each valid on its own in any order, with what they consume put on chain
    first (not timed): pieces to pass on whole, open applications to approve, due pieces to
    settle (a payable of its own per obligor, due within the hour; the chain's clock is then
    moved past its due date, which leaves the bench chain's other payables, due in 180 days,
    as they were)."""
    driver = chain.driver
    keys = signers(chain, operation, holders)
    gas = CALL_GAS[operation]
    if operation == "split":
        return [
            Call(
                k := keys[i % len(keys)],
                calls.split(chain.roots[k.address], _cs(_next_supplier(chain, k).address), 1, None),
                gas,
            )
            for i in range(count)
        ]
    if operation == "transfer":
        # each piece split to its holder by the next supplier, then passed on whole
        splits = []
        for i in range(count):
            holder = keys[i % len(keys)]
            giver = _next_supplier(chain, holder)
            splits.append(driver.split_tx(giver, chain.roots[giver.address], holder.address, UNIT))
        logs = await _execute(driver, splits)
        made = [(log.args["to"], log.args["claimId"]) for log in logs if log.name == "ClaimSplit"]
        by_key = {k.address: k for k in keys}
        return [
            Call(
                by_key[to],
                calls.transfer_claim(piece, _cs(_next_supplier(chain, by_key[to]).address), None),
                gas,
            )
            for to, piece in made
        ]
    now = await driver.now()
    financiers = chain.driver.cast.financiers
    if operation == "application":
        expires = now + 30 * DAY
        return [
            Call(
                k := keys[i % len(keys)],
                calls.apply_for_financing(
                    chain.roots[k.address], _cs(financiers[i % len(financiers)].address), UNIT,
                    expires,
                ),
                gas,
            )
            for i in range(count)
        ]  # fmt: skip
    if operation == "approval":
        suppliers = chain.suppliers
        expires = now + 30 * DAY
        applications = []
        for i in range(count):
            sup = suppliers[i % len(suppliers)]
            applications.append(
                Call(
                    sup,
                    calls.apply_for_financing(
                        chain.roots[sup.address], _cs(keys[i % len(keys)].address), UNIT, expires
                    ),
                    CALL_GAS["application"],
                ).tx(driver)
            )
        logs = await _execute(driver, applications)
        by_key = {k.address: k for k in keys}
        dues = {p.root: p.due for p in driver.world.payables.values()}
        out = []
        for log in logs:
            if log.name != "FinancingApplied":
                continue
            a = log.args
            # one less than the days to maturity (rounded up), which the desk also takes: a day
            # of room for the chain's clock to move on before the approval is mined
            days = (dues[a["claimId"]] - now) // DAY
            discount = discount_for(a["amount"], RATE_BPS, days)
            terms = calls.Terms(
                a["amount"] - discount, discount, 0, RATE_BPS, days, False,
                keccak(b"bench/registration/%d" % a["financingId"]),
                keccak(b"bench/disbursement/%d" % a["financingId"]),
            )  # fmt: skip
            out.append(
                Call(by_key[a["financier"]], calls.approve_financing(a["financingId"], terms), gas)
            )
        return out
    if operation == "settlement batch":
        return await _settlement_calls(chain, keys, count, now)
    raise ValueError(f"unknown operation {operation!r}")


async def _settlement_calls(
    chain: BenchChain, cores: list[Key], batches: int, now: int
) -> list[Call]:
    driver = chain.driver
    suppliers = chain.suppliers
    due = now + 3600
    plan = []
    for n, core in enumerate(cores):
        sup = suppliers[n % len(suppliers)]
        inv = keccak(f"bench/settlement/{core.address}/{now}".encode())
        plan.append((core, sup, inv))
    await _execute(
        driver,
        [
            Call(
                sup,
                calls.register_invoice(inv, core.address, FACE, now - 60, keccak(inv + b"d")),
                600_000,
            ).tx(driver)
            for core, sup, inv in plan
        ],
    )
    await _execute(
        driver,
        [Call(core, calls.confirm_invoice(inv), 600_000).tx(driver) for core, _, inv in plan],
    )
    logs = await _execute(
        driver,
        [
            Call(core, calls.issue_payable(sup.address, FACE, due, [inv], None), 600_000).tx(driver)
            for core, sup, inv in plan
        ],
    )
    roots = {
        log.args["obligor"]: (log.args["rootClaimId"], log.args["supplier"])
        for log in logs
        if log.name == "PayableIssued"
    }
    # each batch: SETTLEMENT_BATCH pieces of one payable held by one supplier
    splits = []
    owners: list[tuple[Key, int, str]] = []
    for b in range(batches):
        core = cores[b % len(cores)]
        root, sup_address = roots[core.address]
        sup = next(k for k in suppliers if k.address == sup_address)
        to = _next_supplier(chain, sup, 1 + b % (len(suppliers) - 1))
        owners.append((core, root, to.address))
        splits += [driver.split_tx(sup, root, to.address, UNIT) for _ in range(SETTLEMENT_BATCH)]
    logs = await _execute(driver, splits)
    # (parent, holder) → its pieces: blocks order two senders' splits as they please
    pieces: dict[tuple[int, str], list[int]] = {}
    for log in logs:
        if log.name == "ClaimSplit":
            key = (log.args["parentId"], log.args["to"])
            pieces.setdefault(key, []).append(log.args["claimId"])
    await driver.warp(due - await driver.now() + 1)
    out = []
    for b, (core, root, holder) in enumerate(owners):
        mine = pieces[(root, holder)]
        ids, pieces[(root, holder)] = mine[:SETTLEMENT_BATCH], mine[SETTLEMENT_BATCH:]
        refs = [keccak(f"bench/payment/{now}/{b}/{i}".encode()) for i in ids]
        out.append(Call(core, calls.settle_claims(ids, refs), CALL_GAS["settlement batch"]))
    return out


async def operation_ceiling(
    chain: BenchChain,
    operation: str,
    holders: int,
    count: int,
    *,
    progress: Progress,
    name: str | None = None,
) -> Rate:
    """The chain's ceiling for ``count`` writes of ``operation`` (one of :data:`OPERATIONS`)
    by ``holders`` signers (capped as :func:`signers` says): the calls prepared
    (:func:`prepare_calls`, not timed), then pre-signed and batch-sent by
    :func:`measure_ceiling`. The figure's ``holders`` is the number of signers used."""
    stock = await prepare_calls(chain, operation, holders, count)
    return await ceiling_of(chain, operation, stock, progress=progress, name=name)


async def ceiling_of(
    chain: BenchChain,
    operation: str,
    stock: Sequence[Call],
    *,
    progress: Progress,
    name: str | None = None,
) -> Rate:
    """The ceiling of calls prepared by :func:`prepare_calls` (see :func:`operation_ceiling`)."""
    txs = [c.tx(chain.driver) for c in stock]
    used = len({c.key.address for c in stock})
    label = "one holder" if used == 1 else "many holders"
    return await measure_ceiling(
        chain.driver,
        lambda i: txs[i],
        len(txs),
        name=name or f"{operation} · ceiling · {label}",
        operation=operation,
        holders=used,
        progress=progress,
    )


def ceiling_step(
    chain: BenchChain, operation: str, holders: int, count: int, *, progress: Progress
) -> Step[list[Call]]:
    """:func:`operation_ceiling` as a :class:`bench.perf.bracket.Step`: prepared, then measured."""

    async def prepare() -> list[Call]:
        return await prepare_calls(chain, operation, holders, count)

    async def measure(stock: list[Call]) -> Rate:
        return await ceiling_of(chain, operation, stock, progress=progress)

    return Step(prepare, measure)
