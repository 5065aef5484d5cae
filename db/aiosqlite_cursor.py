"""SQLite through aiosqlite with one round trip to the connection's thread per statement.

aiosqlite runs each ``sqlite3`` call on a thread of the connection's own, and SQLAlchemy's
adapter makes four calls for one statement: open a cursor, execute, fetch the rows, close the
cursor. Each is a hop to that thread and back into the event loop (a queue, a thread switch,
a wake-up of the loop), and a read of one row spent more on the hops than in SQLite. Here the
four run as one function on the connection's thread; the cursor SQLAlchemy sees holds what it
reads afterwards (the rows, ``description``, ``rowcount``, ``lastrowid``), as SQLAlchemy's
own adapter holds the rows it buffered. Server-side cursors (``stream``) are SQLAlchemy's, as
before. Errors are ``sqlite3``'s, raised where they were.

**No hop at all where SQLite cannot wait.** The connection's thread is there so that a
statement waiting for SQLite's write lock (another connection's transaction; the busy
handler sleeps) does not stop the event loop. A connection whose transaction is open already
holds that lock: Python's ``sqlite3`` begins a transaction just before the first statement
that changes data, and in WAL mode that statement takes the write lock and nothing after it
in the transaction waits for another connection (readers never block a WAL writer, and a
commit takes no further lock); and a WAL reader waits for no writer (it reads the snapshot
it finds; only the checkpoints that restart or truncate the log, which nothing here runs, and
the recovery of a log left by a crash, at a file's first opening, make readers wait). So on
a WAL file (:func:`mark_wal`, set by ``db.engine``'s pragmas) the cursor runs a ``SELECT``,
and once a data-changing statement of the open transaction has succeeded (it holds the write
lock: :attr:`CountedConnection.writing`) any statement, and the adapted connection its
``commit``/``rollback``, on the event loop's thread, in the tens of microseconds SQLite
takes, instead of a round trip to the thread (~75 µs of CPU, and a turn of a busy event
loop: a writer holding the lock waited behind every other request's work between its
statements, and every other writer of the file waited on it); never while a call is queued
or running on the connection's thread (:attr:`CountedConnection.idle`). The first write of
a transaction, and any other statement outside one, still go through the thread. A commit
that crosses SQLite's automatic checkpoint (1,000 pages of WAL) copies pages on the loop's
thread: in the API that is rare (the indexer's bulk commits cross it far more often).

:func:`dbapi` is given to ``create_async_engine(module=...)`` by :func:`db.engine.create_engine`.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

#: What one statement left: description, rowcount, lastrowid, rows (None: no result set).
_Done = tuple[Any, int, Any, list[Any] | None]

#: Attribute set on an ``aiosqlite.Connection`` whose file is in WAL mode.
_WAL = "_tierflow_wal"


def mark_wal(dbapi_connection: Any) -> None:
    """Record that the file of ``dbapi_connection`` (a :class:`OneHopConnection`) is in WAL
    mode: its open transactions' statements may then run without a hop."""
    if isinstance(dbapi_connection, OneHopConnection) and isinstance(
        dbapi_connection._connection, CountedConnection
    ):
        setattr(dbapi_connection._connection, _WAL, True)


class CountedConnection(aiosqlite.Connection):
    """aiosqlite's connection, counting the calls sent to its thread and those finished there.

    Every call aiosqlite makes on the ``sqlite3`` connection (a statement, ``commit``,
    ``rollback``, ``close``, a server-side cursor's fetch) goes through :meth:`_execute`; a
    call whose awaiting task was cancelled still runs there, later. :attr:`idle` is true only
    when none is queued or running: only then may the event loop's thread use the ``sqlite3``
    connection itself (it would otherwise wait on SQLite's connection mutex behind a call that
    may itself be waiting, in SQLite's busy handler, for a lock only the loop can release; or
    run ahead of a call queued before it)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._sent = 0  # written on the event loop's thread only
        self._finished = 0  # written on the connection's thread only
        #: A data-changing statement of the open transaction succeeded (on the thread): SQLite's
        #: write lock is this connection's until the transaction ends. Not merely
        #: ``in_transaction``: ``sqlite3`` opens the transaction (``BEGIN``, which takes no
        #: lock) before that statement, which may then fail on the lock (busy timeout).
        self.writing = False

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")  # aiosqlite's own check, nothing sent
        function = partial(fn, *args, **kwargs)

        def counted() -> Any:
            try:
                return function()
            finally:
                self._finished += 1

        self._sent += 1
        # Queued before this coroutine first suspends: counted and queued at once.
        return await super()._execute(counted)  # type: ignore[no-untyped-call]

    @property
    def idle(self) -> bool:
        """Nothing queued or running on the connection's thread, and the connection open."""
        return self._sent == self._finished and self._running and self._connection is not None


def _connect(database: Any, **kwargs: Any) -> CountedConnection:
    """As ``aiosqlite.connect``, making a :class:`CountedConnection`."""
    location = database.decode() if isinstance(database, bytes) else str(database)
    return CountedConnection(partial(sqlite3.connect, location, **kwargs), 64)


