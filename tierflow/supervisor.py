"""``tierflow run``: the embedded platform of one data directory — anvil, the deployed suite,
the indexer and the API — started in order, checked, and stopped together.

One data directory is one instance; it holds everything of it::

    <data_dir>/run.lock              held while an instance runs (a second one is refused)
    <data_dir>/run/<name>.pid        pid and start time of each child (stale ones are stopped)
    <data_dir>/chain/                anvil's state and log
    <data_dir>/deployments/<id>.json the deployment record of this instance's chain
    <data_dir>/nonces/, tierflow.db  the deployer's nonces, the mirror and the API's tables
    <data_dir>/logs/<name>.log       each process's log (mode 0600)

The order of a start: take the instance lock; stop what a killed earlier run left behind;
check every port is free (one clear line for each busy one, nothing started); with
``--fresh``, wipe the chain, the nonces, the deployment record and the database; start anvil
and make sure the port is served by that very process (never deploy onto someone else's
node); keep the chain's clock monotonic (anvil forgets a moved clock on reload); deploy;
start the indexer and the API; wait for ``/health``; print the summary, with the operator's
API key when this start issued it (once: it is not written to any file). Every child runs in
its own process group and gets SIGTERM if the supervisor dies, even by SIGKILL
(:mod:`tierflow.lifetime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from types import FrameType

from filelock import FileLock, Timeout
from rich.console import Console
from rich.table import Table

from backend.auth import new_key
from backend.config import ApiSettings
from indexer.config import IndexerSettings
from ledger.anvil import STATE_FILE, AnvilConfig, AnvilProcess, rpc_call
from ledger.deploy import deploy
from ledger.deployment import Deployment
from ledger.errors import LedgerError
from tierflow import lifetime

#: Marks a data directory whose operator key was issued (and shown) by ``tierflow run``.
KEY_ISSUED = "operator-key.issued"
HEALTH_TIMEOUT_S = 180.0
#: How the summary introduces the operator's key the first start issued.
KEY_LINE_PREFIX = "operator API key (shown once, keep it): "


class RunError(Exception):
    """A start that cannot go on; the message is the one line the person sees."""


@dataclass
class Instance:
    """One ``tierflow run``: its settings and the processes it started."""

    settings: ApiSettings
    chain: AnvilConfig
    metrics_port: int
    console: Console
    node: AnvilProcess | None = None
    children: dict[str, Popen[bytes]] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def deployments(self) -> Path:
        explicit = os.environ.get("TIERFLOW_DEPLOYMENTS_DIR")
        return Path(explicit) if explicit else self.data_dir / "deployments"

    @property
    def pids(self) -> lifetime.PidFiles:
        return lifetime.PidFiles(self.data_dir / "run")

    @property
    def sqlite_file(self) -> Path | None:
        prefix = "sqlite+aiosqlite:///"
        url = self.settings.database_url
        return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def ports_in_use(instance: Instance, chain_only: bool) -> list[str]:
    """One line per port that is taken, naming the setting that chooses it."""
    wanted = [(instance.chain.host, instance.chain.port, "TIERFLOW_CHAIN_PORT", "chain JSON-RPC")]
    if not chain_only:
        s = instance.settings
        wanted.append((s.api_host, s.api_port, "TIERFLOW_API_PORT", "HTTP API"))
        if instance.metrics_port:
            wanted.append(
                ("0.0.0.0", instance.metrics_port, "TIERFLOW_METRICS_PORT", "indexer metrics")
            )
    lines = []
    for host, port, variable, what in wanted:
        if lifetime.port_busy(host, port):
            owners = ", ".join(
                f"pid {pid} ({lifetime.command_of(pid)})"
                for pid in sorted(lifetime.listener_pids(port))
            )
            by = f" by {owners}" if owners else ""
            lines.append(
                f"port {port} ({what}, {variable}) is in use{by}: stop it or choose another port"
            )
    return lines


def wipe(instance: Instance) -> list[Path]:
    """``--fresh``: forget this instance's chain, nonces, deployment record and database."""
    if instance.sqlite_file is None or instance.data_dir not in instance.sqlite_file.parents:
        raise RunError(
            "--fresh wipes the database only inside the data directory; "
            f"TIERFLOW_DATABASE_URL points elsewhere ({instance.settings.database_url}): "
            "empty that database yourself, then run without --fresh"
        )
    d = instance.data_dir
    db = instance.sqlite_file
    record = instance.deployments / f"{instance.chain.chain_id}.json"
    targets = [d / "chain", d / "nonces", record, d / KEY_ISSUED]
    targets += [d / "keystore.password", *d.glob(f"{db.name}*")]
    removed = []
    for path in targets:
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(path)
        elif path.exists():
            path.unlink()
            removed.append(path)
    return removed


