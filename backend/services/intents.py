"""A ``self`` member's intents as it may read them (SPEC §4, docs/consent.md): only its own,
an open one past its on-chain deadline shown as ``expired``. ``GET /v1/intents`` and the
console's home page both list through :func:`list_intents`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Caller
from backend.gateway.intents import intent_view
from backend.models import IntentRow


def shown(row: IntentRow, chain_time: int) -> dict[str, Any]:
    """The intent as the API answers it at ``chain_time``."""
    view = intent_view(row)
    if row.status == "open" and chain_time > row.deadline:
        view["status"] = "expired"
    return view


async def list_intents(
    session: AsyncSession,
    caller: Caller,
    chain_time: int,
    limit: int,
    status: str | None = None,
    after: str | None = None,
) -> list[dict[str, Any]]:
    """The caller's member's intents, oldest first; by default the open ones (an open one
    past its deadline counts as expired)."""
    query = (
        select(IntentRow)
        .where(IntentRow.member == caller.address)
        .order_by(IntentRow.id)
        .limit(limit)
    )
    wanted = status or "open"
    if wanted == "expired":
        query = query.where(
            (IntentRow.status == "expired")
            | ((IntentRow.status == "open") & (IntentRow.deadline < chain_time))
        )
    else:
        query = query.where(IntentRow.status == wanted)
        if wanted == "open":
            query = query.where(IntentRow.deadline >= chain_time)
    if after is not None:
        query = query.where(IntentRow.id > after)
    return [shown(r, chain_time) for r in (await session.execute(query)).scalars()]