def _holding(adapted: Any, reads: bool = False) -> sqlite3.Connection | None:
    """The ``sqlite3`` connection of ``adapted`` if a statement on it cannot wait for a lock
    and may run on this thread now: a WAL file, nothing queued or running on the connection's
    thread (:attr:`CountedConnection.idle`), and a transaction open that holds the write lock
    (:attr:`CountedConnection.writing`) or, when ``reads``, a statement that only reads (WAL
    readers take no lock a writer holds); else ``None``."""
    connection = adapted._connection
    if not (getattr(connection, _WAL, False) and connection.idle):
        return None
    conn: sqlite3.Connection = connection._connection
    if reads or (connection.writing and conn.in_transaction):
        return conn
    return None


def _changes(operation: Any) -> bool:
    """Whether ``operation`` changes data (what makes ``sqlite3`` open a transaction, and
    SQLite take its write lock)."""
    head = str(operation).lstrip()[:7].upper()
    return head.startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))


def _reads(operation: Any) -> bool:
    """Whether ``operation`` only reads (``SELECT``, or ``WITH`` … ``SELECT``: this code base
    writes no data-changing ``WITH``)."""
    head = str(operation).lstrip()[:6].upper()
    return head.startswith(("SELECT", "WITH"))


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Done:
    """The statement, its rows, its cursor closed (on the connection's thread, or on the loop's
    where it cannot wait: :func:`_holding`)."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


async def _now(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Done:
    """:func:`_run` on the event loop's thread. Awaited through SQLAlchemy's greenlet all the
    same (a switch to it and back, no turn of the loop): ``AsyncConnection.execute`` checks
    that its driver awaited something."""
    return _run(conn, operation, parameters, many)


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one call on the connection's thread."""

    __slots__ = ("_done",)

    def __init__(self, adapt_connection: Any) -> None:
        # No aiosqlite cursor (opening one is a hop of its own): the sqlite3 cursor lives and
        # dies inside the statement's call.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._done: _Done = (None, -1, None, None)

    @property
    def description(self) -> Any:
        return self._done[0]

    @property
    def rowcount(self) -> int:
        return self._done[1]

    @property
    def lastrowid(self) -> Any:
        return self._done[2]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _call(self, operation: Any, parameters: Any, many: bool) -> None:
        connection = self._connection
        changes = _changes(operation)
        if changes:
            connection.writing = False  # until it has succeeded
        async with self._adapt_connection._execute_mutex:
            done: _Done = await connection._execute(
                lambda: _run(connection._conn, operation, parameters, many)
            )
        if changes:
            connection.writing = connection._conn.in_transaction
        self._keep(done)

    def _keep(self, done: _Done) -> None:
        self._done = done
        rows = done[3]
        self._rows = collections.deque(rows) if rows is not None else collections.deque()

    def _statement(self, operation: Any, parameters: Any, many: bool) -> None:
        conn = _holding(self._adapt_connection, not many and _reads(operation))
        if conn is not None:
            self._keep(await_(_now(conn, operation, parameters, many)))
        else:
            await_(self._call(operation, parameters, many))

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            self._statement(operation, parameters, False)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return self

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            self._statement(operation, seq_of_parameters, True)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return self

    async def _async_soft_close(self) -> None:
        return  # nothing open on the connection's thread

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        return None

    def nextset(self) -> None:
        return None

    def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        # SQLAlchemy's adapter queues this on aiosqlite's thread by hand, past ``_execute``:
        # here it goes through it, counted (:class:`CountedConnection`).
        conn = self._connection._conn

        def set_level() -> None:
            conn.isolation_level = value

        try:
            await_(self._connection._execute(set_level))
        except Exception as error:
            self._handle_exception(error)

    def commit(self) -> None:
        conn = _holding(self)
        try:
            if conn is None:
                super().commit()
                return
            try:
                conn.commit()
            except Exception as error:
                self._handle_exception(error)
        finally:
            self._ended()

    def rollback(self) -> None:
        conn = _holding(self)
        try:
            if conn is None:
                super().rollback()
                return
            try:
                conn.rollback()
            except Exception as error:
                self._handle_exception(error)
        finally:
            self._ended()

    def _ended(self) -> None:
        if isinstance(self._connection, CountedConnection):
            self._connection.writing = False


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI shim whose connections make :class:`OneHopCursor` s."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        # As SQLAlchemy's own connect (aiosqlite 0.22: the connection holds its thread).
        creator_fn = kw.pop("async_creator_fn", None)
        # The statements of an open transaction run on the event loop's thread (module
        # docstring): never two threads at once, CountedConnection.idle sees to it.
        kw.setdefault("check_same_thread", False)
        if creator_fn:
            connection = creator_fn(*arg, **kw)
        else:
            connection = _connect(*arg, **kw)
            connection._thread.daemon = True
        return OneHopConnection(self, await_(connection))


def dbapi() -> OneHopDBAPI:
    return OneHopDBAPI(aiosqlite, sqlite3)
