"""SQLite through :mod:`db.engine`: a statement is one call on aiosqlite's connection thread
(:mod:`db.aiosqlite_cursor`), a read ends with no rollback sent, and nothing else changes:
rows, rowcount, lastrowid, many-row inserts, RETURNING, streaming, sqlite3's errors, and what
a commit keeps and a rollback (or a connection closed mid-transaction) drops."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Integer, String, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.engine import create_engine, create_pooled_engine, sessions


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


class Hops:
    n = 0


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> type[Hops]:
    """Counts calls made on aiosqlite's connection threads."""
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        Hops.n += 1
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    Hops.n = 0
    return Hops


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_pooled_engine(f"sqlite:///{tmp_path / 'x.db'}")
    async with made.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield made
    finally:
        await made.dispose()


async def test_a_read_makes_no_round_trip(engine: AsyncEngine, hops: type[Hops]) -> None:
    async with sessions(engine)() as session:
        session.add(Row(name="a"))
        await session.commit()
    hops.n = 0
    async with sessions(engine)() as session:  # a session's read, closed: no rollback sent
        found = (await session.execute(select(Row).where(Row.name == "a"))).scalar_one()
    assert found.name == "a"
    assert hops.n == 0  # a WAL reader waits for no writer: on the loop's thread
    hops.n = 0
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM rows"))).scalar() == 1
    assert hops.n == 0


async def test_results_and_errors_are_as_before(engine: AsyncEngine) -> None:
    async with sessions(engine)() as session:
        session.add_all([Row(name="a"), Row(name="b")])
        await session.flush()
        assert sorted(r.id for r in (await session.execute(select(Row))).scalars()) == [1, 2]
        await session.commit()
    async with engine.begin() as conn:
        many = await conn.execute(insert(Row), [{"name": "c"}, {"name": "d"}])
        assert many.rowcount == 2
        one = await conn.execute(text("INSERT INTO rows (name) VALUES ('e')"))
        assert (one.lastrowid, one.rowcount) == (5, 1)
        returned = await conn.execute(insert(Row).values(name="f").returning(Row.id))
        assert returned.scalar_one() == 6
        changed = await conn.execute(text("UPDATE rows SET name = name || '!' WHERE id < 3"))
        assert changed.rowcount == 2
        streamed = await conn.stream(text("SELECT id FROM rows ORDER BY id"))
        assert [r[0] async for r in streamed] == [1, 2, 3, 4, 5, 6]
    async with sessions(engine)() as session:
        session.add(Row(name="a!"))
        with pytest.raises(IntegrityError) as raised:
            await session.commit()
    assert type(raised.value.orig).__name__ == "IntegrityError"


async def test_commit_keeps_and_rollback_drops(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO rows (name) VALUES ('rolled back')"))
        await conn.rollback()
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO rows (name) VALUES ('kept')"))
        await conn.commit()
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO rows (name) VALUES ('never committed')"))
    async with engine.connect() as conn:  # the connection closed mid-transaction: rolled back
        names = (await conn.execute(text("SELECT name FROM rows"))).scalars().all()
    assert names == ["kept"]


async def test_a_plain_engine_has_the_same_cursor(tmp_path: Path, hops: type[Hops]) -> None:
    made = create_engine(f"sqlite:///{tmp_path / 'y.db'}")
    try:
        async with made.connect() as conn:
            hops.n = 0
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            await conn.execute(text("PRAGMA user_version"))  # not a SELECT: the thread
        assert hops.n == 1
    finally:
        await made.dispose()


async def test_an_open_transaction_makes_no_round_trip_after_its_first_write(
    engine: AsyncEngine, hops: type[Hops]
) -> None:
    hops.n = 0
    async with engine.begin() as conn:
        await conn.execute(insert(Row).values(name="a"))  # may wait for the lock: the thread
        assert hops.n == 1
        await conn.execute(insert(Row).values(name="b"))
        assert (await conn.execute(select(Row.name).order_by(Row.id))).scalars().all() == [
            "a",
            "b",
        ]
        with pytest.raises(IntegrityError):  # sqlite3's error, raised where it was
            await conn.execute(insert(Row).values(name="a"))
    assert hops.n == 1  # the commit too ran on the loop's thread
    hops.n = 0
    async with engine.connect() as conn:
        await conn.execute(insert(Row).values(name="c"))
        await conn.rollback()
    assert hops.n == 1
    async with engine.connect() as conn:
        names = (await conn.execute(select(Row.name).order_by(Row.id))).scalars().all()
    # The failed duplicate left its transaction's other rows, which committed.
    assert names == ["a", "b"]


async def test_outside_a_wal_file_every_statement_goes_to_the_thread(
    hops: type[Hops],
) -> None:
    made = create_engine("sqlite://")  # in memory: no WAL
    try:
        async with made.begin() as conn:
            await conn.execute(text("CREATE TABLE t (a INTEGER)"))
            hops.n = 0
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.execute(text("INSERT INTO t VALUES (2)"))
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 2
            assert hops.n == 3
    finally:
        await made.dispose()


async def test_the_loop_never_uses_a_connection_its_thread_is_busy_with(tmp_path: Path) -> None:
    """A call on a connection's thread that runs outside the cursor's own mutex (here an
    aiosqlite call of the connection's, as SQLAlchemy's adapter makes for a commit or an
    isolation level) and waits in SQLite's busy handler for another writer: a read on that
    connection meanwhile must queue behind it on the thread, not run on the loop's thread,
    where it would wait on SQLite's connection mutex and stop the event loop (and with it the
    other writer, which only the loop can let go) until the busy timeout."""
    path = tmp_path / "busy.db"
    made = create_pooled_engine(f"sqlite:///{path}", lock_wait_s=3.0)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        async with made.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds SQLite's lock
        async with made.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            busy = asyncio.ensure_future(driver.execute("INSERT INTO rows (name) VALUES ('x')"))
            await asyncio.sleep(0.1)  # on the thread, in the busy handler

            async def let_go() -> None:
                await asyncio.sleep(0.3)
                other.execute("COMMIT")

            started = time.monotonic()
            letting_go = asyncio.create_task(let_go())
            assert (await conn.execute(text("SELECT count(*) FROM rows"))).scalar() == 1
            await letting_go
            await busy
            await conn.rollback()
            assert time.monotonic() - started < 2.0  # not the busy timeout
    finally:
        other.close()
        await made.dispose()


async def test_a_transaction_whose_first_write_found_the_lock_taken_still_hops(
    tmp_path: Path,
) -> None:
    """``sqlite3`` opens the transaction (``BEGIN``, no lock) before its first write; when that
    write fails on the lock (busy timeout), the transaction is open without the write lock, and
    its next statements may wait for the lock: they go through the thread (the event loop runs
    on meanwhile), not on the loop's thread."""
    path = tmp_path / "late.db"
    made = create_pooled_engine(f"sqlite:///{path}", lock_wait_s=0.5)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        async with made.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds SQLite's lock
        longest = 0.0

        async def heartbeat() -> None:
            nonlocal longest
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                longest, last = max(longest, now - last), now

        beating = asyncio.create_task(heartbeat())
        async with made.connect() as conn:
            with pytest.raises(OperationalError, match="database is locked"):
                await conn.execute(insert(Row).values(name="a"))
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            assert raw._conn.in_transaction  # BEGIN, without the lock
            with pytest.raises(OperationalError, match="database is locked"):
                await conn.execute(insert(Row).values(name="b"))  # waits again: on the thread
            await conn.rollback()
        beating.cancel()
        assert longest < 0.3  # never the busy timeout on the loop's thread
    finally:
        other.close()
        await made.dispose()
