"""A task cancelled at the moment what it waits for arrives ends cancelled.

Python 3.11's ``asyncio.wait_for`` runs what it waits for as a task of its own and, when the
waiting task is cancelled after that inner task finished but before the waiter resumed,
returns the result and drops the cancellation (fixed in 3.12, where ``wait_for`` is built on
``asyncio.timeout``). A loop stopped by cancelling it then never stops, and its canceller,
which awaits it, waits for ever: the hang of docs/performance.md change 47. Each test here
wakes a waiter and cancels it after 0, 1, 2 … turns of the event loop, so one of the turns
falls between the inner task's end and the waiter's resumption; with ``wait_for`` there, the
test fails.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import pytest
from web3.types import TxReceipt

from backend.gateway import mirror_watch
from backend.gateway.mirror_watch import MirrorWatch
from backend.webhooks.config import WebhookSettings
from backend.webhooks.dispatcher import Dispatcher
from indexer.pipeline import _sleep_or_stop
from ledger import pending
from ledger.pending import PendingTx

#: Loop turns tried between the wake-up and the cancellation (wait_for needs three).
TURNS = 8
#: Liveness bound for what takes a few loop turns on an idle machine.
PATIENCE_S = 10.0
#: The packages that run in the platform's processes and the client's.
PRODUCTION = ("backend", "indexer", "ledger", "db", "tierflow", "client")


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def until(check: Callable[[], bool]) -> None:
    """Loop turns until ``check()`` (what is awaited here takes a few)."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("not reached in 1000 turns of the loop")


async def ends_cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel ``task``: it ends cancelled (unless it had ended already, when the cancellation
    is refused), and promptly."""
    if not task.cancel():
        await task
        return
    try:
        done, _ = await asyncio.wait([task], timeout=PATIENCE_S)
        assert done, "the cancelled task went on (its cancellation was lost)"
        assert task.cancelled(), f"the cancelled task ended with {task.result()!r}"
    finally:
        while not task.done():  # a loop that lost it: end it for good
            task.cancel()
            await asyncio.wait([task], timeout=1.0)


class _Engine:
    dialect = SimpleNamespace(name="sqlite")


# -- the write path ---------------------------------------------------------------------------


async def test_a_mirror_wait_cancelled_as_the_checkpoint_moves_ends_cancelled() -> None:
    for n in range(TURNS):
        watch = MirrorWatch(_Engine(), listen=False)  # type: ignore[arg-type]
        watch.listening = True  # no poll: the test moves the checkpoint
        waiting = asyncio.create_task(watch.wait(5, 30.0))
        await until(lambda w=watch: w._waiters == 1)  # type: ignore[misc]
        watch._reached(5)
        await turns(n)
        await ends_cancelled(waiting)
        assert watch._waiters == 0


class _Receipts:
    """A receipt watcher whose one future the test resolves."""

    def __init__(self) -> None:
        self.future: asyncio.Future[tuple[str, TxReceipt]] | None = None

    def watch(self, hashes: list[str]) -> asyncio.Future[tuple[str, TxReceipt]]:
        self.future = asyncio.get_running_loop().create_future()
        return self.future

    def follow(self) -> None:
        pass

    def unwatch(self, future: asyncio.Future[tuple[str, TxReceipt]]) -> None:
        if not future.done():
            future.cancel()


async def test_a_receipt_wait_cancelled_as_the_receipt_arrives_ends_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receipts = _Receipts()
    monkeypatch.setattr(pending, "block_receipts", lambda _w3, _interval: receipts)
    sender = SimpleNamespace(
        w3=None, receipt_timeout_s=30.0, poll_interval_s=0.05, stuck_after_s=30.0
    )
    sender._forget = lambda _tx: None

    async def not_yet() -> None:
        return None

    for n in range(TURNS):
        tx = PendingTx(sender, {}, 0, b"", "0xaa")  # type: ignore[arg-type]
        monkeypatch.setattr(tx, "_poll_once", not_yet)
        receipts.future = None
        waiting = asyncio.create_task(tx.receipt())
        await until(lambda: receipts.future is not None)
        await turns(1)  # past the direct check, waiting for the watcher
        assert receipts.future is not None
        assert not waiting.done()
        receipts.future.set_result(("0xaa", cast(TxReceipt, {"status": 1})))
        await turns(n)
        await ends_cancelled(waiting)


async def test_a_receipt_that_comes_as_the_wait_runs_out_is_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not "not mined": a write whose transaction was mined never answers as failed."""
    receipts = _Receipts()
    monkeypatch.setattr(pending, "block_receipts", lambda _w3, _interval: receipts)
    sender = SimpleNamespace(w3=None, receipt_timeout_s=0.0, poll_interval_s=0.05, stuck_after_s=0)
    sender._forget = lambda _tx: None
    tx = PendingTx(sender, {}, 0, b"", "0xaa")  # type: ignore[arg-type]

    async def arriving() -> None:
        # Found by the watcher in the loop's next turn: as the wait's timeout (none left)
        # runs out.
        assert receipts.future is not None
        found = ("0xaa", cast(TxReceipt, {"status": 1}))
        asyncio.get_running_loop().call_soon(receipts.future.set_result, found)

    monkeypatch.setattr(tx, "_poll_once", arriving)
    assert (await tx.receipt())["status"] == 1


