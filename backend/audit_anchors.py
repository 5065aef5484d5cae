"""The audit log's head anchored on chain (SPEC AP-3), and the log compared with its anchors.

The hash chain of :mod:`backend.audit_log` shows a record changed in place, but whoever can
write the database can also rewrite a record and recompute every later hash and the head, or
delete the last records and fix the head. So the head goes on chain: the ``AuditAnchor``
contract keeps, in order, anchors of ``(seq, head, count, at)`` — the last record's number,
its hash, the records in the log and the block's time — written by the platform's anchoring
account (``TIERFLOW_ANCHOR_PRIVATE_KEY``: its own account, so anchors never take the
operator's nonces; anvil's dev account 9 on the local chain; the operator when unset
elsewhere), granted at deployment, and never going back in sequence.

- :func:`anchor_once` anchors the head when it moved past the chain's last anchor (nothing
  to do when nothing changed). :func:`anchoring` runs it every
  ``TIERFLOW_API_ANCHOR_INTERVAL_S`` (default 30 s, at most 60: "at least every minute
  of activity") in every API worker, but only the worker holding the ``audit-anchor`` lease
  (``service_leases``, renewed each round, taken over when it runs out) anchors, so several
  workers do not all send the same anchor.
- :func:`read_anchors` reads every anchor from the contract's views;
  :func:`backend.audit_log.verify` compares them with the log: the record an anchor names
  must exist and have the anchored hash. A record rewritten below an anchor (however the
  later hashes were recomputed) changes that hash; a log truncated below an anchor lacks the
  record. Records after the last anchor are covered by the hash chain only until the next
  round anchors them.

``GET /v1/audit/log/verify`` and ``tierflow audit-verify`` (from the chain and the database
alone) both report it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_utils.address import to_checksum_address
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.models import AuditHead, ServiceLease
from db.engine import now_ms
from db.types import table_of
from ledger.artifacts import load_artifact
from ledger.deployment import AUDIT_ANCHOR, Deployment
from ledger.node import Web3Client
from ledger.sender import CachedGasExhausted, TransactionSender

if TYPE_CHECKING:
    from backend.config import ApiSettings
    from backend.context import AppContext

log = logging.getLogger("tierflow.audit_anchor")

_HEAD = table_of(AuditHead)
_LEASES = table_of(ServiceLease)
LEASE_NAME = "audit-anchor"
#: Anchors read per view call.
PAGE = 500


@dataclass(frozen=True)
class Anchor:
    """One anchor as the contract keeps it (``head`` as the log stores hashes: 64 hex)."""

    index: int
    seq: int
    count: int
    at: int
    head: str

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seq": self.seq,
            "count": self.count,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "head": self.head,
        }


def anchor_contract(w3: Web3Client, deployment: Deployment) -> Any:
    """The deployment's ``AuditAnchor`` bound to ``w3``."""
    return w3.eth.contract(
        address=to_checksum_address(deployment.address(AUDIT_ANCHOR)),
        abi=load_artifact(AUDIT_ANCHOR).abi,
    )


def _anchor(index: int, raw: Any) -> Anchor:
    seq, count, at, head = raw
    return Anchor(index, int(seq), int(count), int(at), bytes(head).hex())


async def read_anchors(contract: Any) -> list[Anchor]:
    """Every anchor, in order."""
    total = int(await contract.functions.anchorCount().call())
    found: list[Anchor] = []
    while len(found) < total:
        page = await contract.functions.anchors(len(found), PAGE).call()
        if not page:
            break
        found += [_anchor(len(found) + i, raw) for i, raw in enumerate(page)]
    return found


async def log_head(engine: AsyncEngine) -> tuple[int, str] | None:
    """The log's head: its last record's number and hash (None: no record yet)."""
    async with engine.connect() as conn:
        head = (
            await conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1))
        ).first()
    if head is None or int(head.seq) == 0:
        return None
    return int(head.seq), str(head.hash)


async def anchor_once(
    engine: AsyncEngine, sender: TransactionSender, contract: Any
) -> Anchor | None:
    """Anchor the log's head if it moved past the last anchor; the new anchor, or None."""
    head = await log_head(engine)
    if head is None:
        return None
    seq, digest = head
    last_seq = int((await contract.functions.latest().call())[0])
    if seq <= last_seq:
        return None  # nothing new (or the log is behind the chain: verification says so)
    tx = sender.encode_call(contract.functions.anchor(seq, bytes.fromhex(digest), seq))
    try:
        receipt = await sender.wait(await sender.send(tx))
    except CachedGasExhausted:
        receipt = await sender.wait(await sender.send_estimated(tx))
    index = int(await contract.functions.anchorCount().call()) - 1
    block = await contract.w3.eth.get_block(receipt["blockNumber"])
    log.info("audit log anchored at record %d in %s", seq, receipt["transactionHash"].to_0x_hex())
    return Anchor(index, seq, seq, int(block["timestamp"]), digest)


