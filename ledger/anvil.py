"""The local development chain: anvil from ``node_modules/.bin``, configured by chain/anvil.json.

``chain/anvil.json`` holds the local chain's settings (chain id 31337, port 8545, anvil's
default test mnemonic, 20 funded accounts, automine unless ``blockTime`` is set, 60M block gas
limit, cancun). :class:`AnvilProcess` starts anvil with them, optionally with
``--state <file>`` (plus ``--state-interval``) so the chain survives restarts, waits until
JSON-RPC answers, and stops it with SIGTERM (anvil then writes its state), falling back to
SIGKILL. It is a context manager; :meth:`AnvilProcess.ephemeral` gives a stateless node on a
free port for tests::

    with AnvilProcess.ephemeral() as node:
        w3 = make_web3(node.url)

    node = AnvilProcess(AnvilConfig.load(), state_path=data_dir / "chain/anvil-state.json")
    node.start(); ...; node.stop()
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ledger.errors import AnvilError, ConfigurationError
from ledger.paths import node_bin, repo_root

#: anvil's well-known first dev account (mnemonic "test ... junk", m/44'/60'/0'/0/0).
ANVIL_FIRST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_CHAIN_ID = 31337
#: Dev account index 2 of the default mnemonic: the local relayer (ledger.config.relayer_key).
ANVIL_RELAYER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
#: Dev account index 9: the local audit-log anchoring account (ledger.config.anchor_key).
ANVIL_ANCHOR_KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
STATE_FILE = "anvil-state.json"


@dataclass(frozen=True)
class AnvilConfig:
    """Local chain settings (the fields of chain/anvil.json, snake_cased)."""

    chain_id: int = ANVIL_CHAIN_ID
    host: str = "127.0.0.1"
    port: int = 8545
    mnemonic: str = "test test test test test test test test test test test junk"
    accounts: int = 20
    balance: int = 1_000_000
    block_time: float | None = None  # None: automine
    gas_limit: int = 60_000_000
    code_size_limit: int | None = None  # None: anvil's default (EIP-170, 24576 bytes)
    hardfork: str = "cancun"
    state_interval: int = 10
    base_fee: int | None = None
    gas_price: int | None = None
    #: Historical states anvil keeps on disk beyond those in memory (anvil's default has no
    #: bound: a day of benchmarks left 77 GB in ~/.foundry/anvil/tmp). None: anvil's default.
    max_persisted_states: int | None = 32
    extra_args: tuple[str, ...] = ()

    _JSON_KEYS = {
        "chainId": "chain_id",
        "host": "host",
        "port": "port",
        "mnemonic": "mnemonic",
        "accounts": "accounts",
        "balance": "balance",
        "blockTime": "block_time",
        "gasLimit": "gas_limit",
        "codeSizeLimit": "code_size_limit",
        "hardfork": "hardfork",
        "stateInterval": "state_interval",
        "baseFee": "base_fee",
        "gasPrice": "gas_price",
        "maxPersistedStates": "max_persisted_states",
        "extraArgs": "extra_args",
    }

    @classmethod
    def load(cls, path: Path | None = None) -> AnvilConfig:
        """Read ``chain/anvil.json`` (or ``path``); unknown keys are an error."""
        path = path or repo_root() / "chain" / "anvil.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read anvil settings {path}: {exc}") from exc
        unknown = set(doc) - set(cls._JSON_KEYS) - {"$comment"}
        if unknown:
            raise ConfigurationError(f"{path}: unknown keys {sorted(unknown)}")
        kwargs: dict[str, Any] = {
            cls._JSON_KEYS[k]: v for k, v in doc.items() if k in cls._JSON_KEYS
        }
        if "extra_args" in kwargs:
            kwargs["extra_args"] = tuple(kwargs["extra_args"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> AnvilConfig:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def args(self) -> list[str]:
        """anvil command-line arguments for these settings (no state options)."""
        args = [
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--mnemonic", self.mnemonic,
            "--accounts", str(self.accounts),
            "--balance", str(self.balance),
            "--gas-limit", str(self.gas_limit),
            "--hardfork", self.hardfork,
        ]  # fmt: skip
        if self.block_time is not None:
            args += ["--block-time", _num(self.block_time)]
        if self.code_size_limit is not None:
            args += ["--code-size-limit", str(self.code_size_limit)]
        if self.base_fee is not None:
            args += ["--base-fee", str(self.base_fee)]
        if self.gas_price is not None:
            args += ["--gas-price", str(self.gas_price)]
        if self.max_persisted_states is not None:
            args += ["--max-persisted-states", str(self.max_persisted_states)]
        return args + list(self.extra_args)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a currently free TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout_s: float = 2.0) -> Any:
    """Blocking JSON-RPC call (no event loop needed); raises ``OSError``/``AnvilError``."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        doc = json.loads(response.read())
    if doc.get("error"):
        raise AnvilError(f"{method} failed: {doc['error']}")
    return doc.get("result")


