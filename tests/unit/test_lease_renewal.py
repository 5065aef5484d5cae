"""An idempotency lease's renewal ends with its run even when the cancellation that ends it
is lost (Python 3.11's ``asyncio.wait_for`` can drop one, which once left a request waiting
forever on a renewal loop that never stopped: docs/performance.md, change 47)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from backend.idempotency import Idempotency, _Hold


class _Conn:
    async def execute(self, *_args: Any) -> None:
        return None


class _LosesCancellations:
    """An engine whose transaction swallows a cancellation that arrives while it starts (what
    a lost cancellation looks like from the renewal's side)."""

    def __init__(self) -> None:
        self.renewals = 0
        self.renewing = asyncio.Event()
        self.losing = True

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[_Conn]:
        self.renewals += 1
        self.renewing.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if not self.losing:
                raise
        yield _Conn()


async def test_the_renewal_stops_with_its_run_though_its_cancellation_is_lost() -> None:
    engine = _LosesCancellations()
    idempotency = Idempotency(engine, lease_ms=150)  # type: ignore[arg-type]
    hold = _Hold("0x" + "11" * 20, "key-1", claim=None)  # the record is this run's
    renewing = asyncio.create_task(idempotency._renew(hold))
    await engine.renewing.wait()
    # The run ends as Idempotency._run_claimed's finally ends it, mid-renewal.
    hold.over = True
    renewing.cancel()
    try:
        await asyncio.wait([renewing], timeout=2.0)  # (wait_for would wait on its own cancel)
        assert renewing.done()
        renewed = engine.renewals
        await asyncio.sleep(0.2)
        assert engine.renewals == renewed  # nothing renewed after the run
    finally:
        engine.losing = False  # a loop that did not stop is ended for good
        renewing.cancel()
        await asyncio.wait([renewing], timeout=2.0)