async def take_lease(engine: AsyncEngine, name: str, owner: str, ttl_ms: int) -> bool:
    """Hold (or renew) the lease ``name`` for ``ttl_ms``; False while another owner holds it."""
    now = now_ms()
    async with engine.begin() as conn:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        made = await conn.execute(
            insert(_LEASES)
            .values(name=name, owner=owner, until_ms=now + ttl_ms)
            .on_conflict_do_nothing()
        )
        if made.rowcount == 1:
            return True
        taken = await conn.execute(
            update(_LEASES)
            .where(
                _LEASES.c.name == name,
                or_(_LEASES.c.owner == owner, _LEASES.c.until_ms < now),
            )
            .values(owner=owner, until_ms=now + ttl_ms)
        )
        return taken.rowcount == 1


def anchoring_sender(
    ctx: AppContext, settings: ApiSettings
) -> Callable[[], Awaitable[TransactionSender]]:
    """How the loop gets its sender: the anchoring account's (``TIERFLOW_ANCHOR_PRIVATE_KEY``,
    anvil's dev account 9 on the local chain), else the operator's. The anchoring account
    sends nothing else and one worker at a time anchors, so each round takes its nonce from
    the chain afresh (a new sender): a reorganisation that dropped an anchor leaves no gap."""
    key = settings.anchor_key(ctx.chain_id)
    if key is None:
        return lambda: ctx.gateway.sender(ctx.operator)
    account = Account.from_key(key.get_secret_value())

    async def sender() -> TransactionSender:
        return TransactionSender(
            ctx.w3,
            account,
            receipt_timeout_s=settings.api_receipt_timeout_s,
            unavailable_timeout_s=settings.api_node_unavailable_s,
        )

    return sender


def worker_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def anchoring(
    engine: AsyncEngine,
    sender: Callable[[], Awaitable[TransactionSender]],
    contract: Any,
    interval_s: float,
) -> AsyncIterator[None]:
    """Anchor the log's head every ``interval_s`` while inside, if this worker holds the
    lease (``sender`` gives the anchoring account's sender)."""
    owner = worker_id()
    ttl_ms = int(max(3 * interval_s, 5.0) * 1000)

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                if await take_lease(engine, LEASE_NAME, owner, ttl_ms):
                    await anchor_once(engine, await sender(), contract)
            except asyncio.CancelledError:
                raise
            except Exception:  # the node or the database is down: next round
                log.warning("anchoring the audit log failed", exc_info=True)

    task = asyncio.create_task(loop(), name="tierflow-audit-anchor")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def last_anchor_tx(contract: Any, anchor: Anchor, from_block: int) -> str | None:
    """The transaction that wrote ``anchor`` (its ``LogAnchored`` event), if the node has it."""
    try:
        logs = await contract.events.LogAnchored().get_logs(
            argument_filters={"index": anchor.index}, from_block=from_block
        )
    except Exception:  # a node that limits log queries: the anchor itself is what counts
        log.debug("no LogAnchored for anchor %d", anchor.index, exc_info=True)
        return None
    return str(logs[-1]["transactionHash"].to_0x_hex()) if logs else None


async def verification(
    engine: AsyncEngine, w3: Web3Client, deployment: Deployment, *, need_chain: bool = False
) -> dict[str, Any]:
    """The log verified and compared with every anchor on chain
    (``GET /v1/audit/log/verify``, ``tierflow audit-verify``). Without the node the API still
    walks the log (``anchors_compared`` false: auditors keep their view of the past); with
    ``need_chain`` (the CLI) the node's error is raised."""
    from backend.services.audit_records import verify_log  # services import this module

    contract = anchor_contract(w3, deployment)
    try:
        anchors = await read_anchors(contract)
    except Exception:
        if need_chain:
            raise
        log.warning("audit log verified without its anchors: the node did not answer")
        return await verify_log(engine, None)
    tx_hash = None
    if anchors:
        start = deployment.contracts[AUDIT_ANCHOR].start_block
        tx_hash = await last_anchor_tx(contract, anchors[-1], start)
    return await verify_log(engine, anchors, tx_hash)
