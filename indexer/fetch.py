"""Fetching: logs of a block range and the headers that vouch for them.

One ``eth_getLogs`` per range over all the deployment's contracts; the range grows while
ranges are sparse and is halved when the node refuses it (:class:`~ledger.jsonrpc.RangeTooLarge`)
or returns more logs than aimed at. The headers the range needs (the block before it, every
block with a log, its last block, and every block of the reorg window) come in one JSON-RPC
batch, and each log's block hash must equal its header's: otherwise the chain changed under
our feet and the range is fetched again (:class:`~indexer.errors.InconsistentChain`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any

from indexer.config import IndexerConfig
from indexer.errors import InconsistentChain, NodeBehind
from indexer.store import Header
from ledger.codec import DecodedEvent, Decoder
from ledger.jsonrpc import RangeTooLarge, RpcClient

#: Logs decoded between two yields to the event loop.
YIELD_EVERY = 256
#: A decoded event's place in the chain, :attr:`DecodedEvent.position` by one C call: the
#: sort of a range's events called the property through a lambda per event (py-spy: 6% of a
#: PostgreSQL backfill's samples).
CHAIN_ORDER = itemgetter(
    *map(DecodedEvent._fields.index, ("block_number", "tx_index", "log_index"))
)


@dataclass(frozen=True)
class FetchedRange:
    """Blocks ``start``–``end``: their events in chain order and the headers checked."""

    start: int
    end: int
    head: int
    previous: Header  # block start - 1, as the node sees it now
    last: Header  # block end
    events: list[DecodedEvent]
    times: dict[int, int]  # block number → timestamp, for every block with an event
    #: Blocks from here to ``end`` are in the reorg window: their headers are kept and their
    #: changes journaled.
    window_from: int
    window_headers: list[Header]
    #: Every header fetched and verified with the range (``start - 1``, ``end``, each block
    #: with a log, the window's): where :meth:`pieces` finds the blocks it ends at.
    headers: dict[int, Header] = field(default_factory=dict)

    def pieces(self, max_events: int) -> list[FetchedRange]:
        """This range as consecutive ranges of at most ``max_events`` events each (more when
        one block alone has more: a block is never split), each a batch of its own.

        A piece ends at its last event's block, whose header was fetched and verified with
        the rest of the range; the next piece follows it (its ``previous``), and the last one
        ends where the range does. Nothing is fetched or checked again: the pieces are the
        range's own blocks, verified as one.
        """
        events = self.events
        if max_events <= 0 or len(events) <= max_events:
            return [self]
        out: list[FetchedRange] = []
        start, previous, first = self.start, self.previous, 0
        while True:
            cut = first + max_events
            if cut < len(events):
                block = events[cut - 1].block_number
                while cut < len(events) and events[cut].block_number == block:
                    cut += 1
            if cut >= len(events) or block >= self.end:
                window = [h for h in self.window_headers if h.number >= start]
                out.append(
                    replace(
                        self,
                        start=start,
                        previous=previous,
                        events=events[first:],
                        window_headers=window,
                    )
                )
                return out
            last = self.headers[block]
            window = [h for h in self.window_headers if start <= h.number <= block]
            out.append(
                replace(
                    self,
                    start=start,
                    end=block,
                    previous=previous,
                    last=last,
                    events=events[first:cut],
                    window_headers=window,
                )
            )
            start, previous, first = block + 1, last, cut


def _header(raw: dict[str, Any]) -> Header:
    return Header(
        number=int(raw["number"], 16),
        hash=raw["hash"],
        parent_hash=raw["parentHash"],
        timestamp=int(raw["timestamp"], 16),
    )


class Fetcher:
    """Fetches and verifies block ranges for one deployment."""

    def __init__(self, rpc: RpcClient, decoder: Decoder, config: IndexerConfig) -> None:
        self.rpc = rpc
        self.decoder = decoder
        self.config = config
        self.range_size = max(1, config.initial_range)
        self._addresses = sorted(decoder.addresses)

    async def head(self) -> int:
        return int(await self.rpc.call("eth_blockNumber", []), 16)

    async def headers(self, numbers: Iterable[int]) -> dict[int, Header | None]:
        """Headers of ``numbers`` in one batch (``None`` where the node has no such block)."""
        wanted = sorted(set(numbers))
        if not wanted:
            return {}
        raws = await self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
        out: dict[int, Header | None] = {}
        for number, raw in zip(wanted, raws, strict=True):
            header = None if raw is None else _header(raw)
            if header is not None and header.number != number:
                raise InconsistentChain(f"asked for block {number}, got {header.number}")
            out[number] = header
        return out

    async def _logs(self, start: int, end: int) -> tuple[int, list[dict[str, Any]]]:
        """Logs of ``start``..(``end`` or less, when the node refuses the range)."""
        while True:
            try:
                logs = await self.rpc.call(
                    "eth_getLogs",
                    [{"fromBlock": hex(start), "toBlock": hex(end), "address": self._addresses}],
                )
            except RangeTooLarge:
                if end == start:
                    return end, await self._block_logs_by_contract(start)
                self.range_size = max(1, (end - start + 1) // 2)
                end = start + self.range_size - 1
                continue
            return end, logs

    async def _block_logs_by_contract(self, block: int) -> list[dict[str, Any]]:
        """One block's logs, one contract at a time: a node that will not serve all of a
        block's logs in one answer may still serve each contract's. If even that is refused
        the range cannot be split further and :class:`RangeTooLarge` stops the indexer."""
        logs: list[dict[str, Any]] = []
        for address in self._addresses:
            logs += await self.rpc.call(
                "eth_getLogs",
                [{"fromBlock": hex(block), "toBlock": hex(block), "address": address}],
            )
        return logs

    def _adapt(self, span: int, count: int) -> None:
        target = self.config.target_logs
        if count > target and span > 1:
            self.range_size = max(1, span * target // count)
        elif count < target // 4 and span >= self.range_size:
            self.range_size = min(self.config.max_range, self.range_size * 2)

    async def fetch(self, start: int, limit: int, head: int) -> FetchedRange:
        """Fetch ``start``..``min(limit, start + range size - 1)`` and verify it."""
        end = min(limit, start + self.range_size - 1)
        live = end > head - self.config.window
        before: Header | None = None
        if live:
            # Near the head the chain may change between calls: the last block's header is
            # read before and after the logs, and must not change.
            before = (await self.headers([end]))[end]
            if before is None:
                raise NodeBehind(f"node has no block {end} (head {head})")
        end, logs = await self._logs(start, end)
        if before is not None and before.number != end:
            before = None  # the range was shortened
        self._adapt(end - start + 1, len(logs))

        window_from = max(start, head - self.config.window + 1)
        # A node may answer with logs outside the range asked for: those are not ours to
        # apply now (below: applied already; above: not verified yet).
        numbers_of: dict[str, int] = {}
        in_range: list[tuple[int, dict[str, Any]]] = []
        for log in logs:
            hex_number = log["blockNumber"]
            number = numbers_of.get(hex_number)
            if number is None:
                number = numbers_of[hex_number] = int(hex_number, 16)
            if start <= number <= end:
                in_range.append((number, log))
        log_blocks = {n for n in numbers_of.values() if start <= n <= end}
        numbers = {start - 1, end} | log_blocks
        if window_from <= end:
            numbers.update(range(window_from, end + 1))
        headers = await self.headers(numbers)
        missing = [n for n, h in headers.items() if h is None]
        if missing:
            raise NodeBehind(f"node has no block {min(missing)} (asked up to {end})")
        got: dict[int, Header] = {n: h for n, h in headers.items() if h is not None}
        last = got[end]
        if before is not None and before.hash != last.hash:
            raise InconsistentChain(f"block {end} changed while its range was fetched")

        seen: set[tuple[str, int]] = set()
        events: list[DecodedEvent] = []
        decode = self.decoder.decode
        for position, (number, log) in enumerate(in_range):
            if position % YIELD_EVERY == YIELD_EVERY - 1:
                # Decoding a range takes long enough to starve the batch being written:
                # let its next statement go out to the database's thread now and then.
                await asyncio.sleep(0)
            if log.get("removed"):
                raise InconsistentChain("the node returned a removed log")
            if log["blockHash"] != got[number].hash:
                raise InconsistentChain(f"log of block {number} from another fork")
            event = decode(log)
            ident = (event.block_hash, event.log_index)
            if ident in seen:
                continue  # a node that repeats a log: (block hash, log index) is unique
            seen.add(ident)
            events.append(event)
        events.sort(key=CHAIN_ORDER)

        window_headers: list[Header] = []
        if window_from <= end:
            window_headers = [got[n] for n in range(window_from, end + 1)]
            chain = [got[window_from - 1]] if window_from - 1 in got else []
            chain += window_headers
            for parent, child in itertools.pairwise(chain):
                if child.parent_hash != parent.hash:
                    raise InconsistentChain(f"block {child.number} does not follow its parent")
        return FetchedRange(
            start=start,
            end=end,
            head=head,
            previous=got[start - 1],
            last=last,
            events=events,
            times={n: got[n].timestamp for n in log_blocks},
            window_from=window_from,
            window_headers=window_headers,
            headers=got,
        )
