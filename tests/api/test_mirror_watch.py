"""A write's wait for the mirror (:class:`backend.gateway.mirror_watch.MirrorWatch`): woken by
the indexer's ``NOTIFY`` on PostgreSQL, by a short poll on SQLite, and by the poll again while
the listening connection is down. The checkpoint is moved with the indexer's own
:mod:`indexer.store` functions, in transactions as the indexer commits them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.gateway.mirror_watch import MirrorWatch, _asyncpg_dsn
from db.engine import create_engine
from indexer import store
from indexer.models import migrate
from indexer.store import CheckpointState, Header

#: Liveness bound for things that happen within milliseconds on an idle machine.
PATIENCE_S = 60.0


def block_hash(number: int, branch: int = 0) -> str:
    """The hash of block ``number`` on ``branch`` (branch 0: ``0x`` and the number)."""
    return f"0x{branch:02x}{number:062x}"


def header(number: int, branch: int = 0) -> Header:
    parent = block_hash(number - 1, branch)
    return Header(number, block_hash(number, branch), parent, 1_000 + number)


class Mirror:
    """A migrated mirror whose checkpoint the test moves as the indexer would."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.state: CheckpointState | None = None

    async def start(self, block: int) -> None:
        async with self.engine.begin() as conn:
            self.state = await store.create_checkpoint(conn, 31337, {}, header(block))

    async def advance(self, block: int, branch: int = 0) -> None:
        assert self.state is not None
        new = store.next_checkpoint(
            self.state, header(block, branch), self.state.journaled_from, 64
        )
        async with self.engine.begin() as conn:
            self.state = await store.advance(conn, self.state, new, [header(block, branch)])

    async def roll_back(self, ancestor: int) -> None:
        """The indexer's handling of a reorganisation: back to ``ancestor`` (of branch 0)."""
        assert self.state is not None
        async with self.engine.begin() as conn:
            self.state = await store.rollback(conn, self.state, ancestor, block_hash(ancestor))


@pytest.fixture
async def mirror(database_url: str) -> AsyncIterator[Mirror]:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        m = Mirror(engine)
        await m.start(10)
        yield m
    finally:
        await engine.dispose()


async def eventually(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(PATIENCE_S):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


async def settled(watch: MirrorWatch) -> asyncio.Future[bool]:
    """Start a waiter for block 12, and let the watch reach its steady state."""
    waiter = asyncio.ensure_future(watch.wait(12, PATIENCE_S))
    if watch.listen:
        await eventually(lambda: watch.listening)
        # The poll that ran until the listener was up has stopped.
        await eventually(lambda: watch._task is None or watch._task.done())
    else:
        await eventually(lambda: watch.polls > 0)
    return waiter


async def test_a_waiting_write_is_woken_when_the_checkpoint_passes_its_block(
    mirror: Mirror,
) -> None:
    watch = MirrorWatch(mirror.engine)
    try:
        waiter = await settled(watch)
        polls = watch.polls
        await mirror.advance(11)
        await eventually(lambda: watch.reached == 11)
        assert not waiter.done()  # block 11 is not the waiter's 12
        await mirror.advance(12)
        assert await waiter is True
        assert watch.reached == 12
        if watch.listen:  # PostgreSQL: woken by notifications, no poll meanwhile
            assert watch.notifications >= 2
            assert watch.polls == polls
            # A later write of an older block is answered from what the notifications said.
            assert await watch.wait(12, 0) is True
        else:  # SQLite: the poll, nothing else
            assert watch.notifications == 0
            assert watch.polls > polls
    finally:
        await watch.close()


async def test_the_wait_runs_out_when_the_mirror_stays_behind(mirror: Mirror) -> None:
    watch = MirrorWatch(mirror.engine)
    try:
        assert await watch.wait(11, 0.2) is False
        assert await watch.wait(11, 0) is False
        assert await watch.wait(10, 5) is True
    finally:
        await watch.close()


async def test_a_checkpoint_on_a_lost_branch_is_not_the_writes_block(mirror: Mirror) -> None:
    """The node went back to block 10 and mined the write in its own block 11 (branch 1) while
    the mirror still stands at 12 of the lost branch 0: the number is reached, the block is
    not. The wait goes on until the indexer rolls back and follows branch 1, and runs out
    (Mirror-Behind) if it does not."""
    await mirror.advance(11)
    await mirror.advance(12)
    write = block_hash(11, branch=1)
    watch = MirrorWatch(mirror.engine)
    try:
        assert await watch.wait(11, 0.2, block_hash(11)) is True  # branch 0's own block
        assert await watch.wait(11, 0.3, write) is False
        assert await watch.wait(11, 0, write) is False
        waiter = asyncio.ensure_future(watch.wait(11, PATIENCE_S, write))
        await eventually(lambda: watch.lost_branch >= 4)
        assert not waiter.done()
        await mirror.roll_back(10)
        await mirror.advance(11, branch=1)
        assert await waiter is True
        # The hash compared whatever the case of its hex digits.
        assert await watch.wait(11, 0.2, write.upper().replace("0X", "0x")) is True
    finally:
        await watch.close()


async def test_a_write_whose_block_is_mirrored_costs_at_most_one_query(mirror: Mirror) -> None:
    await mirror.advance(11)
    watch = MirrorWatch(mirror.engine)
    try:
        waiter = asyncio.ensure_future(watch.wait(12, PATIENCE_S, block_hash(12)))
        await eventually(lambda: watch.polls > 0 or watch.listening)
        assert watch.branch_checks == 0  # no look at the headers below the write's block
        await mirror.advance(12)
        assert await waiter is True
        # PostgreSQL: one query; SQLite: the headers the poll read with the checkpoint.
        assert watch.branch_checks == (1 if watch.listening else 0)
        # A header no longer kept (below the reorg window): the number decides.
        async with mirror.engine.begin() as conn:
            await conn.execute(text("DELETE FROM block_headers WHERE number = 11"))
        assert await watch.wait(11, 0.2, block_hash(11, branch=1)) is True
    finally:
        await watch.close()


@pytest.mark.postgres
async def test_a_lost_listening_connection_falls_back_to_polling_and_comes_back(
    mirror: Mirror,
) -> None:
    if mirror.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    watch = MirrorWatch(mirror.engine)
    try:
        waiter = await settled(watch)
        first = watch.listener_pid
        assert first is not None
        admin = await asyncpg.connect(_asyncpg_dsn(mirror.engine))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        await eventually(lambda: watch.listener_pid != first)
        await mirror.advance(11)
        await mirror.advance(12)
        assert await waiter is True  # by the poll or by the new listener, whichever came first
        await eventually(lambda: watch.listening)
        notifications = watch.notifications
        await mirror.advance(13)
        await eventually(lambda: watch.reached == 13)
        assert watch.notifications > notifications
    finally:
        await watch.close()


async def test_closing_the_watch_closes_its_listening_connection(mirror: Mirror) -> None:
    watch = MirrorWatch(mirror.engine)
    waiter = await settled(watch)
    pid = watch.listener_pid
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    await watch.close()
    assert watch._listener is None
    assert not watch.listening
    if pid is not None:
        admin = await asyncpg.connect(_asyncpg_dsn(mirror.engine))
        try:
            rows = await admin.fetch("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid)
            async with asyncio.timeout(PATIENCE_S):
                while rows:
                    await asyncio.sleep(0.05)
                    rows = await admin.fetch("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid)
        finally:
            await admin.close()