# -- loops stopped by cancelling them ---------------------------------------------------------


class _Listening:
    """asyncpg's listening connection as the mirror watch uses it; the keepalive's answer
    comes when the test says."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()
        self.lost: Callable[[Any], None] | None = None
        self.closed = False

    def get_server_pid(self) -> int:
        return 1

    def add_termination_listener(self, callback: Callable[[Any], None]) -> None:
        self.lost = callback

    async def add_listener(self, _channel: str, _callback: Any) -> None:
        return None

    async def fetchval(self, query: str) -> int:
        if query != "SELECT 1":
            return 10  # the checkpoint
        self.asked.set()
        await self.answer.wait()
        return 1

    async def close(self, **_how: Any) -> None:
        self.closed = True


def _listening(monkeypatch: pytest.MonkeyPatch) -> list[_Listening]:
    opened: list[_Listening] = []

    async def connect(_dsn: str) -> _Listening:
        opened.append(_Listening())
        return opened[-1]

    monkeypatch.setattr(mirror_watch, "_asyncpg_dsn", lambda _engine: "postgresql://")
    monkeypatch.setattr(asyncpg, "connect", connect)
    return opened


async def _listener_cancelled_as(
    monkeypatch: pytest.MonkeyPatch,
    keepalive_s: float,
    wake: Callable[[_Listening], Awaitable[None]],
) -> None:
    opened = _listening(monkeypatch)
    for n in range(TURNS):
        opened.clear()
        watch = MirrorWatch(_Engine(), listen=True, keepalive_s=keepalive_s)  # type: ignore[arg-type]
        listener = asyncio.create_task(watch._listen())
        await until(lambda w=watch: w.listening)  # type: ignore[misc]
        await wake(opened[0])
        await turns(n)
        await ends_cancelled(listener)
        assert opened[0].closed
        assert len(opened) == 1  # no reconnection after the cancellation


async def test_the_listener_cancelled_as_its_keepalive_is_answered_ends_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def answer(conn: _Listening) -> None:
        await conn.asked.wait()
        conn.answer.set()

    await _listener_cancelled_as(monkeypatch, 0.001, answer)


async def test_the_listener_cancelled_as_its_connection_drops_ends_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def drop(conn: _Listening) -> None:
        assert conn.lost is not None
        conn.lost(conn)

    await _listener_cancelled_as(monkeypatch, 30.0, drop)


async def test_the_webhook_dispatcher_cancelled_as_it_is_woken_ends_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dispatcher = Dispatcher(None, WebhookSettings(webhooks_poll_s=30), None)  # type: ignore[arg-type]
    steps = [0]

    async def step() -> None:
        steps[0] += 1

    monkeypatch.setattr(dispatcher, "step", step)
    try:
        for n in range(TURNS):
            steps[0] = 0
            running = asyncio.create_task(dispatcher.run())
            await until(lambda: steps[0] == 1)  # waiting to be woken (or for the next poll)
            dispatcher._wake.set()
            await turns(n)
            await ends_cancelled(running)
    finally:
        await dispatcher.aclose()


async def test_the_indexers_pause_cancelled_as_it_is_stopped_ends_cancelled() -> None:
    for n in range(TURNS):
        stop = asyncio.Event()
        pausing = asyncio.create_task(_sleep_or_stop(30.0, stop))
        await turns(1)
        stop.set()
        await turns(n)
        await ends_cancelled(pausing)


def test_no_production_code_waits_through_wait_for() -> None:
    """While Python 3.11 is supported: ``async with asyncio.timeout(…)`` instead, which waits
    in the caller's own task and never drops its cancellation."""
    root = Path(__file__).resolve().parents[2]
    found = []
    for package in PRODUCTION:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                named = (
                    isinstance(node, ast.Attribute)
                    and node.attr == "wait_for"
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "asyncio"
                ) or (
                    isinstance(node, ast.ImportFrom)
                    and node.module == "asyncio"
                    and any(alias.name == "wait_for" for alias in node.names)
                )
                if named:
                    found.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}")
    assert found == []
