"""The append-only audit log of mutating requests (AP-3), hash-chained so tampering shows.

Every POST, PUT, PATCH and DELETE, accepted or refused (401, 403, 409, 422, 429 …), leaves one
record: when, who (member and key id), what (method, path, SHA-256 of the body, the
Idempotency-Key), the outcome (status and problem code) and the transactions it got mined.
Record ``n`` stores ``hash_n = SHA-256(hash_{n-1} ‖ canonical JSON of record n)``; appends take
the lock of the one ``audit_head`` row, so the chain has one order whatever the number of API
workers. :func:`verify` walks the chain and reports the first record that does not fit.

Every transaction the platform broadcasts is cited by the record of the request that caused
it, whatever fails in between: before a request's first broadcast, :func:`mark_pending`
writes an ``audit_pending`` row with the transactions it is about to send (updated before each
further one); the request's record, appended with ``request_id``, removes that row in the same
database transaction. A request whose worker died leaves its row behind: :func:`sweep` (run by
every API worker from time to time) appends it as a record with status 0 and code
``request_interrupted`` that cites its transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.models import AuditHead, AuditPending, AuditRecord
from db.engine import now_s
from db.types import table_of

_LOG = table_of(AuditRecord)
_PENDING = table_of(AuditPending)
#: The status of a record for a request that never answered (its worker died).
INTERRUPTED_STATUS = 0
INTERRUPTED_CODE = "request_interrupted"
_HEAD = table_of(AuditHead)
GENESIS = "0" * 64
#: The append's statements, built once (every mutating request appends a record): the pending
#: row taken with its transactions in one statement, the next sequence number taken (the head
#: row's lock: SQLite's write lock) and read in one.
_TAKE_PENDING = (
    _PENDING.delete()
    .where(_PENDING.c.request_id == bindparam("request_id"))
    .returning(_PENDING.c.tx_hashes)
)
_NEXT_SEQ = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq + 1)
    .returning(_HEAD.c.seq, _HEAD.c.hash)
)
_INSERT_RECORD = _LOG.insert()
_SET_HASH = update(_HEAD).where(_HEAD.c.id == 1).values(hash=bindparam("new_hash"))


def _keep_pending(dialect: str) -> Any:
    """The request's pending row made, or replaced by the one given (its transactions so far),
    built once per dialect: every write's citation before each broadcast."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(_PENDING)
    return statement.on_conflict_do_update(
        index_elements=[_PENDING.c.request_id],
        set_={
            c.name: statement.excluded[c.name] for c in _PENDING.columns if c.name != "request_id"
        },
    )


_KEEP_PENDING = {dialect: _keep_pending(dialect) for dialect in ("sqlite", "postgresql")}
#: The fields a record's hash covers, in this order.
HASHED = (
    "seq",
    "at",
    "member",
    "api_key_id",
    "method",
    "path",
    "status",
    "code",
    "idempotency_key",
    "request_sha256",
    "tx_hashes",
)


@dataclass
class Entry:
    """What the middleware knows of a request when its response is ready."""

    method: str
    path: str
    status: int
    request_sha256: str
    member: str | None = None
    api_key_id: str | None = None
    code: str | None = None
    idempotency_key: str | None = None
    tx_hashes: tuple[str, ...] = ()
    #: The request's id: its X-Request-Id header and its problem body's ``request_id``.
    request_id: str | None = None


def chain_hash(prev: str, record: dict[str, Any]) -> str:
    fields = [record[f] for f in HASHED]
    # The request id (X-Request-Id) is covered too, where the record has one (records written
    # before it was kept have none, and keep their hashes).
    if record.get("request_id"):
        fields.append(record["request_id"])
    canonical = json.dumps(fields, separators=(",", ":"))
    return hashlib.sha256(prev.encode() + canonical.encode()).hexdigest()


async def _ensure_head(conn: AsyncConnection) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(insert(_HEAD).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())


