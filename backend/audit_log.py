"""The append-only audit log of mutating requests (AP-3), hash-chained so tampering shows.

Every POST, PUT, PATCH and DELETE, accepted or refused (401, 403, 409, 422, 429 …), leaves one
record: when, who (member and key id), what (method, path, SHA-256 of the body, the
Idempotency-Key), the outcome (status and problem code) and the transactions it got mined.
Record ``n`` stores ``hash_n = SHA-256(hash_{n-1} ‖ canonical JSON of record n)``; appends take
the lock of the one ``audit_head`` row, so the chain has one order whatever the number of API
workers. :func:`verify` walks the chain and reports the first record that does not fit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.models import AuditHead, AuditRecord
from db.types import table_of

_LOG = table_of(AuditRecord)
_HEAD = table_of(AuditHead)
GENESIS = "0" * 64
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


def chain_hash(prev: str, record: dict[str, Any]) -> str:
    canonical = json.dumps([record[f] for f in HASHED], separators=(",", ":"))
    return hashlib.sha256(prev.encode() + canonical.encode()).hexdigest()


async def _ensure_head(conn: AsyncConnection) -> None:
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(insert(_HEAD).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())


async def append(engine: AsyncEngine, entry: Entry) -> int:
    """Append ``entry``; returns its sequence number."""
    async with engine.begin() as conn:
        await _ensure_head(conn)
        # The update takes the row's lock (SQLite: the database's write lock) before reading.
        await conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1))
        head = (await conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1))).one()
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
        }
        digest = chain_hash(head.hash, record)
        await conn.execute(_LOG.insert().values(**record, prev_hash=head.hash, hash=digest))
        await conn.execute(update(_HEAD).where(_HEAD.c.id == 1).values(hash=digest))
        return int(head.seq)


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    reason: str | None = None


async def verify(engine: AsyncEngine) -> Verification:
    """Walk the whole chain: every record's hash, its link to the one before, no gaps, and
    the head pointing at the last one."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    async with engine.connect() as conn:
        rows = await conn.stream(select(_LOG).order_by(_LOG.c.seq))
        async for row in rows:
            record = dict(row._mapping)
            if record["seq"] != expected_seq:
                return Verification(False, count, expected_seq, "a record is missing")
            if record["prev_hash"] != prev:
                return Verification(
                    False, count, record["seq"], "the link to the previous record is broken"
                )
            if chain_hash(prev, record) != record["hash"]:
                return Verification(False, count, record["seq"], "the record was changed")
            prev = record["hash"]
            expected_seq += 1
            count += 1
        head = (await conn.execute(select(_HEAD.c.seq, _HEAD.c.hash))).first()
    if head is not None and (head.seq != count or head.hash != prev):
        return Verification(False, count, count + 1, "records after the last one were removed")
    return Verification(True, count)
