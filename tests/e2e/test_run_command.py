"""The first run, as a new user meets it: ``tierflow run`` from the checkout (SPEC §5, issue 11).

Each test runs the real command as a child process with its own ``TIERFLOW_DATA_DIR`` and free
ports, and no ``TIERFLOW_OPERATOR_API_KEY`` nor ``TIERFLOW_DEPLOYMENTS_DIR``: the deployment
record must then live in the data directory, and the operator's key must be printed once in
the run's own summary (never into a log file).

- start, onboard a member, Ctrl-C (status 0, anvil writes its state); start again: same
  deployment, the member still there, no key printed; ``--fresh`` after that: a new chain, a
  new deployment, the member gone, a new key, and the platform healthy (it used to fail on the
  nonces and mirror the earlier run left);
- two data directories side by side, one restarted with ``--fresh`` while the other runs:
  each keeps its own deployment; a second run on a data directory in use is refused;
- busy ports (chain, API, indexer metrics): one clear line, status 1, nothing started nor
  deployed; the indexer alone given a busy metrics port says so in one line;
- SIGKILL of the supervisor: anvil, the indexer and the API die with it and free their ports;
  the next run starts normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stack import BIN, ROOT
from indexer.config import IndexerConfig
from indexer.errors import IndexerError
from indexer.service import index
from ledger.anvil import STATE_FILE, free_port, rpc_call
from ledger.deployment import Deployment
from tierflow.lifetime import alive

KEY_LINE = re.compile(r"operator API key \(shown once, keep it\): (tf_[0-9a-f]{12}_\S+)")
RUNNING = "tierflow is running"
KYC_UNTIL = (datetime.now(UTC) + timedelta(days=365)).isoformat()


@dataclass
class Instance:
    """The settings of one data directory's ``tierflow run``."""

    data: Path
    api_port: int
    chain_port: int
    metrics_port: int
    out: Path

    @classmethod
    def new(cls, tmp_path: Path, name: str = "data") -> Instance:
        return cls(tmp_path / name, free_port(), free_port(), free_port(), tmp_path / f"{name}.out")

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TIERFLOW_") and k != "PYTEST_CURRENT_TEST"
        }
        return env | {
            "TIERFLOW_DATA_DIR": str(self.data),
            "TIERFLOW_API_PORT": str(self.api_port),
            "TIERFLOW_CHAIN_PORT": str(self.chain_port),
            "TIERFLOW_METRICS_PORT": str(self.metrics_port),
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def rpc(self) -> str:
        return f"http://127.0.0.1:{self.chain_port}"

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""


@contextlib.contextmanager
def tierflow_run(inst: Instance, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``tierflow run`` as a child; stopped (SIGINT, then SIGKILL) if the test leaves it."""
    with inst.out.open("ab") as handle:
        proc = subprocess.Popen(
            [str(BIN / "tierflow"), "run", *args],
            cwd=ROOT,
            env=inst.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(45)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def run_to_end(inst: Instance, *args: str, timeout_s: float = 60) -> tuple[int, str]:
    """A ``tierflow run`` expected to stop by itself; its status and its output."""
    done = subprocess.run(
        [str(BIN / "tierflow"), "run", *args],
        cwd=ROOT,
        env=inst.env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _summary_printed(text: str, starts: int) -> bool:
    """Whether start number ``starts + 1`` has printed its whole summary: the line saying it
    runs, the table down to its last row, and the key line that row announces. (The command
    prints the three one after another: a test that read the output as soon as the first
    was there once found neither of the others yet.)"""
    if text.count(RUNNING) <= starts:
        return False
    this_start = text.split(RUNNING)[starts + 1]
    if "operator API key" not in this_start:
        return False
    return "below (shown" not in this_start or KEY_LINE.search(this_start) is not None


async def wait_healthy(inst: Instance, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait for this start's whole summary, then /health 200 (or fail with the command's
    output if it exits first)."""
    starts = inst.output().count(RUNNING)
    deadline = time.monotonic() + 150
    async with httpx.AsyncClient(base_url=inst.base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"tierflow run exited {proc.returncode}:\n{inst.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if _summary_printed(inst.output(), starts):
                    r = await client.get("/health")
                    if r.status_code == 200:
                        body: dict[str, Any] = r.json()
                        return body
            await asyncio.sleep(0.25)
    raise AssertionError(f"/health never answered 200:\n{inst.output()}")


async def stop_with_sigint(inst: Instance, proc: subprocess.Popen[bytes]) -> str:
    """Ctrl-C; the command must exit 0 within its children's stop timeouts."""
    proc.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(proc.wait, 45)
    text = inst.output()
    assert code == 0, text
    return text


def operator(inst: Instance, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=inst.base, timeout=60.0, headers={"Authorization": f"Bearer {key}"}
    )


async def onboard(inst: Instance, key: str, name: str) -> dict[str, Any]:
    async with operator(inst, key) as op:
        r = await op.post(
            "/v1/members",
            json={"name": name, "roles": ["supplier"], "kyc_expires_at": KYC_UNTIL},
            headers={"Idempotency-Key": f"first-run-{name}"},
        )
    assert r.status_code == 201, r.text
    member: dict[str, Any] = r.json()
    return member


async def contracts(inst: Instance, key: str) -> dict[str, Any]:
    async with operator(inst, key) as op:
        r = await op.get("/v1/deployment")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()["contracts"]
    return found


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def survivors(pids: dict[str, int], within_s: float) -> list[str]:
    """The names whose process still runs after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        left = [name for name, pid in pids.items() if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def recorded_pids(inst: Instance) -> dict[str, int]:
    return {p.stem: int(p.read_text().split()[0]) for p in (inst.data / "run").glob("*.pid")}


async def test_run_restart_and_fresh(tmp_path: Path) -> None:
    inst = Instance.new(tmp_path)
    state = inst.data / "chain" / STATE_FILE
    record = inst.data / "deployments" / "31337.json"

    with tierflow_run(inst, "--fresh") as proc:
        health = await wait_healthy(inst, proc)
        assert health["chain_id"] == 31337
        # The API runs against the chain this command started, on the port it was given.
        assert rpc_call(inst.rpc, "eth_chainId") == "0x7a69"
        keys = KEY_LINE.findall(inst.output())
        assert len(keys) == 1, inst.output()
        key = keys[0]
        # Printed in the run's own summary, in no file of the data directory.
        for path in inst.data.rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path
        assert record.exists()  # the local chain's record lives with its data directory
        member = await onboard(inst, key, "First supplier")
        deployment = await contracts(inst, key)
        head = int(rpc_call(inst.rpc, "eth_blockNumber"), 16)
        text = await stop_with_sigint(inst, proc)

    assert "anvil stopped (status 0)" in text, text
    assert state.stat().st_size > 0
    assert not list((inst.data / "run").glob("*.pid"))
    with pytest.raises(urllib.error.URLError):  # nothing is left listening
        rpc_call(inst.rpc, "eth_chainId", timeout_s=0.5)

    # The saved state carries on: same contracts, the member on chain, no key printed again.
    with tierflow_run(inst) as proc:
        await wait_healthy(inst, proc)
        assert int(rpc_call(inst.rpc, "eth_blockNumber"), 16) >= head
        assert await contracts(inst, key) == deployment
        async with operator(inst, key) as op:
            r = await op.get(f"/v1/members/{member['address']}")
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "First supplier"
        assert len(KEY_LINE.findall(inst.output())) == 1, "the operator key was printed again"
        await stop_with_sigint(inst, proc)

    # --fresh after a run: a new chain and deployment, a new mirror, a new key, all healthy.
    with tierflow_run(inst, "--fresh") as proc:
        await wait_healthy(inst, proc)
        keys = KEY_LINE.findall(inst.output())
        assert len(keys) == 2, inst.output()
        fresh_key = keys[1]
        assert fresh_key != key
        async with operator(inst, key) as op:
            assert (await op.get("/v1/members")).status_code == 401  # the old key is gone
        async with operator(inst, fresh_key) as op:
            r = await op.get(f"/v1/members/{member['address']}")
            assert r.status_code == 404, r.text
        assert int(rpc_call(inst.rpc, "eth_blockNumber"), 16) < head + 5
        await onboard(inst, fresh_key, "Second first supplier")
        await stop_with_sigint(inst, proc)


# A minute of CI (two full platforms at once) for a property the single-directory tests and the
# per-directory ports' own tests already pin down: run it with --runslow.
@pytest.mark.slow
async def test_two_data_directories_side_by_side(tmp_path: Path) -> None:
    a, b = Instance.new(tmp_path, "a"), Instance.new(tmp_path, "b")
    with tierflow_run(a, "--fresh") as run_a:
        with tierflow_run(b, "--fresh") as run_b:
            await asyncio.gather(wait_healthy(a, run_a), wait_healthy(b, run_b))
            key_a = KEY_LINE.findall(a.output())[0]
            before = await contracts(a, key_a)
            await stop_with_sigint(b, run_b)
        # B starts afresh while A runs: A keeps its record and its suite, on its own chain.
        record_a = (a.data / "deployments" / "31337.json").read_text()
        with tierflow_run(b, "--fresh") as run_b:
            await wait_healthy(b, run_b)
            key_b = KEY_LINE.findall(b.output())[-1]
            assert (a.data / "deployments" / "31337.json").read_text() == record_a
            assert await contracts(a, key_a) == before
            await onboard(a, key_a, "Still on A")
            await onboard(b, key_b, "On B")
            # The same data directory twice: refused in one line, A untouched.
            code, text = run_to_end(a)
            assert code == 1, text
            assert f"another `tierflow run` uses {a.data}" in text, text
            await stop_with_sigint(b, run_b)
        assert await contracts(a, key_a) == before
        await stop_with_sigint(a, run_a)


@pytest.mark.parametrize(
    ("taken", "variable"),
    [
        ("chain_port", "TIERFLOW_CHAIN_PORT"),
        ("api_port", "TIERFLOW_API_PORT"),
        ("metrics_port", "TIERFLOW_METRICS_PORT"),
    ],
)
def test_busy_port_stops_before_anything_starts(tmp_path: Path, taken: str, variable: str) -> None:
    inst = Instance.new(tmp_path)
    port = getattr(inst, taken)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        code, text = run_to_end(inst, "--fresh")
    assert code == 1, text
    lines = [ln for ln in text.splitlines() if "in use" in ln]
    assert len(lines) == 1, text
    assert f"port {port}" in lines[0]
    assert variable in lines[0]
    assert "Traceback" not in text
    assert "deploy" not in text
    assert not (inst.data / "deployments").exists()
    assert not (inst.data / "chain" / STATE_FILE).exists()


async def test_indexer_with_a_busy_metrics_port_says_so_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", port))
        squatter.listen()
        config = IndexerConfig("http://127.0.0.1:1", "sqlite+aiosqlite://", Deployment(31337))
        with pytest.raises(IndexerError, match=rf"^metrics port {port} \(TIERFLOW_METRICS_PORT\)"):
            await index(config, once=True, metrics_port=port)


async def test_sigkill_of_the_supervisor_takes_its_children_along(tmp_path: Path) -> None:
    inst = Instance.new(tmp_path)
    with tierflow_run(inst, "--fresh") as proc:
        await wait_healthy(inst, proc)
        pids = recorded_pids(inst)
        assert set(pids) == {"supervisor", "anvil", "indexer", "api", "webhooks"}, pids
        assert pids["supervisor"] == proc.pid
        proc.kill()
        proc.wait(10)
        children = {name: pid for name, pid in pids.items() if name != "supervisor"}
        left = await asyncio.to_thread(survivors, children, 20.0)
        assert not left, f"still running after the supervisor's SIGKILL: {left}"
        assert not listening(inst.chain_port)
        assert not listening(inst.api_port)

    # The next run starts normally on what the killed one left (anvil saved its state).
    with tierflow_run(inst) as proc:
        await wait_healthy(inst, proc)
        await stop_with_sigint(inst, proc)
