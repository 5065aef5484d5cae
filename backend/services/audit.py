"""Audit reads: the events feed, exposure per obligor, reconciliation (IX-5), the audit log.

Auditors and the operator see everything. A member reads the events of what it is a party
to: it names one object it may see (``claim_id``, ``payable_id``, ``financing_id``,
``invoice_id``; 404 as elsewhere when it may not) or its own ``account``, and even then only
rows about objects visible to it come back (:func:`_visible_events`), so naming a payable
does not show the splits of pieces it never saw. Exposure is the core enterprise's own book
and the financier's own exposure. The reconciliation and the audit log are for auditors.
No FastAPI in here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_abi.exceptions import DecodingError
from sqlalchemy import ColumnElement, and_, case, func, or_, select, tuple_, type_coerce, union
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from backend import audit_log
from backend.auth import Caller
from backend.errors import ApiError, Forbidden, Invalid
from backend.models import AuditRecord, MemberProfile
from backend.services import visibility
from backend.services.invoices import cursor_parts
from db.types import Amount
from indexer import models as m
from indexer.errors import IndexerError
from indexer.reconcile import reconcile
from ledger.jsonrpc import NodeUnavailable, RetryPolicy, RpcClient, RpcError
from ledger.roles import Role

#: Events about a payable as a whole: whoever may see the payable sees these (its GET shows
#: the same facts); the events of its pieces follow the pieces' own visibility.
PAYABLE_EVENTS = ("PayableIssued", "PayableCancelled", "PayableOverdue", "PayableSettled")
#: The reconciliation's node calls: each batch of 400 views gets 30 s and three tries.
RECONCILE_RETRY = RetryPolicy(attempts=3, initial_s=0.1, max_s=1.0)
#: Payable statuses whose unsettled face value is still owed.
OWED = ("issued", "overdue")


def _seconds(value: datetime) -> int:
    # A time without a zone is taken as UTC (the API's only zone), not the server's local one.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(aware.timestamp())


def _check_range(low: Any, high: Any, what: str) -> None:
    if low is not None and high is not None and low > high:
        raise Invalid(f"from_{what} is after to_{what}", code="range_invalid")


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """The feed's filters; every one given must hold."""

    event: str | None = None
    contract: str | None = None
    claim_id: int | None = None
    payable_id: int | None = None
    financing_id: int | None = None
    invoice_id: str | None = None
    account: str | None = None
    from_block: int | None = None
    to_block: int | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        _check_range(self.from_block, self.to_block, "block")
        _check_range(self.from_time, self.to_time, "time")
        e = m.Event
        out: list[ColumnElement[bool]] = []
        for column, value in (
            (e.event, self.event),
            (e.contract, self.contract),
            (e.claim_id, self.claim_id),
            (e.payable_id, self.payable_id),
            (e.financing_id, self.financing_id),
            (e.invoice_id, self.invoice_id),
            (e.account, self.account),
        ):
            if value is not None:
                out.append(column == value)
        if self.from_block is not None:
            out.append(e.block_number >= self.from_block)
        if self.to_block is not None:
            out.append(e.block_number <= self.to_block)
        if self.from_time is not None:
            out.append(e.block_time >= _seconds(self.from_time))
        if self.to_time is not None:
            out.append(e.block_time <= _seconds(self.to_time))
        return out


async def _member_scope(session: AsyncSession, caller: Caller, f: EventFilter) -> bool:
    """A member must name something of its own; an object it may not see is answered 404
    (as every other read does), another member's account 403.

    True when the filter alone keeps the page within what the member may read: its own
    account, or a piece, request or invoice it may see (every event about an object it may
    see is visible, :func:`_visible_events`), or a payable whose whole tree it may see (its
    obligor, supplier, clearing agent). For anyone else a payable is not enough: a piece's
    holder sees the payable but not every branch of its tree."""
    scoped = covered = False
    if f.account is not None:
        if f.account != caller.address:
            raise Forbidden(
                "a member reads the events of its own account only; auditors read all",
                code="audit_account_forbidden",
            )
        scoped = covered = True
    if f.claim_id is not None:
        await visibility.require_claim(session, caller, f.claim_id)
        scoped = covered = True
    if f.payable_id is not None:
        payable = await visibility.require_payable(session, caller, f.payable_id)
        scoped = True
        covered = covered or visibility.tree_visible(caller, payable)
    if f.financing_id is not None:
        await visibility.require_financing(session, caller, f.financing_id)
        scoped = covered = True
    if f.invoice_id is not None:
        await visibility.require_invoice(session, caller, f.invoice_id)
        scoped = covered = True
    if not scoped:
        raise Forbidden(
            "name one of claim_id, payable_id, financing_id or invoice_id that you are a "
            "party to, or account=<your address>; the whole feed is for auditors",
            code="audit_scope_required",
        )
    return covered


