"""The indexer: fetch → decode → apply → store, one path for backfill and live following.

:class:`Indexer` owns one database connection (holding the single-writer lock) and loops:
read the head; if the checkpoint's block is no longer on the node's chain, roll back to the
common ancestor; otherwise fetch the next range (the one after it is fetched while this one
is applied), apply its events in (block, transaction, log) order through the handlers and
commit rows, headers and checkpoint in one transaction. Node faults are retried with
backoff and nothing is committed that was not verified. ``run(once=True)`` returns when the
mirror has caught up with the head (minus the confirmation depth).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import create_engine, sqlite_path
from db.types import table_of
from indexer import indexes, metrics, store
from indexer.config import IndexerConfig
from indexer.errors import (
    InconsistentChain,
    IndexerError,
    NodeBehind,
    ReorgTooDeep,
)
from indexer.fetch import YIELD_EVERY, FetchedRange, Fetcher
from indexer.handlers import HANDLERS, prefetch_keys
from indexer.lock import WriterLock
from indexer.models import IndexerStatus, migrate
from indexer.outbox import outbox_row
from indexer.progress import ProgressBar
from indexer.rows import event_row
from indexer.store import CheckpointState, Header
from indexer.unit_of_work import BatchUnitOfWork, SealedBatch
from ledger.artifacts import load_artifact
from ledger.codec import Decoder
from ledger.deployment import AUDIT_ANCHOR, ContractRecord, Deployment
from ledger.jsonrpc import NodeUnavailable, RetryPolicy, RpcClient

log = structlog.get_logger("tierflow.indexer")


def mirrored_contracts(deployment: Deployment) -> dict[str, ContractRecord]:
    """The contracts whose events the mirror follows: all but the audit log's anchors (the
    API's bookkeeping, read from the contract's views, not business events)."""
    return {n: r for n, r in deployment.contracts.items() if n != AUDIT_ANCHOR}


#: Faults the loop waits out: the node is down, lagging, or changed under our feet.
TRANSIENT = (NodeUnavailable, InconsistentChain, NodeBehind)
#: The longest wait between two looks at a node behind the checkpoint: a look is one header
#: request, and the node may come back on another branch (a restart from an older state),
#: which the mirror must follow promptly; the heartbeat is written at each look too.
NODE_BEHIND_MAX_WAIT_S = 1.0


@dataclass(frozen=True)
class _Prepared:
    """A batch applied in memory and sealed, waiting for its transaction."""

    fetched: FetchedRange
    start: int  # first block applied (above the checkpoint it follows)
    events: int
    batch: SealedBatch
    before: CheckpointState  # the checkpoint it follows
    after: CheckpointState  # the checkpoint once it is written
    kept: list[Header]  # headers of the reorg window it adds
    started: float


@dataclass
class RunStats:
    """What a :meth:`Indexer.run` did."""

    events: int = 0
    blocks: int = 0
    batches: int = 0
    reorgs: int = 0
    retries: int = 0
    seconds: float = 0.0
    checkpoint: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Indexer:
    """Mirrors one deployment into one database; see the module docstring."""

    def __init__(
        self,
        config: IndexerConfig,
        engine: AsyncEngine,
        conn: AsyncConnection,
        rpc: RpcClient,
        checkpoint: CheckpointState,
    ) -> None:
        self.config = config
        self.engine = engine
        self._conn = conn
        self.rpc = rpc
        self._checkpoint = checkpoint
        contracts = {
            name: (record.address, load_artifact(name).abi)
            for name, record in mirrored_contracts(config.deployment).items()
        }
        self.fetcher = Fetcher(rpc, Decoder(contracts), config)
        self.uow = BatchUnitOfWork(copy=config.copy)
        self._pending: asyncio.Task[None] | None = None
        self._first_seen: dict[int, float] = {}
        #: The head as last polled (``_head``), when it was first seen there, and the time
        #: between that head and the one before it (for the busy poll: :meth:`idle_delay`).
        self._head: int | None = None
        self._head_moved_at = -math.inf
        self._head_gap = math.inf
        self._beat_at = 0.0
        #: The mirror's secondary indexes are missing (dropped for a backfill, maybe by a
        #: process that stopped before building them again): build them once caught up.
        self.indexes_deferred = False
        self.stats = RunStats()

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, config: IndexerConfig) -> AsyncIterator[Indexer]:
        """Connect, take the writer lock, migrate, and check the mirror is this deployment's."""
        engine = create_engine(config.database_url)
        rpc = RpcClient(
            config.rpc_url,
            timeout_s=config.rpc_timeout_s,
            retry=RetryPolicy(),
            on_error=metrics.count_rpc_error,
        )
        lock: WriterLock | None = None
        conn: AsyncConnection | None = None
        try:
            conn = await engine.connect()
            lock = WriterLock(conn, sqlite_path(config.database_url))
            await lock.acquire(wait=config.wait_for_lock)
            await migrate(engine)
            checkpoint = await cls._start(conn, config, rpc)
            indexer = cls(config, engine, conn, rpc, checkpoint)
            indexer.indexes_deferred = bool(await indexes.missing(conn))
            try:
                yield indexer
            finally:
                await indexer._cancel_pending()
        finally:
            if lock is not None:
                await lock.release()
            if conn is not None:
                await conn.close()
            await rpc.aclose()
            await engine.dispose()

    @staticmethod
    async def _start(
        conn: AsyncConnection, config: IndexerConfig, rpc: RpcClient
    ) -> CheckpointState:
        deployment = {n: r.address for n, r in config.deployment.contracts.items()}
        chain_id = int(await rpc.call("eth_chainId", []), 16)
        async with conn.begin():
            checkpoint = await store.read_checkpoint(conn)
            if checkpoint is not None:
                if checkpoint.chain_id != chain_id or checkpoint.deployment != deployment:
                    raise IndexerError(
                        f"this database mirrors chain {checkpoint.chain_id} deployment "
                        f"{checkpoint.deployment}, not chain {chain_id} {deployment}"
                    )
                return checkpoint
            if chain_id != config.deployment.chain_id:
                raise IndexerError(
                    f"the node is chain {chain_id}, the deployment is for "
                    f"{config.deployment.chain_id}"
                )
            start = min(r.start_block for r in config.deployment.contracts.values()) - 1
            raw = await rpc.call("eth_getBlockByNumber", [hex(max(start, 0)), False])
            if raw is None:
                raise NodeBehind(f"node has no block {start}")
            header = Header(
                int(raw["number"], 16), raw["hash"], raw["parentHash"], int(raw["timestamp"], 16)
            )
            return await store.create_checkpoint(conn, chain_id, deployment, header)

    async def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pending
            self._pending = None

    @property
    def checkpoint(self) -> CheckpointState:
        return self._checkpoint

    # -- the loop ------------------------------------------------------------------------------

    async def run(
        self, once: bool = False, progress: bool = False, stop: asyncio.Event | None = None
    ) -> RunStats:
        """Follow the chain (``once``: until caught up). Transient faults are waited out."""
        with _heap_frozen():
            return await self._run(once, progress, stop)

    async def _run(self, once: bool, progress: bool, stop: asyncio.Event | None) -> RunStats:
        started = time.perf_counter()
        failures = 0
        bar = ProgressBar(progress)
        try:
            while stop is None or not stop.is_set():
                try:
                    caught_up = await self.catch_up(bar)
                    failures = 0
                    with contextlib.suppress(Exception):  # a missed beat is not a failure
                        await self.heartbeat()
                except TRANSIENT as exc:
                    with contextlib.suppress(Exception):
                        await self.heartbeat()
                    await self._cancel_pending()
                    failures += 1
                    self.stats.retries += 1
                    delay = min(self.config.max_backoff_s, 0.1 * 2 ** min(failures, 10))
                    if isinstance(exc, NodeBehind):
                        delay = min(delay, NODE_BEHIND_MAX_WAIT_S)
                    delay *= 0.5 + random.random() / 2
                    log.warning(
                        "indexer.retry",
                        error=type(exc).__name__,
                        detail=str(exc),
                        attempt=failures,
                        delay_s=round(delay, 3),
                        checkpoint=self._checkpoint.block_number,
                    )
                    await asyncio.sleep(delay)
                    continue
                if caught_up:
                    if once:
                        break
                    await _sleep_or_stop(self.idle_delay(), stop)
        finally:
            bar.close()
            await self._cancel_pending()
            self.stats.seconds += time.perf_counter() - started
            self.stats.checkpoint = self._checkpoint.block_number
        return self.stats

    def idle_delay(self) -> float:
        """Seconds until the next look at the head, once caught up (:func:`idle_delay`)."""
        return idle_delay(self.config, self._head_gap, time.monotonic() - self._head_moved_at)

    async def catch_up(self, bar: ProgressBar | None = None) -> bool:
        """Index up to the current head; True once caught up (nothing left to fetch)."""
        head = await self.fetcher.head()
        now = time.monotonic()
        if head != self._head:  # _record_lag below records it
            self._head_gap = now - self._head_moved_at
            self._head_moved_at = now
        self._first_seen.setdefault(head, now)
        target = head - self.config.confirmations
        checkpoint = self._checkpoint
        self._record_lag(head)
        if target <= checkpoint.block_number:
            if await self._verify_checkpoint(head):
                return False  # rolled back: the node's branch is still to index
            if self.indexes_deferred:
                await self._build_indexes()
            return True
        behind = target - checkpoint.block_number
        limit = self.config.defer_indexes_blocks
        if limit and behind > limit and not self.indexes_deferred:
            await self._drop_indexes(behind)
        if bar is not None:
            bar.start(checkpoint.block_number, target)
        # One batch is written (its own transaction) while the next is applied in memory.
        writing: asyncio.Task[None] | None = None
        expected = self._checkpoint  # the checkpoint once ``writing`` has committed

        async def written() -> None:
            nonlocal writing
            if writing is not None:
                task, writing = writing, None
                await task

        self.uow.bind(self._conn, written)
        if not self.uow.warm:
            # Before the fetching starts: its decoding would hold up each of the warm-up's
            # round trips, and the first range would wait behind the ranges fetched ahead.
            await self.uow.warm_up()
        ahead: asyncio.Queue[FetchedRange | BaseException] = asyncio.Queue(
            maxsize=max(1, self.config.prefetch_ranges)
        )
        self._pending = asyncio.create_task(
            self._fetch_ahead(checkpoint.block_number + 1, target, head, ahead)
        )
        try:
            while expected.block_number < target:
                item = await ahead.get()
                if isinstance(item, BaseException):
                    raise item
                for piece in item.pieces(self.config.batch_events):
                    if piece.previous.hash != expected.block_hash:
                        await written()
                        await self._cancel_pending()
                        await self._reorganise()
                        return False
                    prepared = await self._apply(piece, expected)
                    if prepared is None:
                        continue
                    await written()
                    if bar is not None:
                        bar.update(self._checkpoint.block_number, self.stats.events)
                    self._record_lag(head)
                    writing = asyncio.create_task(self._write(prepared))
                    expected = prepared.after
            await written()
            if bar is not None:
                bar.update(self._checkpoint.block_number, self.stats.events)
            self._record_lag(head)
        finally:
            await self._cancel_pending()
            if writing is not None:
                # Leaving on another error: a batch already sealed is still written whole
                # (or not at all); its own failure, if any, was logged with the batch.
                with contextlib.suppress(Exception):
                    await writing
        return False

    async def _drop_indexes(self, behind: int) -> None:
        """A long backfill ahead: insert without the secondary indexes (:mod:`indexer.indexes`)."""
        log.info("indexer.indexes_deferred", behind_blocks=behind)
        self.indexes_deferred = True  # before the drop: a drop that fails half-way is rebuilt
        await indexes.drop(self._conn)

    async def _build_indexes(self) -> None:
        """Caught up: build the secondary indexes a backfill left out."""
        started = time.perf_counter()
        await indexes.build(self._conn)
        self.indexes_deferred = False
        log.info("indexer.indexes_built", seconds=round(time.perf_counter() - started, 3))

    async def _fetch_ahead(
        self,
        start: int,
        target: int,
        head: int,
        out: asyncio.Queue[FetchedRange | BaseException],
    ) -> None:
        """Fetch consecutive ranges up to ``target`` into ``out``, a few ahead of the commits.

        Decoding the next ranges overlaps with the database writing the current one. A
        failure is handed over in the queue, for the committing side to raise.
        """
        try:
            while start <= target:
                fetched = await self.fetcher.fetch(start, target, head)
                await out.put(fetched)
                start = fetched.end + 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await out.put(exc)

    async def _verify_checkpoint(self, head: int) -> bool:
        """Caught up: make sure the checkpoint block is still on the node's chain; True when
        it was not and the mirror rolled back."""
        checkpoint = self._checkpoint
        header = (await self.fetcher.headers([checkpoint.block_number]))[checkpoint.block_number]
        if header is None:
            # A node behind us, or a chain rolled back to fewer blocks (a node restarted from
            # an older state). Never roll back on a guess: only when the node's own head is
            # another block than ours at that height is it on another branch, not lagging.
            if await self._forked_below(head):
                await self._reorganise(node_head=head)
                return True
            raise NodeBehind(f"node head {head} is below the checkpoint {checkpoint.block_number}")
        if header.hash != checkpoint.block_hash:
            await self._reorganise()
            return True
        return False

    async def _forked_below(self, head: int) -> bool:
        """Is the node's block at its head ``head`` (below the checkpoint) another block than
        the mirror's at that height? False when the mirror keeps no header there (outside
        the window: :meth:`_reorganise` would find no ancestor either) or the same one."""
        async with self._conn.begin():
            kept = dict(await store.kept_headers(self._conn, head))
        if head not in kept:
            return False
        node = (await self.fetcher.headers([head]))[head]
        return node is not None and node.hash != kept[head]

    # -- one batch -----------------------------------------------------------------------------

    async def _commit(self, fetched: FetchedRange) -> None:
        """Apply ``fetched`` and move the checkpoint to its end, in one transaction."""
        self.uow.bind(self._conn)
        prepared = await self._apply(fetched, self._checkpoint)
        if prepared is not None:
            await self._write(prepared)

    async def _apply(self, fetched: FetchedRange, checkpoint: CheckpointState) -> _Prepared | None:
        """Apply ``fetched`` to the rows in memory, as the batch after ``checkpoint``.

        Blocks at or below the checkpoint were applied already: a range delivered again, or
        overlapping the checkpoint, only applies what lies above it (IX-2), and only if it saw
        the checkpoint's block with the checkpoint's hash (else :class:`InconsistentChain`).
        ``None`` when nothing lies above the checkpoint.
        """
        started = time.perf_counter()
        uow = self.uow
        if fetched.end <= checkpoint.block_number:
            return None
        start, events = fetched.start, fetched.events
        if start <= checkpoint.block_number:
            # The range's own view of the checkpoint block: a header it fetched, or the
            # block hash of a log in it (verified against that block's header).
            seen = {h.number: h.hash for h in (*fetched.window_headers, fetched.last)}
            seen.update((ev.block_number, ev.block_hash) for ev in events)
            if seen.get(checkpoint.block_number) != checkpoint.block_hash:
                raise InconsistentChain(
                    f"range {fetched.start}-{fetched.end} overlaps the checkpoint "
                    f"{checkpoint.block_number} but does not show its block hash"
                )
            start = checkpoint.block_number + 1
            events = [ev for ev in events if ev.block_number >= start]
        elif start != checkpoint.block_number + 1:
            raise InconsistentChain(
                f"range {fetched.start}-{fetched.end} does not follow the checkpoint "
                f"{checkpoint.block_number}"
            )
        journal_from = max(fetched.window_from, start)
        try:
            uow.begin(journal_from)
            await uow.prefetch(prefetch_keys(events))
            times = fetched.times
            for position, ev in enumerate(events):
                if position % YIELD_EVERY == YIELD_EVERY - 1:
                    # Handlers rarely wait for anything: let the batch being written send
                    # its next statement now and then, or the database's thread sits idle.
                    await asyncio.sleep(0)
                uow.block = ev.block_number
                block_time = times[ev.block_number]
                row = event_row(ev, block_time)
                uow.append_tuple("events", row)
                handler = HANDLERS.get(ev.key)
                if handler is not None:
                    await handler(uow, ev, block_time)
                    # Business events only (not the ERC-721/3525 compatibility logs).
                    uow.outbox(await outbox_row(uow, ev, row))
            batch = uow.seal(self._conn.dialect)
        except BaseException:
            uow.discard()
            raise
        contiguous = journal_from <= start
        journaled_from = (
            checkpoint.journaled_from if contiguous else min(journal_from, fetched.end + 1)
        )
        kept = [h for h in fetched.window_headers if h.number >= start] or [fetched.last]
        after = store.next_checkpoint(checkpoint, fetched.last, journaled_from, self.config.window)
        return _Prepared(fetched, start, len(events), batch, checkpoint, after, kept, started)

    async def _write(self, p: _Prepared) -> None:
        """Write a sealed batch with its headers and checkpoint, in one transaction (IX-3)."""
        conn = self._conn
        try:
            async with conn.begin():
                # The fenced checkpoint first: another writer's move fails the batch before
                # its rows are sent, and on PostgreSQL its statement opens the transaction
                # (a ``COPY`` sent first needs a statement of its own before it).
                new = await store.advance(conn, p.before, p.after, p.kept)
                await p.batch.write(conn)
        except BaseException as exc:
            self.uow.discard()
            if not isinstance(exc, asyncio.CancelledError):
                log.warning(
                    "indexer.batch_failed", start=p.start, end=p.fetched.end, error=repr(exc)
                )
            raise
        self._checkpoint = new
        elapsed = time.perf_counter() - p.started
        count = p.events
        self.stats.events += count
        self.stats.blocks += p.fetched.end - p.start + 1
        self.stats.batches += 1
        metrics.EVENTS.inc(count)
        metrics.BATCH_SECONDS.observe(elapsed)
        if elapsed > 0:
            metrics.EVENTS_PER_SECOND.set(count / elapsed)
        metrics.CHECKPOINT_BLOCK.set(new.block_number)
        log.debug(
            "indexer.batch",
            start=p.start,
            end=p.fetched.end,
            events=count,
            rows=p.batch.rows,
            seconds=round(elapsed, 4),
            range_size=self.fetcher.range_size,
        )

    # -- reorganisations -----------------------------------------------------------------------

    async def _reorganise(self, node_head: int | None = None) -> None:
        """Roll back to the newest kept block still on the node's chain (IX-4). With
        ``node_head`` (the node is on another branch below the checkpoint,
        :meth:`_forked_below`), kept blocks above the node's head are not on its chain."""
        checkpoint = self._checkpoint
        async with self._conn.begin():
            kept = await store.kept_headers(self._conn, checkpoint.journaled_from - 1)
        if node_head is not None:
            kept = [(n, h) for n, h in kept if n <= node_head]
        if not kept:
            raise ReorgTooDeep(checkpoint.block_number, None)
        chain = await self.fetcher.headers(n for n, _ in kept)
        ancestor: tuple[int, str] | None = None
        for number, kept_hash in kept:
            header = chain[number]
            if header is None:
                raise NodeBehind(f"node has no block {number} while looking for a common ancestor")
            if header.hash == kept_hash:
                ancestor = (number, kept_hash)
                break
        if ancestor is None:
            log.error("indexer.reorg_too_deep", checkpoint=checkpoint.block_number)
            raise ReorgTooDeep(checkpoint.block_number, kept[-1][0])
        if ancestor[0] == checkpoint.block_number:
            return
        try:
            async with self._conn.begin():
                new = await store.rollback(self._conn, checkpoint, ancestor[0], ancestor[1])
        finally:
            self.uow.discard()
        self._checkpoint = new
        depth = checkpoint.block_number - ancestor[0]
        self.stats.reorgs += 1
        metrics.REORGS.inc()
        metrics.REORG_DEPTH.set(depth)
        metrics.CHECKPOINT_BLOCK.set(new.block_number)
        log.warning(
            "indexer.reorg",
            rolled_back_from=checkpoint.block_number,
            ancestor=ancestor[0],
            depth=depth,
        )

    async def heartbeat(self, every_s: float = 1.0) -> None:
        """Tell the API this indexer is alive (``indexer_status``), at most every ``every_s``."""
        now = time.monotonic()
        if now - self._beat_at < every_s:
            return
        self._beat_at = now
        values = {
            "heartbeat_ms": int(time.time() * 1000),
            "head_block": self._head if self._head is not None else -1,
            "checkpoint_block": self._checkpoint.block_number,
            "pid": os.getpid(),
        }
        insert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        async with self._conn.begin():
            await self._conn.execute(
                insert(table_of(IndexerStatus))
                .values(id=1, **values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )

    def _record_lag(self, head: int) -> None:
        self._head = head
        number = self._checkpoint.block_number
        metrics.HEAD_LAG_BLOCKS.set(max(0, head - number))
        waiting = [t for b, t in self._first_seen.items() if b > number]
        metrics.HEAD_LAG_SECONDS.set(time.monotonic() - min(waiting) if waiting else 0.0)
        for b in [b for b in self._first_seen if b <= number]:
            del self._first_seen[b]


def idle_delay(config: IndexerConfig, head_gap: float, since_moved: float) -> float:
    """Seconds until the next look at the head, once caught up: ``config.busy_poll_s`` while
    blocks come less than ``config.busy_window_s`` apart (``head_gap``: between the last two
    heads seen) and the last came that recently (``since_moved``): a node that mines a block
    per transaction, as anvil does, while the API's writes wait for the mirror, each half a
    poll on average. ``config.poll_interval_s`` otherwise: a node that mines by the clock (QBFT,
    a block a second), or an idle one."""
    busy, window = config.busy_poll_s, config.busy_window_s
    if busy > 0 and head_gap < window and since_moved < window:
        return min(busy, config.poll_interval_s)
    return config.poll_interval_s


#: The collector's youngest-generation threshold while a run lasts (Python's default is 700):
#: net new container objects between two young passes (:func:`_heap_frozen`).
RUN_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """The heap alive when a run starts (modules, SQLAlchemy's and the ABIs' structures, the
    embedding process's own objects) left out of the collector's full passes while it runs
    (``gc.freeze``), then given back (``gc.unfreeze``); and the young passes spaced out.

    A backfill allocates fast: the decoded ranges in flight, each batch's rows and tuples
    live long enough to reach the oldest generation, so a full pass came every ~20,000
    events, and each walked the whole start-up heap (~164,000 objects in ``tierflow
    index``): 110-120 ms of a 20,945-event backfill's ~850 ms, 5-18 ms once frozen. What
    is allocated during the run is collected as before. A process that froze its heap
    itself (or a run already inside another's) is left as it is.

    The young passes: at Python's threshold (a pass per 700 new objects) a backfill made
    ~10 of them a batch, and each walked whatever of the ranges fetched ahead and the batch
    being written was still alive (parsed logs, decoded events, rows: every ``dict`` stays
    tracked until a full pass), promoting it to be walked again by the middle generation's
    passes; by the time a pass comes every :data:`RUN_GC_THRESHOLD` new objects most of
    that has been freed by its reference count. The threshold is put back when the run
    returns; cyclic garbage still goes at every pass.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], RUN_GC_THRESHOLD), *thresholds[1:])
    try:
        if gc.get_freeze_count():
            yield
            return
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
    finally:
        gc.set_threshold(*thresholds)


async def _sleep_or_stop(seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that comes
    # as ``stop`` is set.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
