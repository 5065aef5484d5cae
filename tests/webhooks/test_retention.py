"""The webhooks' retention (``backend.webhooks.retention``) on SQLite and PostgreSQL, with the
real migrations: what is old and done goes, nothing pending or not yet fanned out does, and
SQLite never hands a ``seq`` out again that the fan-out cursor has passed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.models import WebhookAttempt, WebhookCursor, WebhookDelivery, migrate
from backend.webhooks.config import WebhookSettings
from backend.webhooks.retention import DAY_S, prune
from db.engine import create_pooled_engine
from db.types import table_of
from indexer import models as m
from tests.support.databases import create_pg_database, drop_pg_database

OUTBOX = table_of(m.OutboxEntry)
D = table_of(WebhookDelivery)
A = table_of(WebhookAttempt)
C = table_of(WebhookCursor)

NOW_S = 1_800_000_000
RETAIN_S = 30 * DAY_S
OLD_S = NOW_S - RETAIN_S - 3_600  # an hour past the retention
NEW_S = NOW_S - 3_600


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'retention.db'}"
    else:
        name = await create_pg_database()
        url = f"postgresql+asyncpg://root@127.0.0.1:5432/{name}"
    eng = create_pooled_engine(url)
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()
        if name is not None:
            await drop_pg_database(name)


def entry(seq: int, block_time: int) -> dict[str, object]:
    """The ``seq``-th entry of a fresh outbox (the database numbers it, as for the indexer)."""
    return {
        "event_id": f"evt_{seq:032x}",
        "kind": "event",
        "event": "ClaimSplit",
        "contract": "ClaimLedger",
        "block_number": seq,
        "log_index": 0,
        "block_hash": "0x" + f"{seq:064x}",
        "block_time": block_time,
        "object_key": f"claim:{seq}",
        "data": "{}",
        "reverted": False,
        "reverts": None,
    }


def delivery(id_: int, status: str, created_s: int) -> dict[str, object]:
    return {
        "id": id_,
        "endpoint_id": "wh_test",
        "seq": id_,
        "event_id": f"evt_{id_:032x}",
        "event_type": "ClaimSplit",
        "object_key": f"claim:{id_}",
        "body": "{}",
        "status": status,
        "attempts": 1,
        "next_attempt_at": created_s * 1000,
        "lease_until": 0,
        "lease_owner": None,
        "created_at": created_s * 1000,
        "block_time": created_s,
        "delivered_at": None,
        "last_status_code": None,
    }


def attempt(delivery_id: int) -> dict[str, object]:
    return {
        "delivery_id": delivery_id,
        "attempted_at": 0,
        "latency_ms": 1,
        "status_code": 200,
        "error": None,
        "ok": True,
    }


async def seqs(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(OUTBOX.c.seq).order_by(OUTBOX.c.seq))).scalars())


async def test_old_finished_rows_go_and_nothing_pending_or_unqueued_does(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        # Entries 1-6 old, 7-8 recent; the fan-out has consumed up to 5.
        for s in range(1, 9):
            await conn.execute(insert(OUTBOX).values(entry(s, OLD_S if s <= 6 else NEW_S)))
        await conn.execute(insert(C).values(id=1, seq=5))
        await conn.execute(
            insert(D),
            [
                delivery(1, "succeeded", OLD_S),
                delivery(2, "failed", OLD_S),
                delivery(3, "cancelled", OLD_S),
                delivery(4, "pending", OLD_S),  # still retried (an endpoint revived): kept
                delivery(5, "succeeded", NEW_S),  # within the retention: kept
            ],
        )
        await conn.execute(insert(A), [attempt(i) for i in (1, 1, 2, 4, 5)])

    done = await prune(engine, RETAIN_S, NOW_S * 1000, batch=2)

    assert (done.outbox, done.deliveries, done.attempts) == (4, 3, 3)
    # 5 is the cursor's own entry (kept: SQLite would reuse a deleted greatest seq), 6 old but
    # not fanned out yet, 7 and 8 recent.
    assert await seqs(engine) == [5, 6, 7, 8]
    async with engine.connect() as conn:
        kept = (await conn.execute(select(D.c.id).order_by(D.c.id))).scalars().all()
        left = (await conn.execute(select(A.c.delivery_id).order_by(A.c.delivery_id))).scalars()
        assert list(kept) == [4, 5]
        assert list(left) == [4, 5]
    # Nothing more to do: a second pass deletes nothing.
    again = await prune(engine, RETAIN_S, NOW_S * 1000)
    assert again.rows == 0


async def test_the_next_entry_always_lands_after_the_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for s in range(1, 4):
            await conn.execute(insert(OUTBOX).values(entry(s, OLD_S)))
        await conn.execute(insert(C).values(id=1, seq=3))
    await prune(engine, RETAIN_S, NOW_S * 1000)
    assert await seqs(engine) == [3]
    async with engine.begin() as conn:
        await conn.execute(insert(OUTBOX).values(entry(4, NEW_S)))
        top = (await conn.execute(select(func.max(OUTBOX.c.seq)))).scalar_one()
    assert top > 3  # the fan-out (seq > cursor) will see it


async def test_no_cursor_yet_prunes_no_outbox(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for s in range(1, 4):
            await conn.execute(insert(OUTBOX).values(entry(s, OLD_S)))
    done = await prune(engine, RETAIN_S, NOW_S * 1000)
    assert done.outbox == 0
    assert await seqs(engine) == [1, 2, 3]


def test_the_retention_must_outlast_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERFLOW_WEBHOOKS_RETAIN_DAYS", "1")
    with pytest.raises(ValidationError, match="RETAIN_DAYS must be longer"):
        WebhookSettings()  # 1 day against the default 25 hours of retries
    monkeypatch.setenv("TIERFLOW_WEBHOOKS_RETAIN_DAYS", "2")
    assert WebhookSettings().webhooks_retain_days == 2
