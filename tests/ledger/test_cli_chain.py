"""``tierflow chain`` runs anvil in the foreground and stops it cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from ledger.anvil import STATE_FILE, free_port, rpc_call
from ledger.paths import package_root

#: Generous bounds for a loaded machine (two shared cores): the CLI's cold start (imports,
#: then anvil loading its state) and a call to a busy node; liveness bounds, not speed checks.
START_S = 120.0
CALL_S = 30.0


async def _wait_for_rpc(url: str, proc: asyncio.subprocess.Process) -> str:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"tierflow chain exited with {proc.returncode}")
        try:
            return str(await asyncio.to_thread(rpc_call, url, "eth_chainId", None, CALL_S))
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answers on {url}")


async def test_chain_command_keeps_state_across_runs(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(package_root())}
    cmd = [sys.executable, "-m", "tierflow.cli", "chain", "--port", str(port)]
    cmd += ["--data-dir", str(tmp_path)]

    async def run_once(mine: int) -> str:
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            assert await _wait_for_rpc(url, proc) == "0x7a69"
            for _ in range(mine):
                await asyncio.to_thread(rpc_call, url, "evm_mine", None, CALL_S)
            height = str(await asyncio.to_thread(rpc_call, url, "eth_blockNumber", None, CALL_S))
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), START_S)
        assert proc.returncode == 0, out.decode()
        assert "state saved" in out.decode()
        return height

    assert await run_once(mine=3) == "0x3"
    assert (tmp_path / "chain" / STATE_FILE).exists()
    assert await run_once(mine=1) == "0x4"  # the second run continued from the saved state