def _visible_events(caller: Caller) -> ColumnElement[bool]:
    """The rows a member may read: about itself, or about an object visible to it.

    ``IN`` the objects visible to it: PostgreSQL hashes each set once. (Correlated ``EXISTS``
    per row measured worse: 2.7 s against 25 ms for a page of 200 of a member's own events
    among 300k.) The claims set costs a scan of ``claims`` (60 ms at 60k pieces)."""
    me = caller.address
    e = m.Event
    tree_parties = select(m.Payable.id).where(
        or_(m.Payable.obligor == me, m.Payable.supplier == me, m.Payable.clearing_agent == me)
    )
    return or_(
        e.account == me,
        e.claim_id.in_(select(m.Claim.id).where(visibility.claims_clause(caller))),
        e.financing_id.in_(select(m.Financing.id).where(visibility.financings_clause(caller))),
        e.invoice_id.in_(select(m.Invoice.id).where(visibility.invoices_clause(caller))),
        # The whole lineage tree is its parties' (visibility.tree_visible) …
        e.payable_id.in_(tree_parties),
        # … the payable's own lifecycle anyone's who may see the payable.
        and_(
            e.event.in_(PAYABLE_EVENTS),
            e.payable_id.in_(select(m.Payable.id).where(visibility.payables_clause(caller))),
        ),
    )


#: A feed row's columns (plain rows: no ORM objects for a page of 200 events).
_EVENT_COLUMNS = (
    m.Event.block_number,
    m.Event.block_hash,
    m.Event.block_time,
    m.Event.tx_hash,
    m.Event.log_index,
    m.Event.contract,
    m.Event.event,
    m.Event.args,
)


def _event_view(row: Any) -> dict[str, Any]:
    return {
        "block_number": row.block_number,
        "block_hash": row.block_hash,
        "block_time": datetime.fromtimestamp(row.block_time, UTC),
        "tx_hash": row.tx_hash,
        "log_index": row.log_index,
        "contract": row.contract,
        "event": row.event,
        # The indexer wrote exact integers; json.loads keeps them Python ints.
        "args": json.loads(row.args),
    }


def event_key(item: dict[str, Any]) -> list[int]:
    """The keyset cursor of a feed item: its place in the chain."""
    return [item["block_number"], item["log_index"]]


async def list_events(
    session: AsyncSession, caller: Caller, f: EventFilter, after: Any, limit: int
) -> list[dict[str, Any]]:
    """The feed in chain order (block, log index), ``limit`` rows after ``after``."""
    clauses = f.clauses()
    if not caller.sees_everything and not await _member_scope(session, caller, f):
        # (Not needed when the filter names a visible object: the rule would then cost a
        # scan of the member's pieces for nothing.)
        clauses.append(_visible_events(caller))
    position = cursor_parts(after, int, int)
    if position is not None:
        # A row comparison, so PostgreSQL walks the primary key from the cursor on (the
        # spelled-out OR of the two columns made it filter from the start: 61 ms vs 11 ms
        # for a page of 200 in the middle of 300k events).
        clauses.append(tuple_(m.Event.block_number, m.Event.log_index) > tuple_(*position))
    query = (
        select(*_EVENT_COLUMNS)
        .where(*clauses)
        .order_by(m.Event.block_number, m.Event.log_index)
        .limit(limit)
    )
    return [_event_view(row) for row in await session.execute(query)]