async def append(engine: AsyncEngine, entry: Entry, request_id: str | None = None) -> int:
    """Append ``entry`` (and drop the request's ``audit_pending`` row, whose transactions the
    entry cites); returns its sequence number."""
    async with engine.begin() as conn:
        return await append_in(conn, entry, request_id)


async def append_in(conn: AsyncConnection, entry: Entry, request_id: str | None = None) -> int:
    """:func:`append` within the caller's transaction on ``conn`` (a keyed write's record is
    appended in the transaction that stores its answer: :mod:`backend.idempotency`)."""
    hashes = list(entry.tx_hashes)
    if request_id is not None:
        pending = (
            await conn.execute(_TAKE_PENDING, {"request_id": request_id})
        ).scalar_one_or_none()
        if pending is not None:
            hashes += [h for h in json.loads(pending) if h not in hashes]
    entry = Entry(**{**entry.__dict__, "tx_hashes": tuple(hashes)})
    return await _append(conn, entry)


async def _append(conn: AsyncConnection, entry: Entry) -> int:
    # The update takes the row's lock (SQLite: the database's write lock) and reads it back.
    head = (await conn.execute(_NEXT_SEQ)).first()
    if head is None:  # the log's first record: its head row first
        await _ensure_head(conn)
        head = (await conn.execute(_NEXT_SEQ)).one()
    record: dict[str, Any] = {
        "seq": head.seq,
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "member": entry.member,
        "api_key_id": entry.api_key_id,
        "method": entry.method,
        "path": entry.path[:300],
        "status": entry.status,
        "code": entry.code,
        "idempotency_key": entry.idempotency_key,
        "request_sha256": entry.request_sha256,
        "tx_hashes": json.dumps(list(entry.tx_hashes)),
        "request_id": entry.request_id,
    }
    digest = chain_hash(head.hash, record)
    await conn.execute(_INSERT_RECORD, {**record, "prev_hash": head.hash, "hash": digest})
    await conn.execute(_SET_HASH, {"new_hash": digest})
    return int(head.seq)


async def mark_pending(engine: AsyncEngine, request_id: str, entry: Entry) -> None:
    """Keep ``entry`` (its transactions so far) as the pending record of ``request_id``:
    written before each broadcast, so no transaction goes out uncited."""
    async with engine.begin() as conn:
        await keep_pending(conn, request_id, entry)


async def keep_pending(conn: AsyncConnection, request_id: str, entry: Entry) -> None:
    """:func:`mark_pending` within the caller's transaction on ``conn`` (the gateway commits
    it with the write's journal record)."""
    values = {
        "request_id": request_id,
        "member": entry.member,
        "api_key_id": entry.api_key_id,
        "method": entry.method,
        "path": entry.path[:300],
        "idempotency_key": entry.idempotency_key,
        "request_sha256": entry.request_sha256,
        "tx_hashes": json.dumps(list(entry.tx_hashes)),
        "updated_at": now_s(),
    }
    await conn.execute(_KEEP_PENDING[conn.dialect.name], values)


async def sweep(engine: AsyncEngine, older_than_s: float) -> int:
    """Append the pending records not touched for ``older_than_s`` (their requests died) as
    ``request_interrupted`` records citing their transactions; how many were appended."""
    cutoff = now_s() - older_than_s
    async with engine.connect() as conn:
        stale = (
            (
                await conn.execute(
                    select(_PENDING.c.request_id).where(_PENDING.c.updated_at <= cutoff)
                )
            )
            .scalars()
            .all()
        )
    done = 0
    for request_id in stale:
        async with engine.begin() as conn:
            row = (
                await conn.execute(select(_PENDING).where(_PENDING.c.request_id == request_id))
            ).first()
            if row is None or row.updated_at > cutoff:
                continue
            gone = await conn.execute(
                _PENDING.delete().where(
                    _PENDING.c.request_id == request_id, _PENDING.c.updated_at == row.updated_at
                )
            )
            if gone.rowcount != 1:
                continue  # another worker swept it, or the request came back to life
            await _append(
                conn,
                Entry(
                    method=row.method,
                    path=row.path,
                    status=INTERRUPTED_STATUS,
                    request_sha256=row.request_sha256,
                    member=row.member,
                    api_key_id=row.api_key_id,
                    code=INTERRUPTED_CODE,
                    idempotency_key=row.idempotency_key,
                    tx_hashes=tuple(json.loads(row.tx_hashes)),
                    request_id=request_id,
                ),
            )
            done += 1
    return done


