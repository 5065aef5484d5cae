"""Exposure per obligor (audit): a core enterprise's own book (issued, outstanding, overdue,
financed, its program limit) and a financier's own exposure (financed value outstanding per
obligor, its exposure limit); auditors and the operator read every row. No FastAPI in here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, type_coerce, union
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import Forbidden
from backend.models import MemberProfile
from backend.services.lists import cursor_parts
from db.types import Amount
from indexer import models as m
from ledger.roles import Role

#: Payable statuses whose unsettled face value is still owed.
OWED = ("issued", "overdue")


def exposure_key(item: dict[str, Any]) -> list[str]:
    return [item["obligor"], item["financier"] or ""]


async def _names(session: AsyncSession, addresses: Iterable[str]) -> dict[str, str]:
    wanted = set(addresses)
    if not wanted:
        return {}
    rows = await session.execute(
        select(MemberProfile.address, MemberProfile.name).where(MemberProfile.address.in_(wanted))
    )
    return {a: n for a, n in rows}


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
        return [(o, int(a), int(b), int(c)) for o, a, b, c in rows]
    # SQLite keeps amounts as text: exact only once they are Python ints.
    sums: dict[str, list[int]] = {}
    rows = await session.execute(
        select(p.obligor, p.face_value, p.settled_value, p.status).where(p.obligor.in_(obligors))
    )
    for obligor, face, settled, status in rows:
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
    for obligor, outstanding in exposures:
        book[obligor]["financed"] += outstanding
    accounts = await session.execute(
        select(m.ObligorAccount.obligor, m.ObligorAccount.program_limit).where(
            m.ObligorAccount.obligor.in_(obligors)
        )
    )
    for obligor, limit in accounts:
        book[obligor]["program_limit"] = limit
    names = await _names(session, obligors)
    return [
        {
            "obligor": o,
            "obligor_name": names.get(o),
            "financier": None,
            "exposure_limit": None,
            **book[o],
            "over_limit": book[o]["outstanding"] > book[o]["program_limit"],
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
            "over_limit": r.outstanding > r.exposure_limit,
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


async def book(session: AsyncSession, caller: Caller, limit: int) -> list[dict[str, Any]]:
    """Everything the caller may read of exposure on one screen (the console's chart): its
    obligor rows and the financiers' own rows (auditors and the operator: every obligor's
    and every financier's, at most ``limit`` obligors)."""
    if not caller.sees_everything:
        return await list_exposure(session, caller, None, None, None, limit)
    rows = await list_exposure(session, caller, None, None, None, limit)
    query = select(m.Exposure.financier).distinct().order_by(m.Exposure.financier)
    for financier in list((await session.execute(query)).scalars()):
        rows += await _financier_rows(session, financier, None)
    return rows
