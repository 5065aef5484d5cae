"""The mirror's bookkeeping in SQL: checkpoint, header window, rollback, digest.

Every function takes an ``AsyncConnection`` inside the caller's transaction: a batch's rows,
its headers and the new checkpoint commit together (IX-3), and a rollback is one transaction
too. The checkpoint update is fenced: it only applies if the checkpoint is still where this
indexer read it, so a second writer can never interleave unnoticed.

On PostgreSQL every checkpoint change also sends ``NOTIFY tierflow_checkpoint, '<block>'`` in
the same transaction (delivered once it commits): the API's workers listen, and a write waiting
for the mirror to reach its block is woken by it instead of polling
(:class:`backend.gateway.mirror_watch.MirrorWatch`). SQLite has no notifications; the API polls
there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.types import table_of
from indexer import models, outbox
from indexer.errors import CheckpointMoved
from indexer.unit_of_work import APPEND_TABLES, STATE_TABLES, primary_key

_CHECKPOINT = table_of(models.Checkpoint)
_HEADERS = table_of(models.BlockHeader)
_JOURNAL = table_of(models.JournalEntry)

#: The PostgreSQL notification channel of checkpoint changes; the payload is the block number.
CHECKPOINT_CHANNEL = "tierflow_checkpoint"


async def notify_checkpoint(conn: AsyncConnection, block_number: int) -> None:
    """Tell listeners the checkpoint is now ``block_number``, once the caller's transaction
    commits (PostgreSQL; nothing on SQLite)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(CHECKPOINT_CHANNEL, str(block_number))))


