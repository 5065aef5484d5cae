"""``tests.support.processes.reaped``: a test's child processes do not outlive a failure."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from tests.support.processes import reaped


async def test_a_child_still_running_when_the_block_fails_is_killed_and_waited_for() -> None:
    sleeper = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    done = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await done.wait()
    with pytest.raises(TimeoutError):
        async with reaped([sleeper, done]):
            await asyncio.wait_for(sleeper.wait(), 0.2)  # a worker that overran its time
    assert sleeper.returncode == -signal.SIGKILL
    assert done.returncode == 0
