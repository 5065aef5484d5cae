"""Auto-approval decisions (``auto_decisions``) that a financier's new settings undo."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import AutoDecision
from indexer import models as m


async def reconsider(session: AsyncSession, financier: str) -> None:
    """Forget the declined and failed auto-decisions on ``financier``'s pending requests, so
    they are assessed again under its new settings."""
    pending = select(m.Financing.id).where(
        m.Financing.financier == financier, m.Financing.status == "applied"
    )
    await session.execute(
        delete(AutoDecision).where(
            AutoDecision.financier == financier,
            AutoDecision.outcome.in_(("declined", "failed")),
            AutoDecision.financing_id.in_(pending),
        )
    )
