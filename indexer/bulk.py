"""Bulk writes of a batch's rows, in as few statements as each database allows.

SQLAlchemy Core's ``executemany`` builds every row's parameters in Python through the
compiled statement, and that, not the database, dominated a backfill's time (about 10 µs a
row). The unit of work writes through :class:`BulkWriter` instead: multi-row
``INSERT … VALUES (…), (…), …`` statements, and ``INSERT … ON CONFLICT (key) DO UPDATE``
for rows that changed, chunked under the driver's parameter limit and sent with
``exec_driver_sql``. One statement per chunk also means SQLite runs a whole chunk in one
step, with the GIL released, so the next range is decoded while the last one is written.

On PostgreSQL (asyncpg) inserts of :data:`COPY_MIN_ROWS` rows or more go as one binary
``COPY … FROM STDIN`` per table instead (``copy_records_to_table``), on the same connection
and inside the batch's transaction: no statement text to parse, no parameter limit to chunk
under, and the server's cheapest way in. Upserts and deletes stay statements.

On PostgreSQL upserts, and inserts too small for ``COPY``, go as one statement per table
whatever the number of rows: ``INSERT … SELECT * FROM unnest($1::type[], $2::type[], …)``,
each column one array parameter. Its text is the same for every batch, so asyncpg prepares it
once per connection; a multi-row ``VALUES`` list was a new statement for every row count seen
(parsed and planned by the server each time: a 1,000-row upsert of claims took longer to
plan than to run) and at most 32,767 parameters a statement.

Values still go through each column type's own bind processor, so what is stored is exactly
what SQLAlchemy would store (the :class:`~db.types.Amount` encoding, booleans on SQLite)
and reads through the ORM and Core give the same Python values back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from typing import Any, cast

from sqlalchemy import Boolean, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

#: A row's values in column order, converted for the driver.
Values = tuple[Any, ...]

#: Rows per statement at most (fewer when the table is wide: see ``_rows_per_chunk``).
MAX_ROWS_PER_STATEMENT = 1_000
#: Inserts of at least this many rows go by ``COPY`` on PostgreSQL (fewer: one statement is
#: as quick, and a live batch of a block or two stays a plain insert).
COPY_MIN_ROWS = 32


class _TableWriter:
    """Statements and value converters of one table, for one dialect."""

    def __init__(self, table: Table, dialect: Dialect, preparer: Any) -> None:
        self.table = table
        self.dialect = dialect
        self.columns = [c for c in table.columns if not _is_autoincrement(c, table)]
        self.names = [c.name for c in self.columns]
        self.key = [c.name for c in table.primary_key.columns]
        self._quote: Callable[[str], str] = preparer.quote
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for position, column in enumerate(self.columns):
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors.append((position, processor))
        self._from_dict = self._converter(dict_source=True)
        self._from_tuple = self._converter(dict_source=False)
        limit = getattr(dialect, "insertmanyvalues_max_parameters", 32_700)
        self.rows_per_chunk = max(1, min(MAX_ROWS_PER_STATEMENT, limit // len(self.columns)))
        self._statements: dict[tuple[str, int], str] = {}

    @property
    def has_processors(self) -> bool:
        """Some column's type converts its values before they are written."""
        return bool(self._processors)

    def _converter(self, dict_source: bool) -> Callable[[Any], tuple[Any, ...]]:
        """A row's values in column order with the bind processors applied (a ``None`` is
        never processed), compiled once per table: one tuple expression, where a loop over
        the processors copied each row into a list and back (a fifth of a batch's seal).

        ``dict_source``: the row is a dict by column name, else a tuple in column order. A
        processor's answers for ``True`` and ``False`` are taken once: a boolean column
        reads them from a dict (whatever the dialect makes of a boolean), any other value
        goes through the processor as before. Column names go into the source only as
        ``repr`` string literals.
        """
        processors = dict(self._processors)
        namespace: dict[str, Any] = {}
        parts: list[str] = []
        for position, name in enumerate(self.names):
            read = f"r[{name!r}]" if dict_source else f"r[{position}]"
            processor = processors.get(position)
            if processor is None:
                parts.append(read)
                continue
            namespace[f"P{position}"] = processor
            if isinstance(self.columns[position].type, Boolean):
                namespace[f"B{position}"] = {True: processor(True), False: processor(False)}
                parts.append(
                    f"(B{position}[v] if (v := {read}).__class__ is bool"
                    f" else None if v is None else P{position}(v))"
                )
            else:
                parts.append(f"(None if (v := {read}) is None else P{position}(v))")
        source = f"def convert(r):\n    return ({', '.join(parts)},)\n"
        exec(source, namespace)
        return cast(Callable[[Any], tuple[Any, ...]], namespace["convert"])

    def processed(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A row given in column order, with the column types' bind processors applied."""
        if not self._processors:
            return row
        return self._from_tuple(row)

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """A row given as a dict by column name, in column order, processors applied."""
        return self._from_dict(row)

    def statement(self, kind: str, rows: int) -> str:
        cached = self._statements.get((kind, rows))
        if cached is not None:
            return cached
        q = self._quote
        width = len(self.columns)
        groups = ", ".join(
            "(" + ", ".join(_placeholder(self.dialect, r * width + i) for i in range(width)) + ")"
            for r in range(rows)
        )
        sql = (
            f"INSERT INTO {q(self.table.name)} ({', '.join(q(n) for n in self.names)}) "
            f"VALUES {groups}"
        )
        if kind == "upsert":
            changed = [n for n in self.names if n not in self.key]
            sql += f" ON CONFLICT ({', '.join(q(k) for k in self.key)}) DO UPDATE SET " + ", ".join(
                f"{q(n)} = excluded.{q(n)}" for n in changed
            )
        self._statements[(kind, rows)] = sql
        return sql

    def unnest_statement(self, kind: str) -> str:
        """PostgreSQL: insert (or upsert) any number of rows given as one array per column."""
        cached = self._statements.get((f"unnest-{kind}", 0))
        if cached is not None:
            return cached
        q = self._quote
        arrays = ", ".join(
            f"${i + 1}::{column.type.compile(self.dialect)}[]"
            for i, column in enumerate(self.columns)
        )
        sql = (
            f"INSERT INTO {q(self.table.name)} ({', '.join(q(n) for n in self.names)}) "
            f"SELECT * FROM unnest({arrays})"
        )
        if kind == "upsert":
            changed = [n for n in self.names if n not in self.key]
            sql += f" ON CONFLICT ({', '.join(q(k) for k in self.key)}) DO UPDATE SET " + ", ".join(
                f"{q(n)} = excluded.{q(n)}" for n in changed
            )
        self._statements[(f"unnest-{kind}", 0)] = sql
        return sql

    def delete_statement(self) -> str:
        cached = self._statements.get(("delete", 0))
        if cached is None:
            q = self._quote
            where = " AND ".join(
                f"{q(k)} = {_placeholder(self.dialect, i)}" for i, k in enumerate(self.key)
            )
            cached = f"DELETE FROM {q(self.table.name)} WHERE {where}"
            self._statements[("delete", 0)] = cached
        return cached


def _is_autoincrement(column: Any, table: Table) -> bool:
    """A surrogate key the database numbers (the journal's ``id``): left out of inserts."""
    return bool(column.primary_key and table.autoincrement_column is column)


def _placeholder(dialect: Dialect, index: int) -> str:
    """The driver's positional placeholder for parameter ``index`` (0-based)."""
    style = dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("numeric_dollar",):
        return f"${index + 1}"
    if style == "numeric":
        return f":{index + 1}"
    if style == "format":
        return "%s"
    raise NotImplementedError(f"bulk writes need a positional paramstyle, not {style}")


class BulkWriter:
    """Multi-row inserts, upserts and deletes for the tables of one dialect.

    ``copy``: inserts by ``COPY`` where the driver has it (asyncpg); False keeps statements.
    """

    def __init__(self, dialect: Dialect, copy: bool = True) -> None:
        self.dialect = dialect
        asyncpg = dialect.name == "postgresql" and dialect.driver == "asyncpg"
        self.copy = copy and asyncpg
        #: Rows as one array per column (:meth:`_TableWriter.unnest_statement`).
        self.arrays = asyncpg
        self._preparer = dialect.identifier_preparer
        self._tables: dict[str, _TableWriter] = {}

    def _writer(self, table: Table) -> _TableWriter:
        writer = self._tables.get(table.name)
        if writer is None:
            writer = self._tables[table.name] = _TableWriter(table, self.dialect, self._preparer)
        return writer

    def from_dicts(self, table: Table, rows: Iterable[Mapping[str, Any]]) -> list[Values]:
        """``rows`` as value tuples ready to write (column order, bind processors applied).

        Converting is what fixes a batch's values: the dicts may change afterwards.
        """
        convert = self._writer(table)._from_dict
        return [convert(row) for row in rows]

    def from_tuples(self, table: Table, rows: Iterable[tuple[Any, ...]]) -> list[Values]:
        """Rows already in column order, with the bind processors applied."""
        writer = self._writer(table)
        width = len(writer.columns)
        out = list(rows)
        for row in out:
            if len(row) != width:
                raise ValueError(f"{table.name}: a row of {len(row)} values, not {width}")
        if writer.has_processors:
            convert = writer._from_tuple
            out = [convert(row) for row in out]
        return out

    async def insert(self, conn: AsyncConnection, table: Table, rows: Sequence[Values]) -> None:
        """Insert prepared ``rows`` (none may exist: a duplicate key fails the batch)."""
        writer = self._writer(table)
        if self.copy and len(rows) >= COPY_MIN_ROWS:
            await _copy(conn, writer, rows)
        elif self.arrays:
            await _unnest(conn, writer, "insert", rows)
        else:
            await self._write(conn, writer, "insert", rows)

    async def upsert(self, conn: AsyncConnection, table: Table, rows: Sequence[Values]) -> None:
        """Write prepared ``rows`` whole, replacing stored rows with the same primary key."""
        writer = self._writer(table)
        if self.arrays:
            await _unnest(conn, writer, "upsert", rows)
        else:
            await self._write(conn, writer, "upsert", rows)

    async def delete(
        self, conn: AsyncConnection, table: Table, keys: Sequence[Sequence[Any]]
    ) -> None:
        """Delete the rows with these primary keys (in primary-key column order)."""
        if keys:
            writer = self._writer(table)
            await conn.exec_driver_sql(writer.delete_statement(), [tuple(k) for k in keys])

    async def _write(
        self, conn: AsyncConnection, writer: _TableWriter, kind: str, rows: Sequence[Values]
    ) -> None:
        for start, count in _chunks(len(rows), writer.rows_per_chunk):
            params = tuple(chain.from_iterable(rows[start : start + count]))
            await conn.exec_driver_sql(writer.statement(kind, count), params)


async def _unnest(
    conn: AsyncConnection, writer: _TableWriter, kind: str, rows: Sequence[Values]
) -> None:
    """``rows`` in one statement whose parameters are the columns (PostgreSQL)."""
    if rows:
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        await conn.exec_driver_sql(writer.unnest_statement(kind), columns)


async def _copy(conn: AsyncConnection, writer: _TableWriter, rows: Sequence[Values]) -> None:
    """``rows`` into the writer's table by one binary ``COPY``, in ``conn``'s transaction.

    asyncpg's connection under SQLAlchemy's begins its transaction lazily, at the first
    statement: a ``COPY`` sent first would commit on its own, outside the batch (IX-3). So a
    statement is sent first when none was, and the transaction checked before copying.
    """
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("COPY needs the driver's connection")
    if not driver.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
        if not driver.is_in_transaction():
            raise RuntimeError("COPY outside the batch's transaction")
    await driver.copy_records_to_table(writer.table.name, records=rows, columns=writer.names)


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    """``(start, rows)`` of the statements writing ``total`` rows: full chunks of ``size``,
    then the rest in powers of two. So a table has a few statement texts, each built once,
    rather than one per remainder ever seen (a multi-row statement of a few hundred rows is
    itself costly to build, and the remainders would pile up in the cache)."""
    out: list[tuple[int, int]] = []
    start = 0
    while total - start >= size:
        out.append((start, size))
        start += size
    rest = total - start
    bit = 1 << max(0, rest.bit_length() - 1)
    while rest:
        if rest & bit:
            out.append((start, bit))
            start += bit
            rest -= bit
        bit >>= 1
    return out