@dataclass(frozen=True)
class Header:
    """A block header as the indexer keeps it."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int


@dataclass(frozen=True)
class CheckpointState:
    """Where the mirror stands."""

    chain_id: int
    deployment: dict[str, str]
    block_number: int
    block_hash: str
    journaled_from: int


async def read_checkpoint(conn: AsyncConnection) -> CheckpointState | None:
    row = (await conn.execute(select(_CHECKPOINT).where(_CHECKPOINT.c.id == 1))).first()
    if row is None:
        return None
    return CheckpointState(
        chain_id=row.chain_id,
        deployment=json.loads(row.deployment),
        block_number=row.block_number,
        block_hash=row.block_hash,
        journaled_from=row.journaled_from,
    )


async def create_checkpoint(
    conn: AsyncConnection, chain_id: int, deployment: dict[str, str], start: Header
) -> CheckpointState:
    """The mirror's first checkpoint: the block before the deployment's first contract."""
    state = CheckpointState(chain_id, deployment, start.number, start.hash, start.number + 1)
    await conn.execute(
        insert(_CHECKPOINT).values(
            id=1,
            chain_id=chain_id,
            deployment=json.dumps(deployment, sort_keys=True),
            block_number=start.number,
            block_hash=start.hash,
            journaled_from=state.journaled_from,
        )
    )
    await conn.execute(insert(_HEADERS).values(**start.__dict__))
    await notify_checkpoint(conn, start.number)
    return state


def next_checkpoint(
    current: CheckpointState, end: Header, journaled_from: int, window: int
) -> CheckpointState:
    """The checkpoint after a batch ending at ``end`` (journals kept for ``window`` blocks)."""
    return CheckpointState(
        current.chain_id,
        current.deployment,
        end.number,
        end.hash,
        max(journaled_from, end.number - window + 1),
    )


async def advance(
    conn: AsyncConnection,
    current: CheckpointState,
    new: CheckpointState,
    headers: Sequence[Header],
) -> CheckpointState:
    """Move the checkpoint from ``current`` to ``new``, store ``headers``, prune the window.

    Fenced: only if the checkpoint is still ``current`` (else :class:`CheckpointMoved`, and
    the caller's transaction, rolled back, takes everything of the batch with it).

    On PostgreSQL (asyncpg) all of it is one statement (:func:`_advance_statement`): one round
    trip where the steps below take five, each of which waited for the event loop's turn
    behind the next range's decoding (a backfill writes a batch every 1,000 events).
    """
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg":
        moved = (
            await conn.exec_driver_sql(
                _advance_statement(conn.dialect),
                (
                    new.block_number,
                    new.block_hash,
                    new.journaled_from,
                    current.block_number,
                    current.block_hash,
                    *([getattr(h, column.name) for h in headers] for column in _HEADERS.columns),
                    new.journaled_from - 1,
                    str(new.block_number),
                ),
            )
        ).scalar_one()
        if moved != 1:
            raise CheckpointMoved(
                f"checkpoint is no longer block {current.block_number}: another writer?"
            )
        return new
    result = await conn.execute(
        update(_CHECKPOINT)
        .where(
            _CHECKPOINT.c.id == 1,
            _CHECKPOINT.c.block_number == current.block_number,
            _CHECKPOINT.c.block_hash == current.block_hash,
        )
        .values(
            block_number=new.block_number,
            block_hash=new.block_hash,
            journaled_from=new.journaled_from,
        )
    )
    if result.rowcount != 1:
        raise CheckpointMoved(
            f"checkpoint is no longer block {current.block_number}: another writer?"
        )
    if headers:
        await conn.execute(insert(_HEADERS), [h.__dict__ for h in headers])
    # The header just below the journaled blocks stays: it is the deepest possible ancestor.
    await conn.execute(delete(_HEADERS).where(_HEADERS.c.number < new.journaled_from - 1))
    await conn.execute(delete(_JOURNAL).where(_JOURNAL.c.block_number < new.journaled_from))
    await notify_checkpoint(conn, new.block_number)
    return new


_ADVANCE: dict[Dialect, str] = {}


def _advance_statement(dialect: Dialect) -> str:
    """:func:`advance` on PostgreSQL as one statement: the fenced checkpoint update, the new
    headers (one array parameter per column), the pruning of the headers and the journal
    below the window, and the notification; it answers how many checkpoint rows moved.

    Its data-modifying parts all run, fence or not: a fence that fails raises, and the
    caller's transaction rolls them back (a notification is only sent on commit). They see
    the table as it was before the statement, so the pruning cannot delete the headers it
    inserts; none of those is below the pruned blocks anyway (the window's headers of a
    batch start at or above its journaled blocks).
    """
    sql = _ADVANCE.get(dialect)
    if sql is None:
        q = dialect.identifier_preparer.quote
        c, h, j = _CHECKPOINT, _HEADERS, _JOURNAL
        names = ", ".join(q(col.name) for col in h.columns)
        arrays = ", ".join(
            f"${6 + i}::{col.type.compile(dialect)}[]" for i, col in enumerate(h.columns)
        )
        below, channel = 6 + len(h.columns), 7 + len(h.columns)  # the parameters after them
        sql = _ADVANCE[dialect] = (
            f"WITH moved AS (UPDATE {q(c.name)} SET block_number = $1, block_hash = $2, "
            "journaled_from = $3 WHERE id = 1 AND block_number = $4 AND block_hash = $5 "
            f"RETURNING 1), kept AS (INSERT INTO {q(h.name)} ({names}) SELECT * FROM "
            f"unnest({arrays})), headers_pruned AS (DELETE FROM {q(h.name)} WHERE number < "
            f"${below}), journal_pruned AS (DELETE FROM {q(j.name)} WHERE block_number < $3) "
            f"SELECT (SELECT count(*) FROM moved), pg_notify('{CHECKPOINT_CHANNEL}', ${channel})"
        )
    return sql


async def kept_headers(conn: AsyncConnection, from_number: int) -> list[tuple[int, str]]:
    """Stored ``(number, hash)`` from ``from_number`` up, newest first."""
    result = await conn.execute(
        select(_HEADERS.c.number, _HEADERS.c.hash)
        .where(_HEADERS.c.number >= from_number)
        .order_by(_HEADERS.c.number.desc())
    )
    return [(r.number, r.hash) for r in result]


async def header_time(conn: AsyncConnection, number: int) -> int | None:
    row = (
        await conn.execute(select(_HEADERS.c.timestamp).where(_HEADERS.c.number == number))
    ).first()
    return None if row is None else int(row.timestamp)


async def rollback(
    conn: AsyncConnection, current: CheckpointState, ancestor: int, ancestor_hash: str
) -> CheckpointState:
    """Restore the mirror as it was at block ``ancestor`` (IX-4), in the caller's transaction."""
    entries = await conn.execute(
        select(_JOURNAL).where(_JOURNAL.c.block_number > ancestor).order_by(_JOURNAL.c.id.desc())
    )
    for entry in entries.all():
        table = STATE_TABLES[entry.table_name]
        pk = primary_key(table)
        key = json.loads(entry.row_key)
        await conn.execute(
            delete(table).where(*(table.c[c] == v for c, v in zip(pk, key, strict=True)))
        )
        if entry.image is not None:
            await conn.execute(insert(table).values(**json.loads(entry.image)))
    for table in APPEND_TABLES.values():
        await conn.execute(delete(table).where(table.c.block_number > ancestor))
    await outbox.retract(conn, ancestor)
    await conn.execute(delete(_JOURNAL).where(_JOURNAL.c.block_number > ancestor))
    await conn.execute(delete(_HEADERS).where(_HEADERS.c.number > ancestor))
    result = await conn.execute(
        update(_CHECKPOINT)
        .where(_CHECKPOINT.c.id == 1, _CHECKPOINT.c.block_number == current.block_number)
        .values(block_number=ancestor, block_hash=ancestor_hash)
    )
    if result.rowcount != 1:
        raise CheckpointMoved("checkpoint moved during a rollback: another writer?")
    await notify_checkpoint(conn, ancestor)
    return CheckpointState(
        current.chain_id,
        current.deployment,
        ancestor,
        ancestor_hash,
        min(current.journaled_from, ancestor + 1),
    )


#: Tables the digest covers: the domain objects and the raw events.
DIGEST_TABLES: tuple[Table, ...] = (*models.DOMAIN_TABLES, table_of(models.Event))


async def digest(engine: AsyncEngine, tables: Iterable[Table] = DIGEST_TABLES) -> str:
    """SHA-256 over every mirrored row in key order: equal mirrors, equal digests.

    The same chain gives the same digest on SQLite and PostgreSQL (values are read back as
    Python ints, strings and bools before hashing).
    """
    sha = hashlib.sha256()
    async with engine.connect() as conn:
        for t in tables:
            positions = [list(t.c).index(c) for c in t.primary_key.columns]
            rows = [tuple(r) for r in await conn.execute(select(*t.c))]
            # Sorted here: the databases' collations order text keys differently.
            rows.sort(key=lambda r: tuple(r[i] for i in positions))
            sha.update(t.name.encode())
            for row in rows:
                sha.update(json.dumps(list(row), separators=(",", ":")).encode())
                sha.update(b"\n")
    return sha.hexdigest()
