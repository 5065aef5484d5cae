"""The unit of work a batch of events is applied through, then written in one go.

Handlers read and change rows as plain dicts held in memory; :meth:`UnitOfWork.flush` then
writes the batch in a few multi-row statements per table (:mod:`indexer.bulk`).
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

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from indexer import models
from indexer.bulk import BulkWriter
from indexer.errors import MirrorError
from indexer.models import table_of

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


class UnitOfWork:
    """Rows in memory for the batches of one indexer; see the module docstring."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[Key, Row | None]] = defaultdict(dict)
        self._stored: dict[str, set[Key]] = defaultdict(set)  # keys present in the database
        self._dirty: dict[str, set[Key]] = defaultdict(set)
        self._appends: dict[str, list[Row]] = defaultdict(list)
        self._tuples: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self._journal: list[Row] = []
        self._journaled: set[tuple[str, Key, int]] = set()
        self._conn: AsyncConnection | None = None
        self._writer: BulkWriter | None = None
        self.journal_from = 0
        self.block = 0

    # -- batch lifecycle ---------------------------------------------------------------------

    def begin(self, conn: AsyncConnection, journal_from: int) -> None:
        """Start a batch on ``conn`` (inside its transaction)."""
        if self._dirty or self._appends or self._tuples or self._journal:
            raise RuntimeError("previous batch neither flushed nor discarded")
        self._conn = conn
        self.journal_from = journal_from

    def discard(self) -> None:
        """Forget everything (the batch's transaction rolled back, or a reorg)."""
        self._rows.clear()
        self._stored.clear()
        self._dirty.clear()
        self._appends.clear()
        self._tuples.clear()
        self._journal.clear()
        self._journaled.clear()
        self._conn = None

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("no batch begun")
        return self._conn

    # -- reads ---------------------------------------------------------------------------------

    async def prefetch(self, wanted: Mapping[str, Iterable[Key]]) -> None:
        """Load the rows of ``wanted`` (table → keys) not cached yet, in bulk."""
        for name, keys in wanted.items():
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
        result = await self.conn.execute(select(table).where(where))
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
            {
                "block_number": self.block,
                "table_name": name,
                "row_key": json.dumps(list(key)),
                "image": None if image is None else json.dumps(image),
            }
        )

    async def edit(self, name: str, key: Key) -> Row:
        """The row to change in place (it must exist)."""
        row = await self.need(name, key)
        self._journal_before(name, key, row)
        self._dirty[name].add(key)
        return row

    async def create(self, name: str, row: Row) -> Row:
        """Add a row (it must not exist)."""
        key = tuple(row[c] for c in _PK[name])
        if await self.get(name, key) is not None:
            raise MirrorError(f"{name} {key!r} already exists (block {self.block})")
        self._journal_before(name, key, None)
        self._rows[name][key] = row
        self._dirty[name].add(key)
        return row

    async def upsert(self, name: str, row: Row) -> Row:
        """Add the row or replace the existing one with the same key."""
        key = tuple(row[c] for c in _PK[name])
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

    def append_tuple(self, name: str, row: tuple[Any, ...]) -> None:
        """Add a row, given in the table's column order, to an append-only table."""
        self._tuples[name].append(row)

    # -- flush ---------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write everything changed since :meth:`begin`; returns the number of rows written.

        New rows are inserted, changed ones written whole over the stored ones (an upsert on
        the primary key), removed ones deleted: a few multi-row statements per table
        (:class:`~indexer.bulk.BulkWriter`).
        """
        conn = self.conn
        bulk = self._bulk(conn)
        written = 0
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
            await bulk.delete(conn, table, deletes)
            await bulk.upsert(conn, table, updates)
            await bulk.insert(conn, table, inserts)
            written += len(inserts) + len(updates) + len(deletes)
        for name, appended in self._appends.items():
            if appended:
                await bulk.insert(conn, APPEND_TABLES[name], appended)
                written += len(appended)
        for name, tuples in self._tuples.items():
            if tuples:
                await bulk.insert_tuples(conn, APPEND_TABLES[name], tuples)
                written += len(tuples)
        if self._journal:
            await bulk.insert(conn, table_of(models.JournalEntry), self._journal)
        self._dirty.clear()
        self._appends.clear()
        self._tuples.clear()
        self._journal.clear()
        self._journaled.clear()
        self._conn = None
        if sum(len(r) for r in self._rows.values()) > CACHE_LIMIT:
            self._rows.clear()
            self._stored.clear()
        return written

    def _bulk(self, conn: AsyncConnection) -> BulkWriter:
        if self._writer is None or self._writer.dialect is not conn.dialect:
            self._writer = BulkWriter(conn.dialect)
        return self._writer