class AnvilProcess:
    """A running (or startable) anvil node."""

    def __init__(
        self,
        config: AnvilConfig | None = None,
        *,
        state_path: Path | None = None,
        log_path: Path | None = None,
        binary: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
        cache_path: Path | None = None,
    ) -> None:
        self.config = config or AnvilConfig.load()
        #: Where anvil writes the historical states it moves out of memory (``--cache-path``;
        #: by default ~/.foundry/anvil/tmp, never cleaned, shared by every node of the
        #: machine). Beside the state file when there is one, else a directory of this
        #: process's own; emptied at start and removed at stop (anvil leaves it behind).
        self.cache_path = cache_path or (
            state_path.parent / "anvil-cache" if state_path is not None else None
        )
        self._own_cache: Path | None = None
        #: Run in the child before anvil starts (``tierflow run``: die with the supervisor).
        self.preexec_fn = preexec_fn
        self.state_path = state_path
        self.log_path = log_path
        self.binary = binary or node_bin("anvil")
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._auto_port = False

    @classmethod
    def ephemeral(
        cls,
        config: AnvilConfig | None = None,
        *,
        state_path: Path | None = None,
        log_path: Path | None = None,
        **changes: Any,
    ) -> AnvilProcess:
        """A node on a free port (tests), stateless unless ``state_path`` is given.

        ``changes`` override config fields (``hardfork="berlin"``, ``gas_price=0``...).
        """
        base = config or AnvilConfig.load()
        node = cls(
            base.replace(port=free_port(base.host), **changes),
            state_path=state_path,
            log_path=log_path,
        )
        node._auto_port = True
        return node

    @property
    def url(self) -> str:
        """The node's HTTP JSON-RPC URL."""
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        """The full anvil command line."""
        cmd = [str(self.binary), *self.config.args()]
        cache = self.cache_path or self._own_cache
        if cache is not None:
            cmd += ["--cache-path", str(cache)]
        if self.state_path is not None:
            cmd += ["--state", str(self.state_path)]
            cmd += ["--state-interval", str(self.config.state_interval)]
        return cmd

    def start(self, timeout_s: float = 30.0) -> AnvilProcess:
        """Start anvil and wait until it answers JSON-RPC; returns self."""
        if self.running:
            return self
        if not self.binary.exists():
            raise ConfigurationError(f"anvil not found at {self.binary}: run `npm ci`")
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
        attempts = 3 if self._auto_port else 1
        for attempt in range(attempts):
            try:
                self._spawn_and_wait(timeout_s)
                return self
            except AnvilError:
                self.stop()
                if attempt + 1 == attempts:
                    raise
                # Probably lost a race for the port: try another one.
                self.config = self.config.replace(port=free_port(self.config.host))
        return self  # pragma: no cover

    def _fresh_cache(self) -> None:
        """An empty cache directory for the states of the process about to start."""
        if self.cache_path is not None:
            shutil.rmtree(self.cache_path, ignore_errors=True)
            self.cache_path.mkdir(parents=True, exist_ok=True)
        elif self._own_cache is None:
            self._own_cache = Path(tempfile.mkdtemp(prefix="tierflow-anvil-"))

    def _drop_cache(self) -> None:
        if self.cache_path is not None:
            shutil.rmtree(self.cache_path, ignore_errors=True)
        if self._own_cache is not None:
            shutil.rmtree(self._own_cache, ignore_errors=True)
            self._own_cache = None

    def _spawn_and_wait(self, timeout_s: float) -> None:
        self._fresh_cache()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        out: IO[bytes] | int = self._log if self._log is not None else subprocess.DEVNULL
        # A session of its own: a Ctrl-C at the terminal reaches us, not anvil, and we stop
        # anvil with SIGTERM so it writes its state.
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self.preexec_fn,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise AnvilError(f"anvil exited with status {code} while starting: {self._tail()}")
            try:
                chain_id = int(rpc_call(self.url, "eth_chainId", timeout_s=1.0), 16)
            except (OSError, AnvilError, ValueError):
                time.sleep(0.05)
                continue
            if chain_id != self.config.chain_id:
                raise AnvilError(
                    f"something else answers on {self.url} (chain id {chain_id}, expected "
                    f"{self.config.chain_id})"
                )
            return
        raise AnvilError(f"anvil did not answer on {self.url} within {timeout_s:.0f}s")

    def _tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (anvil dumps its state), wait, SIGKILL if needed; return the exit code."""
        proc, self.process = self.process, None
        code: int | None = None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    code = proc.wait(5)
            else:
                code = proc.returncode
            self._drop_cache()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def restart(self, timeout_s: float = 30.0) -> AnvilProcess:
        """Stop and start again, same port and state file."""
        self.stop()
        self._auto_port = False
        return self.start(timeout_s)

    def __enter__(self) -> AnvilProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        # Last resort: never leave an orphaned node behind (e.g. a test crashed mid-start).
        proc = getattr(self, "process", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
                proc.wait(5)
        with contextlib.suppress(Exception):
            self._drop_cache()


def dev_private_keys(config: AnvilConfig | None = None, count: int | None = None) -> list[str]:
    """Private keys (0x hex) of the node's funded dev accounts, derived from the mnemonic."""
    from eth_account import Account

    config = config or AnvilConfig.load()
    n = config.accounts if count is None else count
    Account.enable_unaudited_hdwallet_features()
    keys: list[str] = []
    for i in range(n):
        acct = Account.from_mnemonic(config.mnemonic, account_path=f"m/44'/60'/0'/0/{i}")
        keys.append(acct.key.to_0x_hex())
    return keys
