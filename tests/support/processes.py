"""Child processes a test starts, never left running after it (a failed assertion or a
timeout included): they would hold the node's accounts, ports and CPU for the tests after."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence


@contextlib.asynccontextmanager
async def reaped(processes: Sequence[asyncio.subprocess.Process]) -> AsyncIterator[None]:
    """On the way out, kill whichever of ``processes`` still runs, and wait for it."""
    try:
        yield
    finally:
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
