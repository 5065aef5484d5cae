"""indexer.bulk's statement plan: every row written once, in order, with a bounded set of
statement texts (full chunks, then powers of two)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from indexer.bulk import _chunks


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
