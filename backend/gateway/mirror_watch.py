"""The mirror's checkpoint as one API worker sees it (:class:`MirrorWatch`).

A mined write waits (at most the gateway's ``mirror_wait_s``) for the mirror's checkpoint to
reach its block, and for the mirror's header at that height to be the write's block (after a
reorganisation the checkpoint can stand on a lost branch at or above it), through one watch per
worker: on PostgreSQL it is woken by the indexer's
``NOTIFY`` of each committed checkpoint (one listening connection per worker); on SQLite a
single task polls the checkpoint while someone waits. A burst of writes waiting for a stopped
indexer holds no pooled database connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.types import table_of
from indexer import models as mirror
from indexer.store import CHECKPOINT_CHANNEL

_CHECKPOINT = table_of(mirror.Checkpoint)
_HEADERS = table_of(mirror.BlockHeader)

#: The poll reads the headers of this many blocks up to the checkpoint with it: a write whose
#: block is among them is checked against them, with no query of its own.
RECENT_HEADERS = 16

log = logging.getLogger("tierflow.api")


class MirrorWatch:
    """The mirror's checkpoint as one worker sees it, and the writes waiting for it to move.

    On PostgreSQL the worker holds one connection of its own (outside the pool) that
    ``LISTEN``s on :data:`indexer.store.CHECKPOINT_CHANNEL`: the indexer notifies every
    committed checkpoint, and the notification wakes the waiters. It is opened by the first
    wait and kept for the worker's life; while it is down (the database restarting) the watch
    polls, and it reconnects with backoff. On SQLite (no notifications) a single task polls the
    checkpoint every ``interval_s`` while anyone waits. Either way a burst of writes waiting
    for a stopped indexer holds no pooled connection.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        interval_s: float = 0.05,
        *,
        listen: bool | None = None,
        keepalive_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.keepalive_s = keepalive_s
        self.reached: int | None = None
        #: Listen for the indexer's notifications (default: on PostgreSQL).
        self.listen = engine.dialect.name == "postgresql" if listen is None else listen
        #: The listening connection is up and has read the checkpoint since it connected:
        #: ``reached`` then follows every change, with no poll.
        self.listening = False
        #: Checkpoint reads by the poll task, notifications received, hash checks by a query
        #: of the waiter's own, and blocks found on a lost branch (for the tests).
        self.polls = 0
        self.notifications = 0
        self.branch_checks = 0
        self.lost_branch = 0
        #: The mirror's recent headers (number to lower-case hash) read with ``reached`` by the
        #: poll; empty when ``reached`` came from a notification.
        self._headers: dict[int, str] = {}
        #: The server process of the listening connection, while there is one.
        self.listener_pid: int | None = None
        self._read_at = 0.0
        self._waiters = 0
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    async def read(self) -> int | None:
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(select(mirror.Checkpoint.block_number))
            ).scalar_one_or_none()
        return None if value is None else int(value)

    async def _read_recent(self) -> tuple[int, dict[int, str]] | None:
        """The checkpoint and the headers of the :data:`RECENT_HEADERS` blocks up to it, in one
        query (a range of the headers' primary key), so the two agree."""
        recent = _HEADERS.c.number > _CHECKPOINT.c.block_number - RECENT_HEADERS
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(_CHECKPOINT.c.block_number, _HEADERS.c.number, _HEADERS.c.hash)
                    .select_from(_CHECKPOINT.outerjoin(_HEADERS, recent))
                    .where(_CHECKPOINT.c.id == 1)
                )
            ).all()
        if not rows:
            return None
        headers = {int(r.number): str(r.hash).lower() for r in rows if r.number is not None}
        return int(rows[0].block_number), headers

    async def wait(self, block: int, timeout_s: float, block_hash: str | None = None) -> bool:
        """True once the checkpoint is at ``block`` or above and, given ``block_hash`` (the
        write's receipt's), the mirror's header at ``block`` is that block; False after
        ``timeout_s``.

        The number alone is not enough: after a reorganisation (a node restarted from an older
        state) and before the indexer's next look, the checkpoint can be at or above the
        write's block while on the lost branch, and reads would answer from lost blocks. So once
        the number is reached the hash is checked: against the recent headers the poll read
        with the checkpoint (SQLite), else by one query (:meth:`on_branch`, the checkpoint and
        the header at ``block``, each by primary key); another hash there counts as "not
        there yet", looked at again after the checkpoint next moves."""
        start = time.monotonic()
        deadline = start + timeout_s
        since = start - self.interval_s  # a reading older than that may miss a reorg lowering it
        waiting = False
        try:
            while True:
                moved = self._moved
                if self._number_reached(block, since) and await self._on_branch(block, block_hash):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if not waiting:
                    waiting = True
                    self._waiters += 1
                    if self.listen and self._listener is None:
                        self._listener = asyncio.create_task(self._listen())
                    self._ensure_poll()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
                # that comes as the checkpoint moves, and a cancelled write went on.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await moved.wait()
        finally:
            if waiting:
                self._waiters -= 1

    def _number_reached(self, block: int, since: float) -> bool:
        """The checkpoint as last seen is at ``block`` or above, and that is current: the
        listening connection follows every change, or the poll read it since ``since``."""
        current = self.listening or self._read_at >= since
        return current and self.reached is not None and self.reached >= block

    async def _on_branch(self, block: int, block_hash: str | None) -> bool:
        """:meth:`on_branch`, from the headers the poll read with the checkpoint when they hold
        ``block``."""
        if block_hash is None:
            return True
        known = self._headers.get(block)
        if known is None:
            found = await self.on_branch(block, block_hash)
        else:
            found = known == block_hash.lower()
        if not found:
            self.lost_branch += 1
        return found

    async def on_branch(self, block: int, block_hash: str | None) -> bool:
        """The mirror's checkpoint is at ``block`` or above and its header at ``block`` is
        ``block_hash`` (``None``: the number alone). One query: the checkpoint and the header,
        each by primary key. A header no longer kept (a block below the reorg window) cannot be
        compared: the number decides."""
        if block_hash is None:
            return True
        self.branch_checks += 1
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_CHECKPOINT.c.block_number, _HEADERS.c.hash)
                    .select_from(_CHECKPOINT.outerjoin(_HEADERS, _HEADERS.c.number == block))
                    .where(_CHECKPOINT.c.id == 1)
                )
            ).first()
        if row is None or int(row.block_number) < block:
            return False
        return row.hash is None or str(row.hash).lower() == block_hash.lower()

    async def close(self) -> None:
        """Stop the listening connection and the poll (the worker is stopping)."""
        if self._listener is not None:  # first: losing it may start a poll
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.listening = False

    def _ensure_poll(self) -> None:
        if self.listening or self._waiters <= 0:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())

    def _reached(self, value: int, headers: dict[int, str] | None = None) -> None:
        """The checkpoint is ``value`` (and the mirror's recent ``headers`` with it, when the
        poll read them): wake every waiter (each checks it against its block)."""
        self._read_at = time.monotonic()
        self.reached = value
        self._headers = headers or {}
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def _poll(self) -> None:
        while self._waiters > 0 and not self.listening:
            try:
                value = await self._read_recent()
            except Exception:  # the database is down: the waiters time out, nothing crashes
                value = None
            self.polls += 1
            if value is not None:
                self._reached(*value)
            await asyncio.sleep(self.interval_s)

    async def _listen(self) -> None:
        """Keep one ``LISTEN`` connection up; poll (for the waiters) while it is down."""
        delay = self.interval_s
        while True:
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(_asyncpg_dsn(self.engine))
                self.listener_pid = conn.get_server_pid()

                def notified(_c: Any, _pid: int, _channel: str, payload: str) -> None:
                    self.notifications += 1
                    with contextlib.suppress(ValueError):
                        self._reached(int(payload))

                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHECKPOINT_CHANNEL, notified)
                # Listening from here on: read once for what was committed before.
                value = await conn.fetchval(
                    f"SELECT block_number FROM {mirror.Checkpoint.__tablename__} WHERE id = 1"
                )
                if value is not None:
                    self._reached(int(value))
                self.listening = True
                delay = self.interval_s
                while not lost.is_set():
                    # A connection dropped without a FIN shows only when used. (asyncio.timeout,
                    # not wait_for: on Python 3.11 wait_for drops a cancellation that comes as
                    # the keepalive is answered or the connection drops, and close() waited
                    # for ever on a listener that reconnected.)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.keepalive_s):
                            await lost.wait()
                    if not lost.is_set():
                        async with asyncio.timeout(self.keepalive_s):
                            await conn.fetchval("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("mirror watch: listening connection lost (%r); polling meanwhile", exc)
            finally:
                self.listening = False
                self.listener_pid = None
                self._ensure_poll()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=1))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _asyncpg_dsn(engine: AsyncEngine) -> str:
    """The engine's PostgreSQL URL as asyncpg's own ``connect`` takes it."""
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)
