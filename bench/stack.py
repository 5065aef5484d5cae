"""The whole platform as processes, for benchmarks and the API and end-to-end tests: anvil, the
deployed suite, the indexer and the API server, each a real process on 127.0.0.1, in a
temporary data directory.

::

    async with Stack.start(tmp_path) as stack:
        op = stack.client(stack.operator_key)
        r = await op.post("/v1/members", json={...}, headers=stack.idem())

``database_url`` selects SQLite (default: a file in the data directory) or PostgreSQL. The
indexer (``tierflow index``) and the API (``tierflow serve``) run from the project's own
command line with ``TIERFLOW_*`` settings, as in production; their output goes to log files
in the data directory (printed when a test fails to start them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger.anvil import AnvilProcess, free_port
from ledger.deploy import deploy

OPERATOR_KEY = "tf_0123456789ab_" + "operator-secret-for-tests-only-0123456789"
ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                return self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                return self.popen.wait(5)
        return self.popen.returncode

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    data_dir: Path
    node: AnvilProcess
    database_url: str
    api_port: int
    env: dict[str, str]
    procs: dict[str, Proc] = field(default_factory=dict)
    operator_key: str = OPERATOR_KEY

    @property
    def rpc_url(self) -> str:
        return self.node.url

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=kwargs.pop("timeout", 60.0), **kwargs
        )

    @staticmethod
    def idem(key: str | None = None) -> dict[str, str]:
        """An ``Idempotency-Key`` header (a fresh one unless given)."""
        return {"Idempotency-Key": key or uuid.uuid4().hex}

    # -- processes -------------------------------------------------------------------------

    def spawn(
        self,
        name: str,
        *args: str,
        extra_env: dict[str, str] | None = None,
        program: list[str] | None = None,
    ) -> Proc:
        """Run ``tierflow <args>`` (or ``program + args``) as the process ``name``."""
        log = self.data_dir / f"{name}.log"
        # The child keeps its own descriptor; ours is closed at once (an unclosed file is a
        # ResourceWarning, an error under the test run's warning filter).
        with log.open("ab") as handle:
            popen = subprocess.Popen(
                [*(program or [str(BIN / "tierflow")]), *args],
                cwd=ROOT,
                env={**self.env, **(extra_env or {})},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(name, popen, log)
        self.procs[name] = proc
        return proc

    def start_indexer(self) -> Proc:
        return self.spawn("indexer", "index")

    def start_api(
        self, extra_env: dict[str, str] | None = None, module: list[str] | None = None
    ) -> Proc:
        """``tierflow serve``, or ``python -m <module…>`` (a test's wrapped server)."""
        if module is not None:
            program = [str(BIN / "python"), "-m", *module]
            return self.spawn("api", extra_env=extra_env, program=program)
        return self.spawn("api", "serve", extra_env=extra_env)

    def start_webhooks(self, name: str = "webhooks") -> Proc:
        """A webhook dispatcher (``tierflow webhooks``); several may run at once."""
        return self.spawn(name, "webhooks")

    async def wait_ready(self, within_s: float = 180.0) -> None:
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while True:
                for proc in self.procs.values():
                    if proc.popen.poll() is not None:
                        raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get("/health")
                    if r.status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not come up:\n{self.procs['api'].tail()}")
                await asyncio.sleep(0.2)

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        data_dir: Path,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        indexer: bool = True,
        webhooks: bool = False,
    ) -> AsyncIterator[Stack]:
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        node = AnvilProcess.ephemeral()
        node.start()
        try:
            deployments = data_dir / "deployments"
            os.environ["TIERFLOW_DEPLOYMENTS_DIR"] = str(deployments)
            try:
                await deploy(node.url, private_key=None, data_dir=data_dir)
            finally:
                del os.environ["TIERFLOW_DEPLOYMENTS_DIR"]
            port = free_port()
            database_url = database_url or f"sqlite+aiosqlite:///{data_dir / 'tierflow.db'}"
            env = {
                **os.environ,
                "TIERFLOW_RPC_URL": node.url,
                "TIERFLOW_DATA_DIR": str(data_dir),
                "TIERFLOW_DATABASE_URL": database_url,
                "TIERFLOW_DEPLOYMENTS_DIR": str(deployments),
                "TIERFLOW_API_PORT": str(port),
                "TIERFLOW_OPERATOR_API_KEY": OPERATOR_KEY,
                "TIERFLOW_METRICS_PORT": "0",
                "TIERFLOW_WEBHOOKS_METRICS_PORT": "0",
                "TIERFLOW_LOG_LEVEL": "warning",
                "PYTHONUNBUFFERED": "1",
                # Tests send bursts from one key far above a person's pace; the limit itself is
                # tested on a platform of its own (tests/api/test_rate_limits.py).
                "TIERFLOW_API_RATE_LIMIT": "1000000",
                # Likewise the keyless writes' limit per client address (every test client is
                # 127.0.0.1: the authorization matrix alone sends a hundred without a key).
                "TIERFLOW_API_KEYLESS_LIMIT": "1000000",
                **(extra_env or {}),
            }
            stack = cls(data_dir, node, database_url, port, env)
            try:
                if indexer:
                    stack.start_indexer()
                stack.start_api()
                await stack.wait_ready()
                if webhooks:
                    stack.start_webhooks()
                yield stack
            finally:
                for proc in reversed(list(stack.procs.values())):
                    proc.stop()
        finally:
            node.stop()