def keep_clock_monotonic(url: str) -> int:
    """Make the next block's time no earlier than the head's (anvil loses a moved clock when
    it reloads its state: foundry-rs/foundry#10331); return the chain's time."""
    head = rpc_call(url, "eth_getBlockByNumber", ["latest", False])
    head_time = int(head["timestamp"], 16)
    if head_time >= int(time.time()):
        rpc_call(url, "anvil_setTime", [head_time + 1])
        return head_time + 1
    return int(time.time())


def start_chain(instance: Instance) -> str:
    state = instance.data_dir / "chain" / STATE_FILE
    node = AnvilProcess(
        instance.chain,
        state_path=state,
        log_path=instance.data_dir / "chain" / "anvil.log",
        preexec_fn=lifetime.die_with_parent(),
    )
    instance.node = node
    try:
        node.start()
    except LedgerError as exc:
        raise RunError(f"could not start anvil: {exc}") from exc
    assert node.process is not None
    instance.pids.write("anvil", node.process.pid)
    if node.process.pid not in lifetime.listener_pids(instance.chain.port):
        raise RunError(
            f"port {instance.chain.port} is answered by another process than the anvil just "
            "started: nothing was deployed; stop the other node or choose TIERFLOW_CHAIN_PORT"
        )
    keep_clock_monotonic(node.url)
    return node.url


def child_env(instance: Instance, url: str, operator_key: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "TIERFLOW_RPC_URL": url,
        "TIERFLOW_DATA_DIR": str(instance.data_dir),
        "TIERFLOW_DEPLOYMENTS_DIR": str(instance.deployments),
        "TIERFLOW_DATABASE_URL": instance.settings.database_url,
        "TIERFLOW_METRICS_PORT": str(instance.metrics_port),
        "PYTHONUNBUFFERED": "1",
    }
    if operator_key is not None:
        env["TIERFLOW_OPERATOR_API_KEY"] = operator_key
    return env


def start_platform(instance: Instance, url: str, operator_key: str | None) -> None:
    env = child_env(instance, url, operator_key)
    for name, args in (("indexer", ["index"]), ("api", ["serve"]), ("webhooks", ["webhooks"])):
        proc = lifetime.spawn(
            [sys.executable, "-m", "tierflow.cli", *args],
            env=env,
            log=instance.logs / f"{name}.log",
        )
        instance.children[name] = proc
        instance.pids.write(name, proc.pid)


def first_exited(instance: Instance) -> str | None:
    """A line about the first process that stopped on its own, if one did."""
    if instance.node is not None and not instance.node.running:
        return f"anvil exited unexpectedly; see {instance.data_dir / 'chain' / 'anvil.log'}"
    for name, proc in instance.children.items():
        if proc.poll() is not None:
            log = instance.logs / f"{name}.log"
            last = _last_line(log)
            return f"the {name} exited (status {proc.returncode}): {last} (see {log})"
    return None


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1].strip()[:300]
    return "no output"


def wait_healthy(instance: Instance, stop: threading.Event) -> None:
    url = instance.settings.base_url + "/health"
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while not stop.is_set():
        exited = first_exited(instance)
        if exited:
            raise RunError(exited)
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(url, timeout=2.0) as response,
        ):
            if response.status == 200:
                return
        if time.monotonic() > deadline:
            raise RunError(f"the API did not answer {url} within {HEALTH_TIMEOUT_S:.0f}s")
        stop.wait(0.25)


