"""A fetched range applied in pieces (:meth:`indexer.fetch.FetchedRange.pieces`): split between
blocks, each piece following the one before, together the whole range."""

from __future__ import annotations

import itertools

import pytest

from indexer.fetch import FetchedRange
from indexer.store import Header
from ledger.codec import DecodedEvent


def _header(number: int) -> Header:
    return Header(number, f"0x{number:064x}", f"0x{number - 1:064x}", 1_000 + number)


def _event(block: int, log_index: int) -> DecodedEvent:
    return DecodedEvent(
        block_number=block,
        block_hash=_header(block).hash,
        tx_hash="0x" + "ab" * 32,
        tx_index=0,
        log_index=log_index,
        address="0x" + "00" * 20,
        contract="ClaimLedger",
        name="ClaimTransferred",
        args={},
        args_json="{}",
        key="ClaimLedger:ClaimTransferred",
    )


def _range(blocks: list[int], start: int, end: int, window_from: int) -> FetchedRange:
    events = [_event(b, i) for i, b in enumerate(blocks)]
    headers = {n: _header(n) for n in {start - 1, end, *blocks, *range(window_from, end + 1)}}
    return FetchedRange(
        start=start,
        end=end,
        head=end,
        previous=headers[start - 1],
        last=headers[end],
        events=events,
        times={b: headers[b].timestamp for b in blocks},
        window_from=window_from,
        window_headers=[headers[n] for n in range(window_from, end + 1)],
        headers=headers,
    )


@pytest.mark.parametrize("window_from", [1, 4, 20])
@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_pieces_split_between_blocks_and_chain_up(size: int, window_from: int) -> None:
    blocks = [1, 1, 2, 2, 2, 3, 5, 5, 8, 8, 8, 8, 9]
    whole = _range(blocks, start=1, end=12, window_from=window_from)
    pieces = whole.pieces(size)

    assert [e for p in pieces for e in p.events] == whole.events
    assert (pieces[0].start, pieces[0].previous) == (whole.start, whole.previous)
    assert (pieces[-1].end, pieces[-1].last) == (whole.end, whole.last)
    for before, after in itertools.pairwise(pieces):
        assert after.start == before.end + 1
        assert after.previous == before.last == whole.headers[before.end]
        # A piece ends at its last event's block: a block's events are never split.
        assert before.events[-1].block_number == before.end
        assert after.events[0].block_number > before.end
    for piece in pieces:
        assert piece.last.number == piece.end
        assert all(piece.start <= e.block_number <= piece.end for e in piece.events)
        # More than ``size`` events only when one block alone has more.
        if len(piece.events) > size:
            assert len({e.block_number for e in piece.events[size - 1 :]}) == 1
        assert piece.window_headers == [
            h for h in whole.window_headers if piece.start <= h.number <= piece.end
        ]
    assert [h for p in pieces for h in p.window_headers] == whole.window_headers


def test_a_range_within_the_size_is_one_piece() -> None:
    whole = _range([1, 2, 2], start=1, end=4, window_from=1)
    assert whole.pieces(3) == [whole]
    assert whole.pieces(0) == [whole]
    assert _range([], start=1, end=4, window_from=1).pieces(1)[0].end == 4
