"""Fan-out: the mirror's outbox entries become deliveries, one per endpoint that may see each.

One transaction per step, holding the cursor row (``webhook_cursor``): dispatchers running
at once take turns and never queue an entry twice. For each entry after the cursor, an
endpoint gets a delivery when

- it is not deleted and was registered before the entry was mirrored (``from_seq``);
- it asked for the event's type (or ``*``; a retraction follows its event's type);
- its owner may see the event, by the API's own rule (:func:`backend.services.events_feed.
  visible_events`) evaluated on the mirror: an event a reorganisation removed before this
  step is no longer there, so it is sent to no one;
- for a retraction (``<Event>Reverted``): the endpoint had a delivery of the event. If that
  delivery was never attempted it is cancelled instead, and the retraction not queued.

An event one may see can be about an object one may not read: a financing's request is in
the lineage tree its supplier sees, but the financing is the applicant's and the financier's.
Such a delivery carries ``"object": null``, as the events feed carries no object at all; the
object goes only to an owner who may read it (``GET`` would answer it), by the API's rules
(:mod:`backend.services.visibility`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth import _ROLE_BY_ID, Caller
from backend.models import WebhookCursor, WebhookDelivery, WebhookEndpoint
from backend.services import visibility
from backend.services.events_feed import visible_events_of
from db.engine import now_ms
from db.types import table_of
from indexer import models as m

_O = table_of(m.OutboxEntry)
_E = table_of(m.Event)
_D = table_of(WebhookDelivery)
_W = table_of(WebhookEndpoint)
_C = table_of(WebhookCursor)


def body_of(entry: Any, with_object: bool = True) -> str:
    """A delivery's JSON body: ``id``, ``type``, ``created_at`` (the block's time), ``data``;
    without the object (``null``) for an owner who may not read it."""
    created = datetime.fromtimestamp(entry.block_time, UTC).isoformat().replace("+00:00", "Z")
    data = entry.data
    if not with_object:
        parsed = json.loads(data)
        parsed["object"] = None
        data = json.dumps(parsed, separators=(",", ":"))
    return (
        f'{{"id":"{entry.event_id}","type":{json.dumps(entry.event)},'
        f'"created_at":"{created}","data":{data}}}'
    )


def wants(event_types: list[str], entry: Any) -> bool:
    if "*" in event_types:
        return True
    name = entry.event
    if entry.kind == "reverted":
        return name in event_types or name.removesuffix("Reverted") in event_types
    return bool(name in event_types)


async def _lock_cursor(conn: AsyncConnection) -> int:
    """The cursor, locked for this transaction (made on first use)."""
    if conn.dialect.name == "sqlite":
        # Take SQLite's write lock now (a read first would let two dispatchers both read).
        await conn.execute(update(_C).where(_C.c.id == 1).values(seq=_C.c.seq))
        found = (await conn.execute(select(_C.c.seq).where(_C.c.id == 1))).first()
    else:
        found = (await conn.execute(select(_C.c.seq).where(_C.c.id == 1).with_for_update())).first()
    if found is not None:
        return int(found.seq)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await conn.execute(pg_insert(_C).values(id=1, seq=0).on_conflict_do_nothing())
        found = (await conn.execute(select(_C.c.seq).where(_C.c.id == 1).with_for_update())).first()
        return int(found.seq) if found is not None else 0
    await conn.execute(insert(_C).values(id=1, seq=0))
    return 0


async def _callers(conn: AsyncConnection, owners: set[str]) -> dict[str, Caller]:
    """Each owner as the API would see it calling (roles from the chain, via the mirror)."""
    grants = await conn.execute(
        select(m.RoleGrant.account, m.RoleGrant.role).where(m.RoleGrant.account.in_(owners))
    )
    roles: dict[str, set[Any]] = defaultdict(set)
    for g in grants:
        if g.role in _ROLE_BY_ID:
            roles[g.account].add(_ROLE_BY_ID[g.role])
    return {o: Caller(o, frozenset(roles[o]), "active", "webhook") for o in owners}


def _object_flags(me: Any) -> tuple[Any, ...]:
    """Whether the member ``me`` may read what an event row names in each object column (the
    API's rule for a ``GET`` of it): an entry's object is one of these, or a member or
    contract, which anyone may read."""
    e = _E.c
    return (
        e.claim_id.in_(select(m.Claim.id).where(visibility.claims_of_party(me))),
        e.payable_id.in_(select(m.Payable.id).where(visibility.payables_of_party(me))),
        e.financing_id.in_(select(m.Financing.id).where(visibility.financings_of_party(me))),
        e.invoice_id.in_(select(m.Invoice.id).where(visibility.invoices_of_party(me))),
    )


#: The kinds of :func:`_object_flags`, in its order.
_FLAGGED = ("claim", "payable", "financing", "invoice")
_EVERY_KIND = frozenset(_FLAGGED)

#: The events of blocks ``lo``–``hi`` the member ``me`` may read, with its object flags: built
#: once (building the rule's expression anew for each owner and batch cost more than running
#: it).
_MEMBER_VISIBLE = select(
    _E.c.block_number, _E.c.log_index, _E.c.block_hash, *_object_flags(bindparam("me"))
).where(
    _E.c.block_number >= bindparam("lo"),
    _E.c.block_number <= bindparam("hi"),
    visible_events_of(bindparam("me")),
)
_ANY_VISIBLE = select(_E.c.block_number, _E.c.log_index, _E.c.block_hash).where(
    _E.c.block_number >= bindparam("lo"), _E.c.block_number <= bindparam("hi")
)


async def _visible(
    conn: AsyncConnection, caller: Caller, lo: int, hi: int
) -> dict[tuple[int, int, str], frozenset[str]]:
    """The mirrored events of blocks ``lo``–``hi`` the caller may read, each with the kinds of
    object it names that the caller may read too."""
    if caller.sees_everything:
        found = await conn.execute(_ANY_VISIBLE, {"lo": lo, "hi": hi})
        return {(r[0], r[1], r[2]): _EVERY_KIND for r in found}
    found = await conn.execute(_MEMBER_VISIBLE, {"me": caller.address, "lo": lo, "hi": hi})
    return {
        (r[0], r[1], r[2]): frozenset(k for i, k in enumerate(_FLAGGED, 3) if r[i]) for r in found
    }


#: An object key's kind → (id column, the rule of who may read it, the key's id as stored).
_READABLE: dict[str, tuple[Any, Any, Any]] = {
    "claim": (m.Claim.id, visibility.claims_clause, int),
    "payable": (m.Payable.id, visibility.payables_clause, int),
    "financing": (m.Financing.id, visibility.financings_clause, int),
    "invoice": (m.Invoice.id, visibility.invoices_clause, str),
}


async def _readable(conn: AsyncConnection, caller: Caller, keys: set[str]) -> set[str]:
    """The object keys among ``keys`` whose object ``caller`` may read (members and contracts
    are anyone's; an object no longer mirrored is no one's): for retractions, whose events
    are no longer mirrored."""
    if caller.sees_everything:
        return set(keys)
    wanted: dict[str, set[Any]] = defaultdict(set)
    readable = set()
    for key in keys:
        kind, _, ident = key.partition(":")
        if kind in _READABLE:
            wanted[kind].add(_READABLE[kind][2](ident))
        else:
            readable.add(key)
    for kind, ids in wanted.items():
        column, clause, _ = _READABLE[kind]
        found = await conn.execute(select(column).where(column.in_(ids), clause(caller)))
        readable.update(f"{kind}:{ident}" for (ident,) in found)
    return readable


#: An entry past the cursor (none made yet: the cursor is 0).
_NEW = (
    select(_O.c.seq)
    .where(_O.c.seq > func.coalesce(select(_C.c.seq).where(_C.c.id == 1).scalar_subquery(), 0))
    .limit(1)
)


async def _anything_new(conn: AsyncConnection) -> bool:
    """Whether the outbox holds an entry past the cursor: one read, no lock."""
    return (await conn.execute(_NEW)).first() is not None


async def fan_out(engine: AsyncEngine, limit: int = 1000) -> int:
    """Queue the next outbox entries (at most ``limit``); answers how many were consumed.

    The cursor is locked only when there is something to queue. A dispatcher looks every
    ``TIERFLOW_WEBHOOKS_POLL_S`` (50 ms), mostly to find nothing; locking first took SQLite's
    one write lock twenty times a second per dispatcher, idle or not, in the way of the API's
    and the indexer's writes (and a row lock in PostgreSQL). An entry mirrored after the
    look is found by the next one."""
    async with engine.connect() as conn:
        if not await _anything_new(conn):
            return 0
    async with engine.begin() as conn:
        cursor = await _lock_cursor(conn)
        entries = (
            await conn.execute(select(_O).where(_O.c.seq > cursor).order_by(_O.c.seq).limit(limit))
        ).all()
        if not entries:
            return 0
        endpoints = (await conn.execute(select(_W).where(_W.c.status != "deleted"))).all()
        rows: list[dict[str, Any]] = []
        now = now_ms()
        if endpoints:
            rows = await _deliveries(conn, entries, endpoints, now)
        if rows:
            await conn.execute(insert(_D), rows)
        await conn.execute(update(_C).where(_C.c.id == 1).values(seq=entries[-1].seq))
        return len(entries)


async def _deliveries(
    conn: AsyncConnection, entries: Sequence[Any], endpoints: Sequence[Any], now: int
) -> list[dict[str, Any]]:
    callers = await _callers(conn, {e.owner for e in endpoints})
    events = [e for e in entries if e.kind == "event" and not e.reverted]
    lo = min((e.block_number for e in events), default=0)
    hi = max((e.block_number for e in events), default=-1)
    visible: dict[str, dict[tuple[int, int, str], frozenset[str]]] = {}
    retractions = [e for e in entries if e.kind == "reverted"]
    earlier: dict[tuple[str, int], Any] = {}
    if retractions:
        found = await conn.execute(
            select(
                _D.c.id, _D.c.endpoint_id, _D.c.seq, _D.c.attempts, _D.c.status, _D.c.lease_until
            ).where(_D.c.seq.in_([r.reverts for r in retractions]))
        )
        earlier = {(d.endpoint_id, d.seq): d for d in found}
    queued: list[tuple[Any, Any, bool | None]] = []  # endpoint, entry, its object readable
    for endpoint in endpoints:
        types = json.loads(endpoint.event_types)
        for entry in entries:
            if entry.seq <= endpoint.from_seq or not wants(types, entry):
                continue
            if entry.kind == "reverted":
                original = earlier.get((endpoint.id, entry.reverts))
                if original is None or original.status == "cancelled":
                    continue
                never_sent = (
                    original.status == "pending"
                    and original.attempts == 0
                    and original.lease_until < now
                )
                if never_sent and await _cancel(conn, original.id, now):
                    continue
                queued.append((endpoint, entry, None))  # readable: asked below
            else:
                if entry.reverted:
                    continue  # removed by a reorganisation before it was queued
                if endpoint.owner not in visible:
                    visible[endpoint.owner] = await _visible(conn, callers[endpoint.owner], lo, hi)
                kinds = visible[endpoint.owner].get(
                    (entry.block_number, entry.log_index, entry.block_hash)
                )
                if kinds is None:
                    continue
                kind = entry.object_key.partition(":")[0]
                queued.append((endpoint, entry, kind in kinds or kind not in _EVERY_KIND))
    retracted: dict[str, set[str]] = {}
    for owner in {endpoint.owner for endpoint, _, readable in queued if readable is None}:
        keys = {e.object_key for w, e, r in queued if r is None and w.owner == owner}
        retracted[owner] = await _readable(conn, callers[owner], keys)
    rows: list[dict[str, Any]] = []
    for endpoint, entry, readable in queued:
        if readable is None:
            readable = entry.object_key in retracted[endpoint.owner]
        rows.append(
            {
                "endpoint_id": endpoint.id,
                "seq": entry.seq,
                "event_id": entry.event_id,
                "event_type": entry.event,
                "object_key": entry.object_key,
                "body": body_of(entry, readable),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": 0,
                "lease_owner": None,
                "created_at": now,
                "block_time": entry.block_time,
                "delivered_at": None,
                "last_status_code": None,
                "last_error": None,
            }
        )
    return rows


async def _cancel(conn: AsyncConnection, delivery_id: int, now: int) -> bool:
    """Cancel a delivery no dispatcher has started (False: one took it meanwhile)."""
    result = await conn.execute(
        update(_D)
        .where(
            _D.c.id == delivery_id,
            _D.c.attempts == 0,
            _D.c.status == "pending",
            _D.c.lease_until < now,
        )
        .values(status="cancelled", last_error="removed by a chain reorganisation before sent")
    )
    return bool(result.rowcount == 1)