def summary(instance: Instance, deployment: Deployment | None, url: str, issued: bool) -> Table:
    s = instance.settings
    table = Table(show_header=False, box=None)
    table.add_row("data directory", str(instance.data_dir))
    table.add_row("chain", f"{url}  (chain id {instance.chain.chain_id}, TIERFLOW_CHAIN_PORT)")
    if deployment is not None:
        table.add_row("deployment", str(instance.deployments / f"{deployment.chain_id}.json"))
    if instance.children:
        table.add_row("API", f"{s.base_url}  (OpenAPI: {s.base_url}/docs, TIERFLOW_API_PORT)")
        metrics = instance.metrics_port
        table.add_row(
            "indexer metrics",
            f"http://127.0.0.1:{metrics}/metrics  (TIERFLOW_METRICS_PORT)" if metrics else "off",
        )
        table.add_row("webhooks", "tierflow webhooks (docs/webhooks.md)")
        table.add_row("database", s.database_url)
        table.add_row("logs", str(instance.logs))
        if issued:
            table.add_row("operator API key", "below (shown this once: keep it)")
        elif s.operator_api_key is not None:
            table.add_row("operator API key", "TIERFLOW_OPERATOR_API_KEY")
        else:
            table.add_row(
                "operator API key",
                "shown when this data directory first started; make another with "
                "POST /v1/members/{operator}/api-keys, or start with --fresh",
            )
    return table


def stop_all(instance: Instance) -> int | None:
    """The webhook dispatcher, the API, the indexer, then the chain (SIGTERM: anvil writes its
    state)."""
    for name in ("webhooks", "api", "indexer"):
        proc = instance.children.get(name)
        if proc is not None:
            lifetime.stop_group(proc)
            instance.pids.remove(name)
    code = None
    if instance.node is not None:
        code = instance.node.stop()
        instance.pids.remove("anvil")
    return code


def run_instance(fresh: bool, chain_only: bool, console: Console) -> int:
    """The whole of ``tierflow run``; returns the exit status."""
    settings = ApiSettings()
    chain = AnvilConfig.load()
    if settings.chain_port is not None:
        chain = chain.replace(port=settings.chain_port)
    instance = Instance(settings, chain, IndexerSettings().metrics_port, console)
    instance.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    lock = FileLock(str(instance.data_dir / "run.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = instance.pids.read("supervisor")
        console.print(
            f"[red]another `tierflow run` uses {instance.data_dir}[/red]"
            + (f" (pid {owner})" if owner else "")
            + ": stop it, or set TIERFLOW_DATA_DIR to another directory",
            soft_wrap=True,
        )
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run_locked(instance, fresh, chain_only, stop)
    except RunError as exc:
        console.print(f"[red]tierflow run:[/red] {exc}", soft_wrap=True)
        return 1
    finally:
        code = stop_all(instance)
        if instance.node is not None or code is not None:
            console.print(f"anvil stopped (status {code}); state saved in {instance.data_dir}")
        instance.pids.remove("supervisor")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()


def _run_locked(instance: Instance, fresh: bool, chain_only: bool, stop: threading.Event) -> int:
    console = instance.console
    instance.pids.remove("supervisor")  # we hold the lock: whoever wrote it is gone
    for stale in instance.pids.stop_stale():
        console.print(
            f"stopped a stale {stale.name} (pid {stale.pid}) left by an earlier run",
            soft_wrap=True,
        )
    instance.pids.write("supervisor", os.getpid())
    busy = ports_in_use(instance, chain_only)
    if busy:
        for line in busy:
            console.print(f"[red]tierflow run:[/red] {line}", soft_wrap=True)
        return 1
    if fresh:
        removed = ", ".join(p.name for p in wipe(instance)) or "nothing (it was new)"
        console.print(f"--fresh: removed {removed} from {instance.data_dir}", soft_wrap=True)

    url = start_chain(instance)
    try:
        deployment = asyncio.run(
            deploy(
                url,
                private_key=None,
                data_dir=instance.data_dir,
                console=console,
                directory=instance.deployments,
            )
        )
    except LedgerError as exc:
        raise RunError(f"deploy failed: {exc}") from exc

    key: str | None = None
    issued = False
    if not chain_only:
        marker = instance.data_dir / KEY_ISSUED
        if instance.settings.operator_api_key is None and not marker.exists():
            key, issued = new_key()[1], True
        start_platform(instance, url, key)
        wait_healthy(instance, stop)
        if issued:
            marker.write_text("the operator's API key was shown by `tierflow run`\n")
    if stop.is_set():
        return 0
    console.print(
        "[bold green]tierflow is running[/bold green]"
        + (" (chain only)" if chain_only else "")
        + " — Ctrl-C stops it"
    )
    console.print(summary(instance, deployment, url, issued))
    if issued:
        console.print(f"{KEY_LINE_PREFIX}{key}", soft_wrap=True, highlight=False)
    while not stop.wait(0.5):
        exited = first_exited(instance)
        if exited:
            raise RunError(exited)
    return 0
