"""The API's audit log as auditors read it: records in order, filters, and the hash chain's
verification (the log itself is written by :mod:`backend.audit_log`). No FastAPI in here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend import audit_log
from backend.models import AuditRecord
from backend.services.lists import check_range, cursor_parts

if TYPE_CHECKING:
    from backend.audit_anchors import Anchor


@dataclass(frozen=True)
class LogFilter:
    member: str | None = None
    method: str | None = None
    status: int | None = None
    code: str | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        check_range(self.from_time, self.to_time, "time")
        r = AuditRecord
        out: list[ColumnElement[bool]] = []
        for column, value in (
            (r.member, self.member),
            (r.method, self.method),
            (r.status, self.status),
            (r.code, self.code),
        ):
            if value is not None:
                out.append(column == value)
        # ``at`` is stored as fixed-width ISO text in UTC, so text order is time order.
        if self.from_time is not None:
            out.append(r.at >= _stored_time(self.from_time))
        if self.to_time is not None:
            out.append(r.at <= _stored_time(self.to_time))
        return out


def _stored_time(value: datetime) -> str:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds")


def _record_view(row: AuditRecord) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at,
        "member": row.member,
        "api_key_id": row.api_key_id,
        "method": row.method,
        "path": row.path,
        "status": row.status,
        "code": row.code,
        "idempotency_key": row.idempotency_key,
        "request_sha256": row.request_sha256,
        "tx_hashes": json.loads(row.tx_hashes),
        "request_id": row.request_id,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


async def list_log(
    session: AsyncSession, f: LogFilter, after: Any, limit: int
) -> list[dict[str, Any]]:
    """Audit records in sequence order, ``limit`` after seq ``after``."""
    clauses = f.clauses()
    cursor = cursor_parts(after, int)
    if cursor is not None:
        clauses.append(AuditRecord.seq > cursor[0])
    query = select(AuditRecord).where(*clauses).order_by(AuditRecord.seq).limit(limit)
    return [_record_view(row) for row in (await session.execute(query)).scalars()]


#: Anchors that do not match listed in a verification at most.
MISMATCHES_LISTED = 100


async def verify_log(
    engine: AsyncEngine, anchors: Sequence[Anchor] | None = None, anchor_tx_hash: str | None = None
) -> dict[str, Any]:
    """The log's hash chain walked and, given the chain's ``anchors``, compared with them."""
    result = await audit_log.verify(engine, anchors)
    checks = result.anchors or ()
    last = max(checks, key=lambda c: c.seq, default=None)
    bad = [c for c in checks if c.status != "match"]
    return {
        "ok": result.ok,
        "records": result.records,
        "first_bad_seq": result.first_bad_seq,
        "reason": result.reason,
        "anchors_compared": anchors is not None,
        "anchors_checked": len(checks) if anchors is not None else None,
        "anchors_matched": len(checks) - len(bad) if anchors is not None else None,
        "anchored_seq": None if last is None else last.seq,
        "anchored_at": None if last is None else datetime.fromtimestamp(last.at, UTC),
        "anchor_tx_hash": anchor_tx_hash if last is not None else None,
        "anchor_mismatches": [
            {"index": c.index, "seq": c.seq, "head": c.head, "status": c.status}
            for c in bad[:MISMATCHES_LISTED]
        ],
    }
