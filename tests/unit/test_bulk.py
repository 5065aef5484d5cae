"""indexer.bulk: the statement plan (every row written once, in order, with a bounded set of
statement texts: full chunks, then powers of two) and the values a row is written with."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Boolean, Table
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite_dialect
from sqlalchemy.engine import Dialect

from db.types import Amount, table_of
from indexer import models
from indexer.bulk import BulkWriter, _chunks
from indexer.unit_of_work import APPEND_TABLES, STATE_TABLES


@given(total=st.integers(0, 20_000), size=st.integers(1, 1_000))
def test_chunks_cover_every_row_once_in_order(total: int, size: int) -> None:
    chunks = _chunks(total, size)
    position = 0
    for start, count in chunks:
        assert start == position
        assert 1 <= count <= size
        position += count
    assert position == total


@given(size=st.integers(1, 1_000))
def test_a_table_needs_few_statement_texts(size: int) -> None:
    # Whatever the batch sizes, the row counts per statement are the chunk size or a power of
    # two below it: the cache of statement texts stays small.
    counts = {count for total in range(0, 3 * size + 1) for _, count in _chunks(total, size)}
    assert all(c == size or c & (c - 1) == 0 for c in counts)
    assert len(counts) <= size.bit_length() + 1


def test_examples() -> None:
    assert _chunks(0, 1000) == []
    assert _chunks(1000, 1000) == [(0, 1000)]
    assert _chunks(2777, 1000) == [(0, 1000), (1000, 1000), (2000, 512), (2512, 256), (2768, 8),
                                   (2776, 1)]  # fmt: skip


# -- a row's values for the driver --------------------------------------------------------

#: PostgreSQL through asyncpg and SQLite through aiosqlite, as the indexer runs them.
_DIALECTS: list[Dialect] = [asyncpg_dialect(), aiosqlite_dialect()]  # type: ignore[no-untyped-call]
_TABLES = [
    *STATE_TABLES.values(),
    *APPEND_TABLES.values(),
    table_of(models.JournalEntry),
    table_of(models.OutboxEntry),
]


def _reference(table: Table, dialect: Dialect, row: dict[str, Any]) -> tuple[Any, ...]:
    """What SQLAlchemy's bind processors make of ``row``, column by column."""
    writer = BulkWriter(dialect)._writer(table)
    out = []
    for column in writer.columns:
        value = row[column.name]
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        out.append(value if processor is None or value is None else processor(value))
    return tuple(out)


def _sample(table: Table, seed: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for n, column in enumerate(table.columns):
        if isinstance(column.type, Boolean):
            row[column.name] = (
                (None, True, False)[(seed + n) % 3] if column.nullable else bool(n % 2)
            )
        elif isinstance(column.type, Amount):
            row[column.name] = (0, 1, 10**77 + seed, None)[(seed + n) % 4]
        elif column.type.python_type is int:
            row[column.name] = None if column.nullable and (seed + n) % 3 == 0 else seed * 1000 + n
        else:
            row[column.name] = None if column.nullable and (seed + n) % 3 == 0 else f"v{seed}-{n}"
    return row


@pytest.mark.parametrize("dialect", _DIALECTS, ids=["pg", "sqlite"])
@pytest.mark.parametrize("table", _TABLES, ids=lambda t: t.name)
def test_a_rows_values_are_what_the_bind_processors_make(table: Table, dialect: Dialect) -> None:
    # The writer's compiled converters (from a dict and from a tuple in column order) give
    # exactly the values the column types' bind processors give, None left alone.
    bulk = BulkWriter(dialect)
    writer = bulk._writer(table)
    for seed in range(12):
        row = _sample(table, seed)
        expected = _reference(table, dialect, row)
        assert bulk.from_dicts(table, [row]) == [expected]
        as_tuple = tuple(row[name] for name in writer.names)
        assert bulk.from_tuples(table, [as_tuple]) == [expected]
        assert [type(v) for v in bulk.from_dicts(table, [row])[0]] == [type(v) for v in expected]


@pytest.mark.parametrize("dialect", _DIALECTS, ids=["pg", "sqlite"])
def test_a_value_the_processors_refuse_is_still_refused(dialect: Dialect) -> None:
    bulk = BulkWriter(dialect)
    claims = STATE_TABLES["claims"]
    good = _sample(claims, 1)
    for column, bad in (
        ("amount", -1),
        ("amount", 10**78),
        ("amount", True),
        ("amount", "12"),
        ("frozen", "yes"),
        ("financed", 2),
    ):
        row = {**good, column: bad}
        with pytest.raises((TypeError, ValueError)) as expected:
            _reference(claims, dialect, row)
        with pytest.raises(expected.type):
            bulk.from_dicts(claims, [row])