# -- exposure --------------------------------------------------------------------------------


def exposure_key(item: dict[str, Any]) -> list[str]:
    return [item["obligor"], item["financier"] or ""]


async def _names(session: AsyncSession, addresses: Iterable[str]) -> dict[str, str]:
    wanted = set(addresses)
    if not wanted:
        return {}
    rows = await session.execute(
        select(MemberProfile.address, MemberProfile.name).where(MemberProfile.address.in_(wanted))
    )
    return {a: n for a, n in rows.tuples()}


async def _payable_sums(
    session: AsyncSession, obligors: list[str]
) -> list[tuple[str, int, int, int]]:
    """``(obligor, issued, outstanding, overdue)`` of the obligors that have payables."""
    p = m.Payable
    if session.get_bind().dialect.name == "postgresql":
        # NUMERIC sums are exact there, and the database does the work (20k payables: 190 ms
        # summed in Python, a few ms in SQL).
        unsettled = p.face_value - p.settled_value

        def total(value: Any, when: ColumnElement[bool]) -> Any:
            return type_coerce(func.coalesce(func.sum(case((when, value))), 0), Amount())

        rows = await session.execute(
            select(
                p.obligor,
                total(p.face_value, p.status != "cancelled"),
                total(unsettled, p.status.in_(OWED)),
                total(unsettled, p.status == "overdue"),
            )
            .where(p.obligor.in_(obligors))
            .group_by(p.obligor)
        )
        return [(o, int(a), int(b), int(c)) for o, a, b, c in rows.tuples()]
    # SQLite keeps amounts as text: exact only once they are Python ints.
    sums: dict[str, list[int]] = {}
    rows = await session.execute(
        select(p.obligor, p.face_value, p.settled_value, p.status).where(p.obligor.in_(obligors))
    )
    for obligor, face, settled, status in rows.tuples():
        entry = sums.setdefault(obligor, [0, 0, 0])
        if status != "cancelled":
            entry[0] += face
        if status in OWED:
            entry[1] += face - settled
            if status == "overdue":
                entry[2] += face - settled
    return [(o, v[0], v[1], v[2]) for o, v in sums.items()]


async def _obligor_rows(session: AsyncSession, obligors: list[str]) -> list[dict[str, Any]]:
    """The aggregate row of each obligor, in the order given."""
    if not obligors:
        return []
    book = {
        o: {"issued": 0, "outstanding": 0, "overdue": 0, "financed": 0, "program_limit": 0}
        for o in obligors
    }
    for obligor, issued, outstanding, overdue in await _payable_sums(session, obligors):
        book[obligor].update(issued=issued, outstanding=outstanding, overdue=overdue)
    exposures = await session.execute(
        select(m.Exposure.obligor, m.Exposure.outstanding).where(m.Exposure.obligor.in_(obligors))
    )
    for obligor, outstanding in exposures.tuples():
        book[obligor]["financed"] += outstanding
    accounts = await session.execute(
        select(m.ObligorAccount.obligor, m.ObligorAccount.program_limit).where(
            m.ObligorAccount.obligor.in_(obligors)
        )
    )
    for obligor, limit in accounts.tuples():
        book[obligor]["program_limit"] = limit
    names = await _names(session, obligors)
    return [
        {
            "obligor": o,
            "obligor_name": names.get(o),
            "financier": None,
            "exposure_limit": None,
            **book[o],
        }
        for o in obligors
    ]


async def _financier_rows(
    session: AsyncSession, financier: str, obligor: str | None
) -> list[dict[str, Any]]:
    query = select(m.Exposure).where(m.Exposure.financier == financier)
    if obligor is not None:
        query = query.where(m.Exposure.obligor == obligor)
    rows = list((await session.execute(query)).scalars())
    names = await _names(session, (r.obligor for r in rows))
    return [
        {
            "obligor": r.obligor,
            "obligor_name": names.get(r.obligor),
            "financier": r.financier,
            "program_limit": None,
            "issued": None,
            "outstanding": None,
            "overdue": None,
            "financed": r.outstanding,
            "exposure_limit": r.exposure_limit,
        }
        for r in rows
    ]


