"""How long the webhooks' rows are kept: the outbox, finished deliveries and their attempts.

Every mirrored event gets an outbox entry and every entry a delivery per endpoint that may see
it, each with its attempts: without an end the three tables grow with the chain forever.
After ``TIERFLOW_WEBHOOKS_RETAIN_DAYS`` (30 by default, as long as a delivery can be listed
and redelivered by its owner) a dispatcher deletes, a batch at a time, each in its own short
transaction:

- outbox entries already fanned out (``seq`` below the fan-out cursor: never the entry at the
  cursor, so SQLite never hands out a ``seq`` again that the cursor has passed) whose block is
  older than the retention;
- deliveries that are finished (``succeeded``, ``failed``, ``cancelled``: never a pending
  one) and were queued before it, with their attempts.

The retention must outlast the retries (``TIERFLOW_WEBHOOKS_RETRY_FOR_S``, checked at start)
and any reorganisation the indexer follows (days against a window of blocks): a retraction
needs the original entry and the delivery it retracts. The mirror's events themselves
(``events``, the audit feed) are never deleted here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.models import WebhookAttempt, WebhookCursor, WebhookDelivery
from db.types import table_of
from indexer import models as m

_O = table_of(m.OutboxEntry)
_D = table_of(WebhookDelivery)
_A = table_of(WebhookAttempt)
_C = table_of(WebhookCursor)

#: Rows deleted per transaction (each batch a short write, so fan-out and the indexer wait
#: at most one batch for SQLite's write lock).
BATCH = 500
#: Deliveries in these states are done with: their rows may go once old enough.
FINISHED = ("succeeded", "failed", "cancelled")
DAY_S = 86_400


@dataclass
class Pruned:
    outbox: int = 0
    deliveries: int = 0
    attempts: int = 0

    @property
    def rows(self) -> int:
        return self.outbox + self.deliveries + self.attempts


async def prune(
    engine: AsyncEngine, retain_s: float, now_ms: int, batch: int = BATCH, max_batches: int = 100
) -> Pruned:
    """Delete what is older than ``retain_s`` (see the module docstring), at most
    ``max_batches`` batches of each table in this call (the next call goes on)."""
    out = Pruned()
    before_s = now_ms // 1000 - int(retain_s)
    for _ in range(max_batches):
        async with engine.begin() as conn:
            cursor = (await conn.execute(select(_C.c.seq).where(_C.c.id == 1))).scalar()
            if not cursor:
                break
            old = (
                select(_O.c.seq)
                .where(_O.c.seq < cursor, _O.c.block_time < before_s)
                .order_by(_O.c.seq)
                .limit(batch)
                .scalar_subquery()
            )
            gone = (await conn.execute(delete(_O).where(_O.c.seq.in_(old)))).rowcount or 0
        out.outbox += gone
        if gone < batch:
            break
    for _ in range(max_batches):
        async with engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        select(_D.c.id)
                        .where(_D.c.status.in_(FINISHED), _D.c.created_at < before_s * 1000)
                        .order_by(_D.c.id)
                        .limit(batch)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            # The deliveries first (still finished: a redelivery meanwhile keeps its row),
            # then the attempts of those that are gone.
            deliveries = await conn.execute(
                delete(_D).where(_D.c.id.in_(ids), _D.c.status.in_(FINISHED))
            )
            attempts = await conn.execute(
                delete(_A).where(
                    _A.c.delivery_id.in_(ids),
                    ~exists().where(_D.c.id == _A.c.delivery_id),
                )
            )
        out.attempts += attempts.rowcount or 0
        out.deliveries += deliveries.rowcount or 0
        if len(ids) < batch:
            break
    return out
