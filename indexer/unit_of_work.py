"""The unit of work a batch of events is applied through, then written in one go.

:class:`UnitOfWork` is what handlers see (a protocol: rows by table and key, as dicts to read
or change in place); :class:`BatchUnitOfWork` is the indexer's, and unit tests apply handlers
to an in-memory one (``tests/support/fakes.py``).

Handlers read and change rows as plain dicts held in memory; :meth:`BatchUnitOfWork.seal` then
fixes the batch's writes (values copied out of the dicts) as a :class:`SealedBatch`, which
goes out in a few multi-row statements per table (:mod:`indexer.bulk`) while the next batch
is already being applied to the same rows in memory.
Rows stay cached between batches (the indexer is the only writer), so a backfill mostly
touches the database to write. Rows are loaded in bulk before a batch (:meth:`prefetch`),
one at a time only on a rare miss.

Reorganisations: before a row's first change in a block at or above ``journal_from``, its
image (or ``None`` when it did not exist yet) goes to the ``journal`` table, so
:func:`indexer.store.rollback` can restore the mirror as it was at any block of the kept
window. Append-only rows (events, settlements, a payable's invoices) carry their block
number and are deleted by it instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Protocol, cast

from sqlalchemy import Table, func, select, tuple_
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from db.types import table_of
from indexer import models
from indexer.bulk import BulkWriter
from indexer.errors import MirrorError
from ledger.codec import json_text

Row = dict[str, Any]
Key = tuple[Any, ...]

#: Tables whose rows handlers change in place, by name.
STATE_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        table_of(models.Member),
        table_of(models.RoleGrant),
        table_of(models.Invoice),
        table_of(models.Payable),
        table_of(models.Claim),
        table_of(models.Financing),
        table_of(models.ObligorAccount),
        table_of(models.Exposure),
        table_of(models.PlatformState),
    )
}
#: Tables that only grow, with the block number of each row.
APPEND_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        table_of(models.Event),
        table_of(models.Settlement),
        table_of(models.PayableInvoice),
    )
}
_CHUNK = 500
#: Cached rows above this many are dropped after a flush (memory bound on huge mirrors).
CACHE_LIMIT = 500_000


def primary_key(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.primary_key.columns)


_PK = {name: primary_key(t) for name, t in STATE_TABLES.items()}


def _key_getter(columns: tuple[str, ...]) -> Callable[[Row], Key]:
    """A row's primary key as a tuple, by one ``itemgetter`` call."""
    get = itemgetter(*columns)
    if len(columns) == 1:
        return lambda row: (get(row),)
    return cast(Callable[[Row], Key], get)


#: Table name → its rows' key (what ``tuple(row[c] for c in _PK[name])`` gives, cheaper).
_KEY_OF = {name: _key_getter(pk) for name, pk in _PK.items()}


class UnitOfWork(Protocol):
    """The rows a handler reads and changes (``name`` is a table, ``key`` its primary key)."""

    #: The block of the event being applied.
    block: int

    async def get(self, name: str, key: Key) -> Row | None:
        """The row (a dict to read, not to change) or ``None`` if it does not exist."""
        ...

    async def need(self, name: str, key: Key) -> Row:
        """The row, which must exist."""
        ...

    async def edit(self, name: str, key: Key) -> Row:
        """The row to change in place (it must exist)."""
        ...

    async def create(self, name: str, row: Row) -> Row:
        """Add a row (it must not exist)."""
        ...

    async def upsert(self, name: str, row: Row) -> Row:
        """Add the row or replace the existing one with the same key."""
        ...

    async def remove(self, name: str, key: Key) -> None:
        """Delete the row if it exists."""
        ...

    def append(self, name: str, row: Row) -> None:
        """Add a row to an append-only table."""
        ...


