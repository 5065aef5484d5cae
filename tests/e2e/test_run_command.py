"""The README's run command brings the platform up on a clean data directory, and stops it
cleanly.

``tierflow run --fresh`` runs as a child process with a temporary ``TIERFLOW_DATA_DIR`` and
free ports (``TIERFLOW_API_PORT``, ``TIERFLOW_CHAIN_PORT``), without
``TIERFLOW_OPERATOR_API_KEY``: the operator's key must then be printed once into
``logs/api.log``, as the README says. With it a member is onboarded through the API; SIGINT
(Ctrl-C) stops everything with status 0 and anvil writes its state. A second ``tierflow run``
(no ``--fresh``) on the same directory continues from that state: the same deployment, the
member still there on chain, the same operator key (not printed again).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stack import BIN, ROOT
from ledger.anvil import STATE_FILE, free_port, rpc_call

KEY_LINE = re.compile(r"operator's API key \(shown once, keep it\): (tf_[0-9a-f]{12}_\S+)")
KYC_UNTIL = (datetime.now(UTC) + timedelta(days=365)).isoformat()


@contextlib.contextmanager
def tierflow_run(env: dict[str, str], out: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``tierflow run`` as a child; killed (with its group) if the test leaves it running."""
    with out.open("ab") as handle:
        proc = subprocess.Popen(
            [str(BIN / "tierflow"), "run", *args],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def read(path: Path) -> str:
    return await asyncio.to_thread(path.read_text, errors="replace")


async def wait_healthy(base: str, proc: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    """Poll /health until 200 (or fail with the command's output if it exits first)."""
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                text = await read(out)
                raise AssertionError(f"tierflow run exited {proc.returncode}:\n{text}")
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get("/health")
                if r.status_code == 200:
                    body: dict[str, Any] = r.json()
                    return body
            await asyncio.sleep(0.25)
    raise AssertionError(f"/health never answered 200:\n{await read(out)}")


async def stop_with_sigint(proc: subprocess.Popen[bytes], out: Path) -> str:
    """Ctrl-C; the command must exit 0 within its children's stop timeouts."""
    proc.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(proc.wait, 45)
    text = await read(out)
    assert code == 0, text
    return text


async def test_run_fresh_brings_the_platform_up_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    api_port, chain_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TIERFLOW_") and k != "PYTEST_CURRENT_TEST"
    }
    env |= {
        "TIERFLOW_DATA_DIR": str(data),
        "TIERFLOW_API_PORT": str(api_port),
        "TIERFLOW_CHAIN_PORT": str(chain_port),
        # Keep the repository's chain/deployments/31337.json out of it; no fixed metrics port.
        "TIERFLOW_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "TIERFLOW_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    base = f"http://127.0.0.1:{api_port}"
    rpc = f"http://127.0.0.1:{chain_port}"
    out = tmp_path / "run.out"
    state = data / "chain" / STATE_FILE

    with tierflow_run(env, out, "--fresh") as proc:
        health = await wait_healthy(base, proc, out)
        assert health["status"] == "ok"
        assert health["chain_id"] == 31337
        # The API runs against the chain this command started, on the port it was given.
        assert rpc_call(rpc, "eth_chainId") == "0x7a69"

        api_log = await read(data / "logs" / "api.log")
        found = KEY_LINE.findall(api_log)
        assert len(found) == 1, api_log
        operator_key = found[0]
        async with httpx.AsyncClient(
            base_url=base, timeout=60.0, headers={"Authorization": f"Bearer {operator_key}"}
        ) as op:
            r = await op.post(
                "/v1/members",
                json={"name": "First supplier", "roles": ["supplier"], "kyc_expires_at": KYC_UNTIL},
                headers={"Idempotency-Key": "run-command-first-member"},
            )
            assert r.status_code == 201, r.text
            member = r.json()
            assert member["roles"] == ["supplier"]
            r = await op.get("/v1/deployment")
            assert r.status_code == 200
            deployment = r.json()
        head = int(rpc_call(rpc, "eth_blockNumber"), 16)
        text = await stop_with_sigint(proc, out)

    assert "anvil stopped (status 0)" in text, text
    assert "state saved" in text
    assert state.exists()
    assert state.stat().st_size > 0
    with pytest.raises(urllib.error.URLError):  # nothing is left listening
        rpc_call(rpc, "eth_chainId", timeout_s=0.5)

    # The saved state carries on: same contracts, the member on chain, the key unchanged.
    with tierflow_run(env, out) as proc:
        await wait_healthy(base, proc, out)
        assert int(rpc_call(rpc, "eth_blockNumber"), 16) >= head
        async with httpx.AsyncClient(
            base_url=base, timeout=30.0, headers={"Authorization": f"Bearer {operator_key}"}
        ) as op:
            r = await op.get("/v1/deployment")
            assert r.status_code == 200
            assert r.json()["contracts"] == deployment["contracts"]
            r = await op.get(f"/v1/members/{member['address']}")
            assert r.status_code == 200, r.text
            assert r.json()["roles"] == ["supplier"]
            assert r.json()["name"] == "First supplier"
        api_log = await read(data / "logs" / "api.log")
        assert len(KEY_LINE.findall(api_log)) == 1, "the operator key was printed again"
        await stop_with_sigint(proc, out)
