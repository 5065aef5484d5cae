"""A write that waits for a checker (dual control, SPEC §1): a handle to poll for its outcome.

The API keeps the write under its ``Idempotency-Key``; asking again with the same key and body
answers ``202 awaiting_approval`` while no checker has decided, and afterwards what the write
answered (or, for a ``self`` member, the intent to sign; or the problem of a declined write).
:meth:`PendingApproval.refresh` asks once, :meth:`PendingApproval.wait` until decided.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from client.errors import ApprovalPending, PendingError

__all__ = ["PendingApproval"]

T = TypeVar("T")


@dataclass
class PendingApproval(Generic[T]):
    """A write of ``method path`` under ``idempotency_key`` that waits for a checker."""

    approval_id: str
    method: str
    path: str
    idempotency_key: str
    body: dict[str, Any] = field(repr=False)
    replay: Callable[[], Awaitable[T]] = field(repr=False)

    @property
    def approval(self) -> dict[str, Any]:
        """The ``approval`` object of the API's answer (who may approve, until when, …)."""
        found = self.body.get("approval")
        return found if isinstance(found, dict) else {}

    async def refresh(self) -> T | None:
        """The write's answer once a checker approved it (and, for a ``self`` member, it was
        signed), or None while it still waits. A declined write raises its problem
        (:class:`~client.errors.ProblemError`)."""
        try:
            return await self.replay()
        except ApprovalPending:
            return None

    async def wait(self, timeout_s: float = 300.0, interval_s: float = 1.0) -> T:
        """Poll until a checker decides; :class:`~client.errors.PendingError` after
        ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = await self.refresh()
            if done is not None:
                return done
            if time.monotonic() + interval_s > deadline:
                raise PendingError(
                    f"approval {self.approval_id} still awaits a checker after {timeout_s} s"
                )
            await asyncio.sleep(interval_s)
