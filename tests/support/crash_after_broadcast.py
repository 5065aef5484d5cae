"""``python -m tests.support.crash_after_broadcast FUNCTION``: ``tierflow serve`` whose worker
dies (``os._exit``, status :data:`CRASH_EXIT_STATUS`) right after a write has broadcast a call
of the contract function ``FUNCTION``, before its outcome is recorded: the crash the
idempotency and audit tests resume from.

The fault is injected here, in the test's own entry point (a wrapper around the gateway and
the sender), so the production code carries no test hook.
"""

from __future__ import annotations

import contextvars
import os
import sys
from typing import Any

from backend.gateway import Gateway
from ledger.sender import TransactionSender

CRASH_EXIT_STATUS = 97
_calling: contextvars.ContextVar[str | None] = contextvars.ContextVar("calling", default=None)


def install(function: str) -> None:
    """Make this process die after broadcasting a call of ``function``."""
    submit = Gateway.submit
    send = TransactionSender.send

    async def submitting(self: Gateway, write: Any, call: Any) -> Any:
        token = _calling.set(call.function)
        try:
            return await submit(self, write, call)
        finally:
            _calling.reset(token)

    async def sending(
        self: TransactionSender, tx: Any, before_broadcast: Any = None, **kwargs: Any
    ) -> Any:
        pending = await send(self, tx, before_broadcast, **kwargs)
        if _calling.get() == function:
            os._exit(CRASH_EXIT_STATUS)
        return pending

    Gateway.submit = submitting  # type: ignore[method-assign]
    TransactionSender.send = sending  # type: ignore[method-assign]


if __name__ == "__main__":
    install(sys.argv[1])
    from tierflow.cli import app

    app(["serve"])
