"""A financier's credit lines: its exposure limit per obligor on chain (the FinancingDesk's),
and the programme's registration number in the national registry (the API's table), which
auto-approval files the financings under. The glossary's "credit line" is the off-chain
record; its limit is the chain's "exposure limit". No FastAPI in here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import Forbidden
from backend.models import CreditLine
from backend.ports import Ports, WriteContext
from backend.schemas.common import iso
from backend.services.decisions import reconsider
from backend.services.tables import upsert
from db.engine import now_s
from indexer import models as m
from ledger import calls


def _line_view(
    financier: str, obligor: str, exposure: m.Exposure | None, line: CreditLine | None
) -> dict[str, Any]:
    limit = exposure.exposure_limit if exposure else (line.limit if line else 0)
    outstanding = exposure.outstanding if exposure else 0
    return {
        "financier": financier,
        "obligor": obligor,
        "limit": limit,
        "outstanding": outstanding,
        "available": max(0, limit - outstanding),
        "over_limit": outstanding > limit,
        "registration_no": line.registration_no if line else None,
        "updated_at": iso(line.updated_at) if line else None,
    }


def settings_owner(caller: Caller, financier: str | None) -> str:
    """Whose settings a read is about: the caller's own, or anyone's for auditors."""
    who = financier or caller.address
    if who != caller.address and not caller.sees_everything:
        raise Forbidden("a financier sees its own settings only", code="not_allowed")
    return who


async def set_credit_line(
    ports: Ports, write: WriteContext, obligor: str, limit: int, registration_no: str | None
) -> dict[str, Any]:
    """Set the exposure limit for ``obligor`` on chain; keep the programme's registration
    number (what auto-approval files the financings under) with the credit line."""
    caller = write.caller
    mined = await ports.ledger.submit(write, calls.set_exposure_limit(obligor, limit))
    values = {
        "financier": caller.address,
        "obligor": obligor,
        "limit": limit,
        "registration_no": registration_no,
        "updated_at": now_s(),
    }
    async with ports.session() as session:
        await upsert(session, CreditLine, values, ["financier", "obligor"])
        await reconsider(session, caller.address)
        await session.commit()
        exposure = await session.get(m.Exposure, (caller.address, obligor))
        line = await session.get(CreditLine, (caller.address, obligor))
        return {**_line_view(caller.address, obligor, exposure, line), **mined.written}


async def list_credit_lines(
    session: AsyncSession, caller: Caller, financier: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """A financier's credit lines in obligor order: its limits and outstanding exposure from
    the mirror (the chain's), its registration numbers from the API's table."""
    who = settings_owner(caller, financier)
    exposures = select(m.Exposure).where(m.Exposure.financier == who)
    lines = select(CreditLine).where(CreditLine.financier == who)
    if after:
        exposures = exposures.where(m.Exposure.obligor > after)
        lines = lines.where(CreditLine.obligor > after)
    by_exposure = {
        e.obligor: e
        for e in (await session.execute(exposures.order_by(m.Exposure.obligor).limit(limit)))
        .scalars()
        .all()
    }
    by_line = {
        c.obligor: c
        for c in (await session.execute(lines.order_by(CreditLine.obligor).limit(limit)))
        .scalars()
        .all()
    }
    obligors = sorted(set(by_exposure) | set(by_line))[:limit]
    return [_line_view(who, o, by_exposure.get(o), by_line.get(o)) for o in obligors]
