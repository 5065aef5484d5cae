"""The SQLite writer gate (:mod:`db.sqlite_gate`): inside one process the writing transactions
on a file queue in the event loop, first come first served, and meet SQLite's lock only across
processes; reads never wait for it; it is handed on at every way a transaction ends; a writer
that waits past the engine's lock wait fails as SQLite's busy timeout would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.engine import create_engine, create_pooled_engine, sessions


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


async def _made(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = await _made(create_pooled_engine(f"sqlite:///{tmp_path / 'x.db'}", lock_wait_s=5.0))
    try:
        yield made
    finally:
        await made.dispose()


@pytest.fixture
async def no_busy_wait(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """SQLite's own busy timeout at zero: two of this process's connections meeting at SQLite's
    lock would fail at once, so every write that succeeds was queued by the gate (which waits
    up to 5 s)."""
    made = await _made(
        create_engine(
            f"sqlite:///{tmp_path / 'y.db'}",
            lock_wait_s=5.0,
            connect_args={"timeout": 0},
            pool_size=20,
            max_overflow=20,
        )
    )
    try:
        yield made
    finally:
        await made.dispose()


async def test_writers_of_one_process_queue_instead_of_meeting_at_sqlites_lock(
    no_busy_wait: AsyncEngine,
) -> None:
    engine = no_busy_wait
    inside = 0
    most = 0

    async def write(i: int) -> None:
        nonlocal inside, most
        async with engine.begin() as conn:
            await conn.execute(insert(Row).values(id=i, name=f"r{i}"))
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)  # the transaction stays open across awaits
            await conn.execute(insert(Row).values(id=100 + i, name=f"s{i}"))
            inside -= 1

    await asyncio.gather(*(write(i) for i in range(16)))
    async with engine.connect() as conn:
        rows = (await conn.execute(select(Row.id))).scalars().all()
    assert len(rows) == 32
    assert most == 1


async def test_reads_do_not_wait_for_a_writer(engine: AsyncEngine) -> None:
    held = asyncio.Event()
    done = asyncio.Event()

    async def writer() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(Row).values(id=1, name="a"))
            held.set()
            await done.wait()

    task = asyncio.create_task(writer())
    await held.wait()
    async with sessions(engine)() as session:
        found = await asyncio.wait_for(session.scalar(select(Row.id).where(Row.id == 1)), 2)
    assert found is None  # the writer's row is not committed yet; the read did not wait
    done.set()
    await task


async def test_a_writer_waiting_past_the_lock_wait_fails_as_sqlite_would(
    tmp_path: Path,
) -> None:
    engine = await _made(create_pooled_engine(f"sqlite:///{tmp_path / 'z.db'}", lock_wait_s=0.3))
    try:
        held = asyncio.Event()
        done = asyncio.Event()

        async def holder() -> None:
            async with engine.begin() as conn:
                await conn.execute(insert(Row).values(id=1, name="a"))
                held.set()
                await done.wait()

        task = asyncio.create_task(holder())
        await held.wait()
        with pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as conn:
                await conn.execute(insert(Row).values(id=2, name="b"))
        done.set()
        await task
        async with engine.begin() as conn:  # the gate was handed on at the holder's commit
            await conn.execute(insert(Row).values(id=3, name="c"))
        async with engine.connect() as conn:
            assert (await conn.execute(select(Row.id).order_by(Row.id))).scalars().all() == [1, 3]
    finally:
        await engine.dispose()


async def test_the_gate_passes_on_at_rollback_and_at_a_session_closed_mid_transaction(
    engine: AsyncEngine,
) -> None:
    async def gives_up() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(Row).values(id=1, name="a"))
            raise RuntimeError("the caller gives up")

    # An exception inside the transaction: rolled back, the gate passed on.
    with pytest.raises(RuntimeError):
        await gives_up()
    # A session's commit, then one closed without committing.
    async with sessions(engine)() as session:
        await session.execute(insert(Row).values(id=2, name="b"))
        await session.commit()
    session = sessions(engine)()
    await session.execute(insert(Row).values(id=3, name="c"))
    await session.close()  # never committed: the pool's reset rolls it back
    # Each of these would wait the full 5 s and fail if the gate were still held.
    for i in (4, 5):
        async with engine.begin() as conn:
            await asyncio.wait_for(conn.execute(insert(Row).values(id=i, name=f"r{i}")), 2)
    async with engine.connect() as conn:
        ids = (await conn.execute(select(Row.id).order_by(Row.id))).scalars().all()
    assert ids == [2, 4, 5]


async def test_the_gate_passes_on_at_commit_on_a_connection_still_checked_out(
    engine: AsyncEngine,
) -> None:
    """The dialect's commit is given the pool's proxy of the connection, not the DBAPI
    connection the gate was taken for: the gate must pass on at the commit all the same, not
    only when the connection goes back to the pool."""
    async with engine.connect() as conn:
        await conn.execute(insert(Row).values(id=1, name="a"))
        await conn.commit()
        async with engine.begin() as other:  # would wait the 5 s and fail
            await asyncio.wait_for(other.execute(insert(Row).values(id=2, name="b")), 2)
        await conn.execute(insert(Row).values(id=3, name="c"))
        await conn.rollback()
        async with engine.begin() as other:
            await asyncio.wait_for(other.execute(insert(Row).values(id=4, name="d")), 2)
    async with engine.connect() as conn:
        assert (await conn.execute(select(Row.id).order_by(Row.id))).scalars().all() == [1, 2, 4]


async def test_a_writer_cancelled_as_the_gate_reaches_it_is_cancelled(
    engine: AsyncEngine,
) -> None:
    """A task waiting for the gate and cancelled at any point around the moment the gate is
    handed to it ends cancelled, and the gate goes on to the next writer. (Through Python
    3.11's ``asyncio.wait_for`` the cancellation was dropped when it came just after the
    lock was handed over: the task wrote on, and a task cancelled to end it, such as the
    idempotency lease's renewal, never ended: its request hung.)"""

    async def holder(name: str, held: asyncio.Event, release: asyncio.Event) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(Row).values(name=name))
            held.set()
            await release.wait()

    async def waiter(name: str) -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(Row).values(name=name))

    for turns in range(12):
        held, release = asyncio.Event(), asyncio.Event()
        holding = asyncio.create_task(holder(f"h{turns}", held, release))
        await held.wait()
        waiting = asyncio.create_task(waiter(f"w{turns}"))
        await asyncio.sleep(0.05)  # the waiter is queued at the gate
        release.set()
        for _ in range(turns):
            await asyncio.sleep(0)
        if waiting.cancel():  # not done yet: the cancellation must hold
            with pytest.raises(asyncio.CancelledError):
                await waiting
        else:
            await waiting
        await holding
        async with engine.begin() as conn:  # the gate is free again
            await asyncio.wait_for(conn.execute(insert(Row).values(name=f"n{turns}")), 2)
