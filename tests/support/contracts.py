"""Small helpers shared by the contract tests: exact-revert assertions, time-exact
transactions, financing terms by the contract's convention, pipelined batches and receipt
log decoding.

Time. ``eth_estimateGas`` runs against the latest block, not against a timestamp set with
``evm_setNextBlockTimestamp``; a call that must be *mined* at an exact second therefore goes
out with explicit gas (:func:`transact_at`), and a revert is still decoded (the sender replays
the failed transaction at its block).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from web3.types import TxReceipt

from bench.cast import Actor, Platform
from ledger.bindings import ClaimView
from ledger.deployment import DAY
from ledger.errors import ContractRevert
from ledger.node import rpc
from ledger.pending import PendingTx
from ledger.reverts import revert_for_failed_transaction, revert_from_exception

#: Gas for transactions sent without estimation (time-exact or pipelined ones).
EXPLICIT_GAS = 1_000_000
#: A registration number in the national registry (required by the default deployment).
REG_NO = hashlib.sha256(b"zhongdeng-registration").digest()
RATE_BPS = 600  # 6 % a year
GRACE = 7 * DAY  # DeploymentParameters.grace_period_days
TERM_CAP = 365 * DAY
LONG_TERM = 180 * DAY
OVERDUE_WINDOW = 180 * DAY
OK = "ok"


def pay_ref(claim_id: int) -> bytes:
    """A bank payment reference of its own for piece ``claim_id``: a reference pays one
    holder for one payable (``SettlementReferenceUsed`` otherwise), so tests that settle
    pieces of several holders cite one per piece."""
    return hashlib.sha256(f"bank payment for piece {claim_id}".encode()).digest()


# -- reverts ----------------------------------------------------------------------------------


async def expect_revert(call: Awaitable[Any], name: str, **args: Any) -> ContractRevert:
    """Await ``call``; assert it reverts with custom error ``name`` and (a subset of) ``args``.

    ``call`` is a transaction (raising :class:`ContractRevert`) or a view's ``.call()``
    (raising web3's contract errors, decoded here the same way).
    """
    try:
        await call
    except ContractRevert as revert:
        exc = revert
    except Exception as error:
        decoded = revert_from_exception(error)
        if decoded is None:
            raise
        exc = decoded
    else:
        pytest.fail(f"expected a revert with {name}, but the call succeeded")
    assert exc.name == name, f"expected {name}, got {exc.decoded.describe()}"
    for key, value in args.items():
        assert key in exc.args, f"{name} has no argument {key!r}: {exc.decoded.describe()}"
        got = exc.args[key]
        if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
            got, value = to_checksum_address(got), to_checksum_address(value)
        assert got == value, f"{name}.{key}: expected {value!r}, got {got!r}"
    return exc


# -- time -------------------------------------------------------------------------------------


async def transact_at(
    platform: Platform, actor: Actor, fn: Any, ts: int, gas: int = EXPLICIT_GAS
) -> TxReceipt:
    """Mine ``fn`` from ``actor`` in a block with timestamp exactly ``ts``.

    Raises :class:`ContractRevert` (decoded from the mined, failed transaction) on a revert.
    """
    await platform.set_next_timestamp(ts)
    return await actor.sender.transact(fn, {"gas": gas})


def days_to_maturity(due: int, now: int) -> int:
    """``ceil((due - now) / 1 day)``, as FinancingDesk computes it."""
    return -(-(due - now) // DAY)


@dataclass(frozen=True)
class Terms:
    advance: int
    discount: int
    fees: int
    annual_rate_bps: int
    term_days: int
    recourse: bool
    registration_no: bytes
    disbursement_ref: bytes

    def tuple(self) -> tuple[Any, ...]:
        return (
            self.advance,
            self.discount,
            self.fees,
            self.annual_rate_bps,
            self.term_days,
            self.recourse,
            self.registration_no,
            self.disbursement_ref,
        )


async def terms_for(
    platform: Platform,
    financing_id: int,
    *,
    at: int | None = None,
    rate_bps: int = RATE_BPS,
    fees: int = 0,
    term_days: int | None = None,
    recourse: bool | None = None,
    registration_no: bytes | None = None,
) -> Terms:
    """Valid approval terms for ``financing_id`` when mined at ``at`` (or within ~30 s from now).

    Without ``at`` the term is the days to maturity 30 s from now: the desk accepts the days
    to maturity (rounded up) or one less, so that is valid for a block mined anywhere in the
    next 30 s, across a day boundary too.
    """
    fin = await platform.suite.financing(financing_id)
    claim = await platform.suite.claim(fin.claim_id)
    if recourse is None:
        recourse = fin.recourse  # what the applicant committed to (other recourse is refused)
    if registration_no is None:
        registration_no = platform.unique("registration")  # a number backs one financing
    if term_days is None:
        ref_time = at if at is not None else await platform.now() + 30
        term_days = days_to_maturity(claim.due_date, ref_time)
    discount = await platform.suite.discount_for(fin.amount, rate_bps, term_days)
    return Terms(
        advance=fin.amount - discount - fees,
        discount=discount,
        fees=fees,
        annual_rate_bps=rate_bps,
        term_days=term_days,
        recourse=recourse,
        registration_no=registration_no,
        disbursement_ref=platform.unique("disbursement"),
    )


# -- business steps ---------------------------------------------------------------------------


async def apply(
    platform: Platform,
    holder: Actor,
    claim_id: int,
    financier: Actor,
    amount: int,
    *,
    expires_in: int = 7 * DAY,
    min_advance: int = 0,
    recourse: bool = False,
) -> int:
    """``holder`` applies to ``financier`` for ``amount`` of ``claim_id``, committing to
    ``min_advance`` and ``recourse``; returns the id."""
    expires = await platform.now() + expires_in
    await holder.transact(
        platform.desk.functions.applyForFinancing(
            claim_id, financier.address, amount, expires, min_advance, recourse
        )
    )
    return int(await platform.desk.functions.financingCount().call())


async def approve(platform: Platform, financier: Actor, financing_id: int, **kw: Any) -> TxReceipt:
    terms = await terms_for(platform, financing_id, **kw)
    receipt: TxReceipt = await financier.transact(
        platform.desk.functions.approveFinancing(financing_id, terms.tuple())
    )
    return receipt


async def finance(
    platform: Platform, holder: Actor, claim_id: int, financier: Actor, amount: int
) -> int:
    """Apply and approve; returns the financed piece's id."""
    fid = await apply(platform, holder, claim_id, financier, amount)
    await approve(platform, financier, fid)
    return (await platform.suite.financing(fid)).financed_claim_id or 0


# -- batched reads ---------------------------------------------------------------------------


async def read_claims(platform: Platform, ids: Sequence[int]) -> list[ClaimView]:
    """``Suite.claim`` for many ids in one JSON-RPC batch (same view, far fewer round trips)."""
    if not ids:
        return []
    async with platform.w3.batch_requests() as batch:
        for claim_id in ids:
            batch.add(platform.claim_ledger.functions.claim(claim_id).call())
        rows: list[Any] = list(await batch.async_execute())
    return [ClaimView.from_row(i, row) for i, row in zip(ids, rows, strict=True)]


# -- pipelining -------------------------------------------------------------------------------


def call_tx(fn: Any, gas: int = EXPLICIT_GAS) -> dict[str, Any]:
    """A transaction dict for a bound contract call with explicit gas (no estimation)."""
    return {"to": fn.address, "data": fn._encode_transaction_data(), "gas": gas}


async def set_automine(platform: Platform, on: bool) -> None:
    await rpc(platform.w3, "evm_setAutomine", on)


async def mine_pool(platform: Platform) -> int:
    """Mine blocks until the node's pool is empty; returns the number of blocks mined."""
    blocks = 0
    while True:
        status = await rpc(platform.w3, "txpool_status")
        if int(status["pending"], 16) == 0 and int(status["queued"], 16) == 0:
            return blocks
        await rpc(platform.w3, "evm_mine")
        blocks += 1


async def pipeline(
    platform: Platform, actor: Actor, fns: Sequence[Any], gas: int = 300_000, chunk: int = 200
) -> list[dict[str, Any]]:
    """Mine many calls from one actor fast; assert every one succeeded; return the receipts.

    For bulk setup (hundreds of transactions): signed locally with consecutive nonces from the
    chain's pending nonce and explicit gas, broadcast in JSON-RPC batches with mining off,
    mined, then checked through ``eth_getBlockReceipts``. The actors' nonce stores are
    resynced afterwards (they also take max(stored, chain pending) on their own).
    """
    if not fns:
        return []
    w3, sender = platform.w3, actor.sender
    fees = await sender.fee_fields()
    fees = {k: 2 * v for k, v in fees.items()}  # several full blocks may raise the base fee
    chain_id, nonce = await sender.chain_id(), await sender.pending_nonce()
    raws: list[bytes] = []
    hashes: list[str] = []
    for i, fn in enumerate(fns):
        tx: dict[str, Any] = {
            **call_tx(fn, gas),
            "value": 0,
            "chainId": chain_id,
            "nonce": nonce + i,
            **fees,
        }
        signed = actor.account.sign_transaction(tx)
        raws.append(bytes(signed.raw_transaction))
        hashes.append(signed.hash.to_0x_hex())
    first_block = int(await w3.eth.block_number) + 1
    await set_automine(platform, False)
    try:
        for start in range(0, len(raws), chunk):
            requests = [
                ("eth_sendRawTransaction", ["0x" + r.hex()]) for r in raws[start : start + chunk]
            ]
            provider: Any = w3.provider
            responses: Any = await provider.make_batch_request(requests)
            errors = [r["error"] for r in responses if r.get("error")]
            assert not errors, f"broadcast refused: {errors[:3]}"
        await mine_pool(platform)
    finally:
        await set_automine(platform, True)
        await platform.resync_nonces()
    last_block = int(await w3.eth.block_number)
    by_hash: dict[str, dict[str, Any]] = {}
    for number in range(first_block, last_block + 1):
        for receipt in await rpc(w3, "eth_getBlockReceipts", hex(number)):
            by_hash[receipt["transactionHash"]] = receipt
    missing = [h for h in hashes if h not in by_hash]
    assert not missing, f"{len(missing)} pipelined transactions were not mined"
    failed = [h for h in hashes if int(by_hash[h]["status"], 16) != 1]
    if failed:
        revert = await revert_for_failed_transaction(w3, failed[0])
        raise AssertionError(f"{len(failed)} of {len(hashes)} pipelined calls failed: {revert}")
    return [by_hash[h] for h in hashes]


async def send_in_one_block(
    platform: Platform, sends: Iterable[tuple[Actor, Any]], gas: int = EXPLICIT_GAS
) -> list[TxReceipt]:
    """Broadcast every ``(actor, fn)`` with mining off, then mine them into one block."""
    pendings: list[PendingTx] = []
    await set_automine(platform, False)
    try:
        for actor, fn in sends:
            pendings.append(await actor.sender.send(call_tx(fn, gas)))
        await rpc(platform.w3, "evm_mine")
    finally:
        await set_automine(platform, True)
    receipts = [await p.receipt() for p in pendings]
    assert len({r["blockNumber"] for r in receipts}) == 1, "not mined into one block"
    return receipts


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    contract: str
    name: str
    args: dict[str, Any]
    log_index: int


class EventDecoder:
    """Decodes receipt logs against the four contracts' ABIs, by (address, topic0)."""

    def __init__(self, platform: Platform) -> None:
        self._by_key: dict[tuple[str, bytes], tuple[str, Any, str]] = {}
        for cname, contract in platform.suite.contracts.items():
            for entry in contract.abi:
                if entry.get("type") != "event":
                    continue
                topic = bytes(event_abi_to_log_topic(entry))
                self._by_key[(contract.address, topic)] = (cname, contract, entry["name"])

    def decode(self, receipt: TxReceipt) -> list[Event]:
        events: list[Event] = []
        for log in receipt["logs"]:
            address = to_checksum_address(log["address"])
            key = (address, bytes(log["topics"][0]))
            assert key in self._by_key, f"log from {address} matches no known event: {log}"
            cname, contract, name = self._by_key[key]
            decoded = getattr(contract.events, name)().process_log(log)
            events.append(Event(cname, name, dict(decoded["args"]), int(log["logIndex"])))
        return events

    def names(self, receipt: TxReceipt) -> Counter[str]:
        return Counter(e.name for e in self.decode(receipt))

    def one(self, receipt: TxReceipt, name: str) -> dict[str, Any]:
        found = [e for e in self.decode(receipt) if e.name == name]
        assert len(found) == 1, f"expected exactly one {name}, got {len(found)}"
        return found[0].args