@contextlib.asynccontextmanager
async def sweeping(engine: AsyncEngine, after_s: float) -> AsyncIterator[None]:
    """Run :func:`sweep` every few seconds (at least every ``after_s / 4``) while inside."""

    async def loop() -> None:
        while True:
            try:
                await sweep(engine, after_s)
            except Exception:  # the database is down: try again next round
                logging.getLogger("tierflow.api").warning("audit sweep failed", exc_info=True)
            await asyncio.sleep(max(0.5, min(15.0, after_s / 4)))

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class AnchorCheck:
    """How the log compares with one anchor on chain (:mod:`backend.audit_anchors`)."""

    index: int
    seq: int
    head: str
    at: int
    #: ``match``, ``rewritten`` (the record's hash is not the anchored one) or ``missing``
    #: (the log has no such record: truncated below the anchor).
    status: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str | None = None
    #: The anchors compared (None: not compared with the chain).
    anchors: tuple[AnchorCheck, ...] | None = None

    @property
    def last_anchored_seq(self) -> int | None:
        return max((a.seq for a in self.anchors or ()), default=None)


class _Anchored(Protocol):
    """What an anchor says, as :func:`verify` reads it (``backend.audit_anchors.Anchor``)."""

    @property
    def index(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def head(self) -> str: ...
    @property
    def at(self) -> int: ...


async def verify(engine: AsyncEngine, anchors: Sequence[_Anchored] | None = None) -> Verification:
    """Walk the whole chain: every record's hash, its link to the one before, no gaps, and
    the head pointing at the last one; then, given the chain's ``anchors``, every anchored
    record must be there with the anchored hash (a rewrite with the later hashes recomputed,
    or a truncation with the head fixed, passes the walk but not this)."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    broken: Verification | None = None
    anchored = {a.seq: a for a in anchors or ()}
    seen: dict[int, str] = {}
    async with engine.connect() as conn:
        rows = await conn.stream(select(_LOG).order_by(_LOG.c.seq))
        async for row in rows:
            record = dict(row._mapping)
            if record["seq"] in anchored:
                seen[record["seq"]] = record["hash"]
            if broken is not None:
                continue
            if record["seq"] != expected_seq:
                broken = Verification(False, count, expected_seq, "a record is missing")
            elif record["prev_hash"] != prev:
                broken = Verification(
                    False, count, record["seq"], "the link to the previous record is broken"
                )
            elif chain_hash(prev, record) != record["hash"]:
                broken = Verification(False, count, record["seq"], "the record was changed")
            else:
                prev = record["hash"]
                expected_seq += 1
                count += 1
        head = (await conn.execute(select(_HEAD.c.seq, _HEAD.c.hash))).first()
    checks = None
    if anchors is not None:
        checks = tuple(
            AnchorCheck(
                a.index,
                a.seq,
                a.head,
                a.at,
                "missing"
                if a.seq not in seen
                else ("match" if seen[a.seq] == a.head else "rewritten"),
            )
            for a in anchors
        )
    if broken is not None:
        return Verification(broken.ok, broken.records, broken.first_bad_seq, broken.reason, checks)
    if head is not None and (head.seq != count or head.hash != prev):
        return Verification(
            False, count, count + 1, "records after the last one were removed", checks
        )
    for check in checks or ():
        if check.status == "rewritten":
            return Verification(
                False,
                count,
                check.seq,
                f"record {check.seq} differs from its anchor on chain: a record up to it "
                "was rewritten",
                checks,
            )
        if check.status == "missing":
            return Verification(
                False,
                count,
                count + 1,
                f"the log ends at record {count}, below the anchor of record {check.seq} on "
                "chain: records were removed",
                checks,
            )
    return Verification(True, count, anchors=checks)
