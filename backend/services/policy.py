"""A financier's auto-approval policy (what :mod:`backend.services.auto_approval` decides
by). No FastAPI in here."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.errors import NotFound
from backend.models import FinancingPolicy
from backend.ports import Ports, WriteContext
from backend.schemas.common import iso
from backend.services.credit_lines import settings_owner
from backend.services.decisions import reconsider
from backend.services.tables import upsert
from db.engine import now_s


def _policy_view(row: FinancingPolicy) -> dict[str, Any]:
    return {
        "financier": row.financier,
        "enabled": row.enabled,
        "max_amount": row.max_amount,
        "max_tenor_days": row.max_tenor_days,
        "allowed_obligors": json.loads(row.allowed_obligors),
        "annual_rate_bps": row.annual_rate_bps,
        "fee_bps": row.fee_bps,
        "recourse": row.recourse,
        "updated_at": iso(row.updated_at),
    }


async def put_policy(
    ports: Ports,
    write: WriteContext,
    enabled: bool,
    max_amount: int,
    max_tenor_days: int,
    allowed_obligors: list[str],
    annual_rate_bps: int,
    fee_bps: int,
    recourse: bool,
) -> dict[str, Any]:
    """Replace the caller's auto-approval policy; pending requests are assessed again."""
    financier = write.caller.address
    values = {
        "financier": financier,
        "enabled": enabled,
        "max_amount": max_amount,
        "max_tenor_days": max_tenor_days,
        "allowed_obligors": json.dumps(allowed_obligors),
        "annual_rate_bps": annual_rate_bps,
        "fee_bps": fee_bps,
        "recourse": recourse,
        "updated_at": now_s(),
    }
    async with ports.session() as session:
        await upsert(session, FinancingPolicy, values, ["financier"])
        await reconsider(session, financier)
        await session.commit()
        row = await session.get(FinancingPolicy, financier)
        assert row is not None
        return _policy_view(row)


async def get_policy(
    session: AsyncSession, caller: Caller, financier: str | None
) -> dict[str, Any]:
    who = settings_owner(caller, financier)
    row = await session.get(FinancingPolicy, who)
    if row is None:
        raise NotFound("no auto-approval policy is set", code="financing_policy_not_found")
    return _policy_view(row)