async def _all_obligors(
    session: AsyncSession, obligor: str | None, after: str | None, limit: int
) -> list[str]:
    """Every account that is an obligor of something, in address order (keyset page)."""
    known = union(
        select(m.ObligorAccount.obligor.label("obligor")),
        select(m.Payable.obligor.label("obligor")),
        select(m.Exposure.obligor.label("obligor")),
    ).subquery()
    query = select(known.c.obligor).order_by(known.c.obligor).limit(limit)
    if obligor is not None:
        query = query.where(known.c.obligor == obligor)
    if after is not None:
        query = query.where(known.c.obligor > after)
    return list((await session.execute(query)).scalars())


async def list_exposure(
    session: AsyncSession,
    caller: Caller,
    obligor: str | None,
    financier: str | None,
    after: Any,
    limit: int,
) -> list[dict[str, Any]]:
    """Exposure rows in (obligor, financier) order: see :class:`ExposurePublic`."""
    position = cursor_parts(after, str, str)
    if caller.sees_everything:
        if financier is None:
            # Aggregate rows only, so the keyset is the obligor and SQL pages it.
            return await _obligor_rows(
                session,
                await _all_obligors(session, obligor, position[0] if position else None, limit),
            )
        rows = await _financier_rows(session, financier, obligor)
    else:
        if financier is not None and financier != caller.address:
            raise Forbidden(
                "a financier reads its own exposure only", code="audit_account_forbidden"
            )
        is_core = caller.has(Role.CORE_ENTERPRISE)
        is_financier = caller.has(Role.FINANCIER)
        if not (is_core or is_financier):
            raise Forbidden(
                "exposure is the book of core enterprises and financiers (and auditors)",
                code="role_missing",
            )
        rows = []
        if is_core and financier is None and obligor in (None, caller.address):
            rows += await _obligor_rows(session, [caller.address])
        if is_financier:
            rows += await _financier_rows(session, caller.address, obligor)
    # A member's rows are few (its own obligor row, one per obligor it finances): page here.
    rows.sort(key=exposure_key)
    if position is not None:
        rows = [r for r in rows if tuple(exposure_key(r)) > position]
    return rows[:limit]


# -- reconciliation --------------------------------------------------------------------------


async def reconciliation(engine: AsyncEngine, rpc_url: str, limit: int) -> dict[str, Any]:
    """IX-5 against the node at the mirror's checkpoint; the first ``limit`` differences."""
    try:
        # A client waits on this answer: a few quick retries, not the indexer's patient eight
        # (a node that hangs would hold the request for minutes).
        async with RpcClient(rpc_url, timeout_s=30.0, retry=RECONCILE_RETRY) as rpc:
            report = await reconcile(engine, rpc)
    except NodeUnavailable as exc:
        raise ApiError(
            "the ledger node is unavailable; retry later", code="chain_unavailable", status=503
        ) from exc
    except (RpcError, DecodingError) as exc:
        # The node answered but not with the views at that block (pruned state, a node of
        # another chain): nothing a retry by the client fixes at once, yet not a client error.
        raise ApiError(
            "the node could not answer the contracts' views at the mirror's checkpoint",
            code="reconciliation_unavailable",
            status=503,
        ) from exc
    except IndexerError as exc:
        raise ApiError(
            "the mirror holds no checkpoint yet: the indexer has not run",
            code="mirror_empty",
            status=503,
        ) from exc
    body = report.as_dict()
    return {
        **body,
        "ok": report.ok,
        "differences": body["differences"][:limit],
        "differences_total": len(report.differences),
    }


# -- the audit log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilter:
    member: str | None = None
    method: str | None = None
    status: int | None = None
    code: str | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        _check_range(self.from_time, self.to_time, "time")
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


async def verify_log(engine: AsyncEngine) -> dict[str, Any]:
    result = await audit_log.verify(engine)
    return {
        "ok": result.ok,
        "records": result.records,
        "first_bad_seq": result.first_bad_seq,
        "reason": result.reason,
    }
