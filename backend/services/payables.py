"""Payables: issue (the obligor), cancel (the supplier declines), mark overdue (anyone),
settlement of pieces (the obligor or its clearing agent), reads and the lineage tree.

Settlement. The body lists pieces of this payable with the text of each bank payment's
reference; the chain keeps the reference's SHA-256. One piece goes as ``settleClaim``, several
as one ``settleClaims`` (all or nothing, at most ``MAX_SETTLEMENT_BATCH``). Piece ids are
global on chain, so a piece of another payable in the list is refused here (422
``claim_not_in_payable``) rather than settled under the wrong URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Integer, Row, String, bindparam, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import Forbidden, Invalid, NotFound
from backend.models import MemberProfile
from backend.ports import LedgerPort, Mined, Ports, WriteContext
from backend.schemas.common import iso
from backend.schemas.payables import MAX_COMPACT_PAGE, MAX_TREE_LEVELS
from backend.services.encodings import sha256_text
from backend.services.lists import cursor_parts
from backend.services.visibility import (
    PayableRow,
    payables_clause_of_me,
    require_payable,
    tree_visible,
)
from db.types import table_of
from indexer import models as m
from indexer.handlers.payables import payable_from
from indexer.rows import as_record
from ledger import calls
from ledger.errors import ChainUnavailableError

#: A page's invoice ids, built once (an expanding parameter for the page's payable ids).
_INVOICE_IDS = (
    select(m.PayableInvoice.payable_id, m.PayableInvoice.invoice_id)
    .where(m.PayableInvoice.payable_id.in_(bindparam("ids", expanding=True)))
    .order_by(m.PayableInvoice.payable_id, m.PayableInvoice.position)
)


async def _invoice_ids(session: AsyncSession, payable_ids: list[int]) -> dict[int, list[str]]:
    if not payable_ids:
        return {}
    conn = await session.connection()
    rows = await conn.execute(_INVOICE_IDS, {"ids": payable_ids})
    out: dict[int, list[str]] = defaultdict(list)
    for payable_id, invoice_id in rows:
        out[payable_id].append(invoice_id)
    return out


def _view(row: PayableRow, invoice_ids: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "obligor": row.obligor,
        "supplier": row.supplier,
        "face_value": row.face_value,
        "settled_value": row.settled_value,
        "outstanding_value": row.face_value - row.settled_value,
        "due_date": iso(row.due_date),
        "issued_at": iso(row.issued_at),
        "invoice_ids": invoice_ids,
        "clearing_agent": row.clearing_agent,
        "status": row.status,
        "root_claim_id": row.root_claim_id,
        "long_term": row.long_term,
        "issued_block": row.issued_block,
    }


async def payable_view(session: AsyncSession, row: PayableRow) -> dict[str, Any]:
    return _view(row, (await _invoice_ids(session, [row.id])).get(row.id, []))


@cache
def _list_query(
    everything: bool,
    newest_first: bool,
    after: bool,
    status: bool,
    obligor: bool,
    supplier: bool,
) -> Any:
    """The list's statement for one combination of filters, built once with bound parameters
    (``me``, ``limit``, ``after``, ``status``, ``obligor``, ``supplier``): a statement built
    per request, with the visibility rule's subqueries in it, cost more to build and to key
    for the statement cache than to run (a list read's largest cost, by py-spy)."""
    order = m.Payable.id.desc() if newest_first else m.Payable.id
    # The table's columns, not the ORM's entity: run on the session's Core connection, the
    # page's rows need no ORM loading (read by column name, as visibility.require_payable's).
    query = select(*table_of(m.Payable).c).order_by(order).limit(bindparam("limit", type_=Integer))
    if not everything:
        query = query.where(payables_clause_of_me())
    if after:
        cursor: Any = bindparam("after")
        query = query.where(m.Payable.id < cursor if newest_first else m.Payable.id > cursor)
    if status:
        query = query.where(m.Payable.status == bindparam("status"))
    if obligor:
        query = query.where(m.Payable.obligor == bindparam("obligor"))
    if supplier:
        query = query.where(m.Payable.supplier == bindparam("supplier"))
    return query


async def list_payables(
    session: AsyncSession,
    caller: Caller,
    after: Any,
    limit: int,
    status: str | None = None,
    obligor: str | None = None,
    supplier: str | None = None,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """The payables the caller may see, in issue order (the newest first if asked)."""
    cursor = cursor_parts(after, int)
    everything = caller.sees_everything
    query = _list_query(
        everything, newest_first, cursor is not None, bool(status), bool(obligor), bool(supplier)
    )
    params: dict[str, Any] = {"limit": limit}
    if not everything:
        params["me"] = caller.address
    if cursor is not None:
        params["after"] = cursor[0]
    if status:
        params["status"] = status
    if obligor:
        params["obligor"] = obligor
    if supplier:
        params["supplier"] = supplier
    conn = await session.connection()
    rows = list(await conn.execute(query, params))
    invoices = await _invoice_ids(session, [r.id for r in rows])
    return [_view(r, invoices.get(r.id, [])) for r in rows]


async def get_payable(session: AsyncSession, caller: Caller, payable_id: int) -> dict[str, Any]:
    return await payable_view(session, await require_payable(session, caller, payable_id))


log = logging.getLogger(__name__)

#: How long a read waits for the chain's overdue clock before answering without it.
OVERDUE_CLOCK_TIMEOUT_S = 2.0

#: Statuses whose overdue clock still means something (a settled or cancelled payable has none).
_CLOCKED = ("issued", "overdue")


async def with_overdue_from(
    ledger: LedgerPort, views: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Add ``overdue_from`` to payable views: the chain's ``overdueFrom`` (due date + grace +
    the time a freeze or pause stopped the clock, SPEC §2) read at the latest block, for
    issued and overdue payables; ``None`` for settled and cancelled ones. Read from the chain
    rather than mirrored: only payables already past due need a call (docs/api.md). When the
    node is down or slower than ``OVERDUE_CLOCK_TIMEOUT_S`` the views are answered with
    ``overdue_from`` null: the mirror's reads go on without the node."""
    due_dates = {v["id"]: int(v["due_date"].timestamp()) for v in views if v["status"] in _CLOCKED}
    try:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that
        # comes as the clock arrives.
        async with asyncio.timeout(OVERDUE_CLOCK_TIMEOUT_S):
            clock = await ledger.overdue_from(due_dates)
    except (ChainUnavailableError, TimeoutError) as exc:
        # The rest of a payable is the mirror's and still true without the node: answer it,
        # with the clock unknown (null) rather than a 503 for the whole read or a guess.
        log.warning("overdue_from left out, node unavailable: %s: %s", type(exc).__name__, exc)
        clock = {}
    for v in views:
        v["overdue_from"] = iso(clock.get(v["id"]))
    return views


async def _after_write(
    ports: Ports, caller: Caller, payable_id: int, mined: Mined, status: str | None
) -> dict[str, Any]:
    async with ports.session() as session:
        view = await get_payable(session, caller, payable_id)
    if status is not None and not mined.mirrored:
        view["status"] = status  # what the mined event says, while the mirror catches up
    return {**view, **mined.written}


async def issue(
    ports: Ports,
    write: WriteContext,
    supplier: str,
    face_value: int,
    due_date: int,
    invoice_ids: list[str],
    clearing_agent: str | None,
) -> dict[str, Any]:
    """Issue a payable from the caller to ``supplier``; the ids come from PayableIssued."""
    call = calls.issue_payable(supplier, face_value, due_date, invoice_ids, clearing_agent)
    mined = await ports.ledger.submit(write, call)
    issued = mined.event("ClaimLedger:PayableIssued")
    async with ports.session() as session:
        row = await session.get(m.Payable, issued.args["payableId"])
        if row is not None:
            return {**await payable_view(session, row), **mined.written}
    # The mirror is late (its bounded wait passed): answer from the event itself.
    issued_at = await ports.ledger.block_time(mined.block_number)
    record = as_record(payable_from(issued, issued_at))
    return {**_view(record, list(issued.args["invoiceIds"])), **mined.written}


async def cancel(ports: Ports, write: WriteContext, payable_id: int) -> dict[str, Any]:
    """The supplier declines a payable whose root piece it still holds untouched."""
    async with ports.session() as session:
        await require_payable(session, write.caller, payable_id)
    mined = await ports.ledger.submit(write, calls.cancel_payable(payable_id))
    return await _after_write(ports, write.caller, payable_id, mined, "cancelled")


async def mark_overdue(ports: Ports, write: WriteContext, payable_id: int) -> dict[str, Any]:
    """Mark the payable Overdue (the chain allows it once due date + grace has passed, not
    counting time the platform was paused or a piece of the payable frozen: SPEC §2)."""
    async with ports.session() as session:
        await require_payable(session, write.caller, payable_id)
    mined = await ports.ledger.submit(write, calls.mark_overdue(payable_id))
    out = await _after_write(ports, write.caller, payable_id, mined, "overdue")
    out["unsettled_value"] = mined.event("ClaimLedger:PayableOverdue").args["unsettledValue"]
    return out


async def settle(
    ports: Ports, write: WriteContext, payable_id: int, items: list[dict[str, Any]]
) -> dict[str, Any]:
    """Record that the holders of the listed pieces were paid (see the module docstring);
    ``items`` are ``{"claim_id", "payment_ref"}``."""
    ids = [int(item["claim_id"]) for item in items]
    async with ports.session() as session:
        await require_payable(session, write.caller, payable_id)
        found = set(
            (
                await session.execute(
                    select(m.Claim.id).where(m.Claim.id.in_(ids), m.Claim.payable_id == payable_id)
                )
            ).scalars()
        )
    strangers = [i for i in ids if i not in found]
    if strangers:
        raise Invalid(
            f"not pieces of payable {payable_id}: {', '.join(map(str, strangers[:10]))}",
            code="claim_not_in_payable",
            extra={"claim_ids": strangers},
        )
    refs = [sha256_text(item["payment_ref"]) for item in items]
    call = calls.settle_claim(ids[0], refs[0]) if len(ids) == 1 else calls.settle_claims(ids, refs)
    mined = await ports.ledger.submit(write, call)
    settled = [
        {
            "claim_id": ev.args["claimId"],
            "holder": ev.args["holder"],
            "amount": ev.args["value"],
            "payment_ref_sha256": ev.args["paymentRef"],
        }
        for ev in mined.all("ClaimLedger:ClaimSettled")
    ]
    done = bool(mined.all("ClaimLedger:PayableSettled"))
    async with ports.session() as session:  # the payable as the write left it
        view = await get_payable(session, write.caller, payable_id)
    if done and not mined.mirrored:
        view["status"] = "settled"
    return {
        "payable": view,
        "settlements": settled,
        "payable_settled": done,
        **mined.written,
    }


# -- the lineage tree ------------------------------------------------------------------------


#: The tree's rows: the columns a node shows, not whole ORM objects (a tree may be thousands
#: of pieces), with their holders' custody joined in (``hosted`` where the platform knows no
#: profile, as :func:`backend.services.members.custody_of` answers); built once, so its cache
#: key is memoised, and run as Core (no ORM pass over the rows).
_TREE_ROWS = (
    select(
        m.Claim.id,
        m.Claim.parent_id,
        m.Claim.depth,
        m.Claim.holder,
        func.coalesce(MemberProfile.custody, "hosted").label("holder_custody"),
        m.Claim.amount,
        m.Claim.locked_amount,
        m.Claim.status,
        m.Claim.invoice_id,
    )
    .select_from(m.Claim)
    .outerjoin(MemberProfile, MemberProfile.address == m.Claim.holder)
    .where(m.Claim.payable_id == bindparam("payable_id"))
    .order_by(m.Claim.id)
)


def _node(row: Row[Any], child_count: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "parent_id": row.parent_id,
        "depth": row.depth,
        "holder": row.holder,
        "holder_custody": row.holder_custody,
        "amount": row.amount,
        "locked_amount": row.locked_amount,
        "status": row.status,
        "invoice_id": row.invoice_id,
        "child_count": child_count,
        "truncated": False,
        "children": [],
    }


async def require_tree(session: AsyncSession, caller: Caller, payable_id: int) -> PayableRow:
    """The payable, if ``caller`` may see its whole tree (404 if it may not see the payable at
    all, 403 if it sees the payable but not every branch of the tree)."""
    payable = await require_payable(session, caller, payable_id)
    if not tree_visible(caller, payable):
        raise Forbidden(
            "the whole lineage tree is for the payable's obligor, supplier, clearing agent "
            "and auditors: see your own pieces under /v1/claims",
            code="tree_not_visible",
        )
    return payable


async def tree(
    session: AsyncSession,
    caller: Caller,
    payable_id: int,
    from_claim_id: int | None = None,
    levels: int = MAX_TREE_LEVELS,
) -> dict[str, Any]:
    """The payable's pieces nested under their parents, from ``from_claim_id`` (the root by
    default) down ``levels`` levels; a node at the cut is ``truncated`` (its ``child_count``
    says what is left out). Only the payable's own parties and auditors see it."""
    payable = await require_tree(session, caller, payable_id)
    conn = await session.connection()
    found = await conn.execute(_TREE_ROWS, {"payable_id": payable_id})
    rows = cast("Sequence[Row[Any]]", found.all())
    children: dict[int, list[Row[Any]]] = defaultdict(list)
    by_id: dict[int, Row[Any]] = {}
    for row in rows:
        by_id[row.id] = row
        if row.parent_id is not None:
            children[row.parent_id].append(row)
    start_id = payable.root_claim_id if from_claim_id is None else from_claim_id
    start = by_id.get(start_id)
    if start is None:
        raise NotFound(f"payable {payable_id} has no piece {start_id}", code="claim_not_found")
    # Built without recursion: a chain of splits may be far deeper than Python's stack.
    root = _node(start, len(children[start.id]))
    stack: list[tuple[Row[Any], dict[str, Any], int]] = [(start, root, 0)]
    count = 1
    while stack:
        row, node, level = stack.pop()
        kids = children.get(row.id, [])
        if not kids:
            continue
        if level >= levels:
            node["truncated"] = True
            continue
        for kid in kids:
            child = _node(kid, len(children.get(kid.id, [])))
            node["children"].append(child)
            stack.append((kid, child, level + 1))
            count += 1
    return {"payable_id": payable_id, "from_claim_id": start.id, "node_count": count, "root": root}


#: The compact tree's columns, in the order of :class:`backend.schemas.payables.TreeColumns`.
COMPACT_COLUMNS = (
    "id",
    "parent_id",
    "depth",
    "holder",
    "holder_custody",
    "amount",
    "locked_amount",
    "status",
    "invoice_id",
    "child_count",
)


#: The compact tree's rows: the pieces' columns with their holders' custody joined in (one
#: statement, not a second one with thousands of addresses bound), amounts as the database
#: holds them (text on SQLite, NUMERIC on PostgreSQL: no type processor per value; converted
#: column-wise once the page is picked).
_COMPACT_ROWS = (
    select(
        m.Claim.id,
        m.Claim.parent_id,
        m.Claim.depth,
        m.Claim.holder,
        func.coalesce(MemberProfile.custody, "hosted"),
        type_coerce(m.Claim.amount, String),
        type_coerce(m.Claim.locked_amount, String),
        m.Claim.status,
        m.Claim.invoice_id,
    )
    .select_from(m.Claim)
    .outerjoin(MemberProfile, MemberProfile.address == m.Claim.holder)
    .where(m.Claim.payable_id == bindparam("payable_id"))
    .order_by(m.Claim.id)
)


async def tree_compact(
    session: AsyncSession,
    caller: Caller,
    payable_id: int,
    from_claim_id: int | None = None,
    levels: int = MAX_TREE_LEVELS,
    first_level: int = 0,
    page_size: int = MAX_COMPACT_PAGE,
) -> dict[str, Any]:
    """:func:`tree` as columns (``format=compact``), one page of whole levels: from
    ``first_level`` below the start, as many levels as fit in ``page_size`` pieces (at least
    one), down to ``levels``; ``next_level`` is the next page's first level (None: the last
    page). The same visibility as :func:`tree`.

    Read through the session's Core connection (plain tuples, no ORM loading), transposed
    into columns in C, and the page picked by position: nothing is done per piece in Python
    but the child lists and the amounts' ``int``."""
    payable = await require_tree(session, caller, payable_id)
    conn = await session.connection()
    result = await conn.execute(_COMPACT_ROWS, {"payable_id": payable_id})
    table: list[tuple[Any, ...]] = list(zip(*result.all(), strict=True))
    if not table:
        raise NotFound(f"payable {payable_id} has no pieces", code="claim_not_found")
    ids, parents = table[0], table[1]
    position = {claim_id: i for i, claim_id in enumerate(ids)}
    kids: dict[int, list[int]] = defaultdict(list)
    for i, parent in enumerate(parents):
        if parent is not None:
            kids[parent].append(i)  # in id order: the rows are
    start_id = payable.root_claim_id if from_claim_id is None else from_claim_id
    if start_id not in position:
        raise NotFound(f"payable {payable_id} has no piece {start_id}", code="claim_not_found")
    level_rows = [position[start_id]]
    level = 0
    while level < first_level and level_rows:
        level_rows = [k for i in level_rows for k in kids.get(ids[i], ())]
        level += 1
    page: list[int] = []
    last = first_level
    while level_rows and level <= levels:
        if page and len(page) + len(level_rows) > page_size:
            break
        page.extend(level_rows)
        last = level
        level_rows = [k for i in level_rows for k in kids.get(ids[i], ())]
        level += 1
    more = bool(level_rows) and level <= levels and bool(page)
    if len(page) == len(ids) and page == list(range(len(ids))):
        picked = [list(column) for column in table]
    else:
        pick = itemgetter(*page)
        picked = [list(pick(column)) if len(page) > 1 else [column[page[0]]] for column in table]
    page_ids = picked[0]
    columns: dict[str, list[Any]] = {
        "id": page_ids,
        "parent_id": picked[1],
        "depth": picked[2],
        "holder": picked[3],
        "holder_custody": picked[4],
        "amount": list(map(int, picked[5])),
        "locked_amount": list(map(int, picked[6])),
        "status": picked[7],
        "invoice_id": picked[8],
        "child_count": [len(kids.get(i, ())) for i in page_ids],
    }
    return {
        "payable_id": payable_id,
        "from_claim_id": start_id,
        "format": "compact",
        "first_level": first_level,
        "last_level": last,
        "node_count": len(page),
        "columns": columns,
        "next_level": last + 1 if more else None,
    }