class BatchUnitOfWork:
    """Rows in memory for the batches of one indexer; see the module docstring."""

    def __init__(self, copy: bool = True) -> None:
        #: Inserts by ``COPY`` on PostgreSQL (:class:`indexer.bulk.BulkWriter`).
        self.copy = copy
        self._rows: dict[str, dict[Key, Row | None]] = defaultdict(dict)
        #: Tables wholly cached: a key not in the cache is in no row of the database either.
        self._complete: set[str] = set()
        self._stored: dict[str, set[Key]] = defaultdict(set)  # keys present in the database
        self._dirty: dict[str, set[Key]] = defaultdict(set)
        self._appends: dict[str, list[Row]] = defaultdict(list)
        self._tuples: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        #: Rows in their table's column order (the surrogate key left out).
        self._journal: list[tuple[Any, ...]] = []
        self._outbox: list[tuple[Any, ...]] = []
        self._journaled: set[tuple[str, Key, int]] = set()
        self._conn: AsyncConnection | None = None
        self._before_read: Callable[[], Awaitable[None]] | None = None
        self._writer: BulkWriter | None = None
        self.journal_from = 0
        self.block = 0

    # -- batch lifecycle ---------------------------------------------------------------------

    def bind(
        self, conn: AsyncConnection, before_read: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Read missing rows through ``conn``, after awaiting ``before_read`` (the indexer
        passes "the batch being written is committed": one connection, one thing at a time).
        """
        self._conn = conn
        self._before_read = before_read

    def begin(self, journal_from: int) -> None:
        """Start applying a batch whose blocks from ``journal_from`` on are journaled."""
        if self._dirty or self._appends or self._tuples or self._journal or self._outbox:
            raise RuntimeError("previous batch neither sealed nor discarded")
        self.journal_from = journal_from

    def discard(self) -> None:
        """Forget everything cached and pending (a batch failed to commit, or a reorg)."""
        self._rows.clear()
        self._complete.clear()
        self._stored.clear()
        self._dirty.clear()
        self._appends.clear()
        self._tuples.clear()
        self._journal.clear()
        self._outbox.clear()
        self._journaled.clear()

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("unit of work not bound to a connection")
        return self._conn

    # -- reads ---------------------------------------------------------------------------------

    @property
    def warm(self) -> bool:
        """Every table is wholly cached (no batch needs to read the database)."""
        return self._complete == set(STATE_TABLES)

    async def warm_up(self, limit: int = CACHE_LIMIT) -> None:
        """Cache every table whole while they hold ``limit`` rows or fewer in all.

        A backfill from an empty mirror then never reads, so the next batch is applied in
        memory while the last one is being written. Bigger mirrors are read as needed.
        """
        conn = self.conn
        async with conn.begin():
            counts = {
                name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for name, t in STATE_TABLES.items()
            }
            if sum(counts.values()) > limit:
                return
            for name, table in STATE_TABLES.items():
                pk = _PK[name]
                cached = self._rows[name]
                stored = self._stored[name]
                for record in (await conn.execute(select(table))).mappings():
                    row = dict(record)
                    key = tuple(row[c] for c in pk)
                    cached[key] = row
                    stored.add(key)
                self._complete.add(name)

    async def prefetch(self, wanted: Mapping[str, Iterable[Key]]) -> None:
        """Load the rows of ``wanted`` (table → keys) not cached yet, in bulk."""
        for name, keys in wanted.items():
            if name in self._complete:
                continue
            cached = self._rows[name]
            missing = [k for k in set(keys) if k not in cached]
            for start in range(0, len(missing), _CHUNK):
                await self._load(name, missing[start : start + _CHUNK])

    async def _load(self, name: str, keys: list[Key]) -> None:
        table = STATE_TABLES[name]
        pk = _PK[name]
        if len(pk) == 1:
            where = table.c[pk[0]].in_([k[0] for k in keys])
        else:
            where = tuple_(*(table.c[c] for c in pk)).in_(keys)
        if self._before_read is not None:
            await self._before_read()
        conn = self.conn
        if conn.in_transaction():
            result = await conn.execute(select(table).where(where))
        else:
            async with conn.begin():
                result = await conn.execute(select(table).where(where))
        cached = self._rows[name]
        stored = self._stored[name]
        for k in keys:
            cached[k] = None
        for record in result.mappings():
            row = dict(record)
            key = tuple(row[c] for c in pk)
            cached[key] = row
            stored.add(key)

    async def get(self, name: str, key: Key) -> Row | None:
        """The row (a dict to read, not to change) or ``None`` if it does not exist."""
        cached = self._rows[name]
        if key not in cached:
            if name in self._complete:
                return None
            await self._load(name, [key])
        return cached[key]

    async def need(self, name: str, key: Key) -> Row:
        row = await self.get(name, key)
        if row is None:
            raise MirrorError(f"{name} {key!r} is not in the mirror (block {self.block})")
        return row

    # -- writes --------------------------------------------------------------------------------

    def _journal_before(self, name: str, key: Key, image: Row | None) -> None:
        if self.block < self.journal_from:
            return
        mark = (name, key, self.block)
        if mark in self._journaled:
            return
        self._journaled.add(mark)
        self._journal.append(
            (
                self.block,
                name,
                json_text(list(key)),
                None if image is None else json_text(image),
            )
        )

    async def edit(self, name: str, key: Key) -> Row:
        """The row to change in place (it must exist)."""
        # A cached row without the two awaits of get() and need(): a handler's common case.
        row = self._rows[name].get(key)
        if row is None:
            row = await self.need(name, key)
        self._journal_before(name, key, row)
        self._dirty[name].add(key)
        return row

    async def create(self, name: str, row: Row) -> Row:
        """Add a row (it must not exist)."""
        key = _KEY_OF[name](row)
        cached = self._rows[name]
        exists = cached[key] is not None if key in cached else await self.get(name, key) is not None
        if exists:
            raise MirrorError(f"{name} {key!r} already exists (block {self.block})")
        self._journal_before(name, key, None)
        self._rows[name][key] = row
        self._dirty[name].add(key)
        return row

    async def upsert(self, name: str, row: Row) -> Row:
        """Add the row or replace the existing one with the same key."""
        key = _KEY_OF[name](row)
        self._journal_before(name, key, await self.get(name, key))
        self._rows[name][key] = row
        self._dirty[name].add(key)
        return row

    async def remove(self, name: str, key: Key) -> None:
        """Delete the row if it exists."""
        before = await self.get(name, key)
        if before is None:
            return
        self._journal_before(name, key, before)
        self._rows[name][key] = None
        self._dirty[name].add(key)

    def append(self, name: str, row: Row) -> None:
        """Add a row to an append-only table."""
        self._appends[name].append(row)

    def outbox(self, row: tuple[Any, ...]) -> None:
        """Add a webhook outbox entry (:func:`indexer.outbox.outbox_row`, in the table's
        column order): written with the batch, never deleted by a rollback (it is retracted
        instead)."""
        self._outbox.append(row)

    def append_tuple(self, name: str, row: tuple[Any, ...]) -> None:
        """Add a row, given in the table's column order, to an append-only table."""
        self._tuples[name].append(row)

    # -- seal --------------------------------------------------------------------------------

    def seal(self, dialect: Dialect) -> SealedBatch:
        """Fix everything changed since :meth:`begin` as the writes of one batch.

        New rows are inserted, changed ones written whole over the stored ones (an upsert on
        the primary key), removed ones deleted. Values are copied out now, so the next batch
        may change the same rows in memory while this one is being written.
        """
        bulk = self._bulk(dialect)
        batch = SealedBatch(bulk)
        for name, keys in self._dirty.items():
            if not keys:
                continue
            table = STATE_TABLES[name]
            stored = self._stored[name]
            rows = self._rows[name]
            inserts: list[Row] = []
            updates: list[Row] = []
            deletes: list[Key] = []
            for key in keys:
                row = rows.get(key)
                if row is None:
                    if key in stored:
                        deletes.append(key)
                        stored.discard(key)
                elif key in stored:
                    updates.append(row)
                else:
                    inserts.append(row)
                    stored.add(key)
            batch.add("delete", table, deletes)
            batch.add("upsert", table, bulk.from_dicts(table, updates))
            batch.add("insert", table, bulk.from_dicts(table, inserts))
        for name, appended in self._appends.items():
            table = APPEND_TABLES[name]
            batch.add("insert", table, bulk.from_dicts(table, appended))
        for name, tuples in self._tuples.items():
            table = APPEND_TABLES[name]
            batch.add("insert", table, bulk.from_tuples(table, tuples))
        journal = table_of(models.JournalEntry)
        batch.add("insert", journal, bulk.from_tuples(journal, self._journal))
        outbox = table_of(models.OutboxEntry)
        batch.add("insert", outbox, bulk.from_tuples(outbox, self._outbox))
        self._dirty.clear()
        self._outbox.clear()
        self._appends.clear()
        self._tuples.clear()
        self._journal.clear()
        self._journaled.clear()
        if sum(len(r) for r in self._rows.values()) > CACHE_LIMIT:
            self._rows.clear()
            self._complete.clear()
            self._stored.clear()
        return batch

    def _bulk(self, dialect: Dialect) -> BulkWriter:
        if self._writer is None or self._writer.dialect is not dialect:
            self._writer = BulkWriter(dialect, copy=self.copy)
        return self._writer


class SealedBatch:
    """The writes of one batch, values fixed, to run inside the batch's transaction."""

    def __init__(self, bulk: BulkWriter) -> None:
        self._bulk = bulk
        self._steps: list[tuple[str, Table, Sequence[Any]]] = []
        self.rows = 0

    def add(self, kind: str, table: Table, rows: Sequence[Any]) -> None:
        if rows:
            self._steps.append((kind, table, rows))
            self.rows += len(rows)

    @property
    def writes(self) -> list[tuple[str, str, int]]:
        """``(kind, table, rows)`` of each step: what this batch does to the database."""
        return [(kind, table.name, len(rows)) for kind, table, rows in self._steps]

    async def write(self, conn: AsyncConnection) -> None:
        """Send every statement (the caller holds the transaction and commits)."""
        for kind, table, rows in self._steps:
            if kind == "delete":
                await self._bulk.delete(conn, table, rows)
            elif kind == "upsert":
                await self._bulk.upsert(conn, table, rows)
            else:
                await self._bulk.insert(conn, table, rows)
