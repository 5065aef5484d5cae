"""Nonce allocation shared by every task and process that signs for an account.

A :class:`NonceStore` hands out nonces per ``(chain id, address)``. The sender passes it the
chain's *pending* transaction count and the store reserves ``max(stored next nonce, chain
pending)``, so it never goes below what the node already knows about (someone sent from the
account without the store) and never repeats a nonce it handed out (transactions not yet in
the node's pool). Implementations:

- :class:`MemoryNonceStore`: one process, no persistence (tests, a single worker);
- :class:`FileNonceStore`: a JSON file per account under a directory (default
  ``$TIERFLOW_DATA_DIR/nonces/``) guarded by a file lock, so several OS processes signing for
  the same account on one host never collide.

A SQL-backed store (``SELECT ... FOR UPDATE`` on a row per account) for API workers spread
over several hosts only needs the four coroutine methods of the protocol.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from filelock import FileLock, Timeout

from ledger.errors import NonceError
from ledger.paths import data_dir


@runtime_checkable
class NonceStore(Protocol):
    """Allocates nonces for ``(chain_id, address)``; safe under concurrent use."""

    async def allocate(self, chain_id: int, address: str, chain_next: int, count: int = 1) -> int:
        """Reserve ``count`` consecutive nonces from ``max(stored next, chain_next)``.

        Returns the first reserved nonce; the stored next nonce becomes ``first + count``.
        """
        ...

    async def release(self, chain_id: int, address: str, first: int, count: int = 1) -> bool:
        """Give back a reservation that was never broadcast.

        Only possible while it is still the latest one (stored next == ``first + count``);
        returns whether the nonces were returned.
        """
        ...

    async def reset(self, chain_id: int, address: str, next_nonce: int) -> None:
        """Force the stored next nonce (resync after the node lost or replaced transactions)."""
        ...

    async def peek(self, chain_id: int, address: str) -> int | None:
        """Return the stored next nonce, or None if the account was never seen."""
        ...


def _key(chain_id: int, address: str) -> tuple[int, str]:
    return chain_id, address.lower()


class MemoryNonceStore:
    """In-process store (single event loop: each method runs without awaiting, so atomically)."""

    def __init__(self) -> None:
        self._next: dict[tuple[int, str], int] = {}

    async def allocate(self, chain_id: int, address: str, chain_next: int, count: int = 1) -> int:
        """See :meth:`NonceStore.allocate`."""
        key = _key(chain_id, address)
        first = max(self._next.get(key, 0), chain_next)
        self._next[key] = first + count
        return first

    async def release(self, chain_id: int, address: str, first: int, count: int = 1) -> bool:
        """See :meth:`NonceStore.release`."""
        key = _key(chain_id, address)
        if self._next.get(key) == first + count:
            self._next[key] = first
            return True
        return False

    async def reset(self, chain_id: int, address: str, next_nonce: int) -> None:
        """See :meth:`NonceStore.reset`."""
        self._next[_key(chain_id, address)] = next_nonce

    async def peek(self, chain_id: int, address: str) -> int | None:
        """See :meth:`NonceStore.peek`."""
        return self._next.get(_key(chain_id, address))


class FileNonceStore:
    """Cross-process store: ``<directory>/<chainId>-<address>.json`` under a file lock.

    Lock waits run in a worker thread, so a process waiting for another one's lock does not
    block its event loop.
    """

    def __init__(self, directory: Path | str | None = None, lock_timeout: float = 30.0) -> None:
        self.directory = Path(directory) if directory else data_dir() / "nonces"
        self.lock_timeout = lock_timeout
        # A FileLock object is re-entrant across threads when not thread-local, so threads of
        # this process are kept apart by a plain threading.Lock per account first.
        self._locks: dict[tuple[int, str], tuple[threading.Lock, FileLock]] = {}
        self._registry_lock = threading.Lock()

    def _paths(self, chain_id: int, address: str) -> tuple[Path, threading.Lock, FileLock]:
        key = _key(chain_id, address)
        path = self.directory / f"{chain_id}-{key[1]}.json"
        with self._registry_lock:
            pair = self._locks.get(key)
            if pair is None:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                flock = FileLock(
                    str(path) + ".lock",
                    mode=0o600,
                    timeout=self.lock_timeout,
                    thread_local=False,
                    poll_interval=0.002,
                )
                pair = (threading.Lock(), flock)
                self._locks[key] = pair
        return path, pair[0], pair[1]

    @staticmethod
    def _read(path: Path) -> int | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            value = json.loads(text)["next"]
        except (ValueError, KeyError, TypeError) as exc:
            raise NonceError(f"corrupt nonce file {path}: {text!r}") from exc
        if not isinstance(value, int) or value < 0:
            raise NonceError(f"corrupt nonce file {path}: {text!r}")
        return value

    @staticmethod
    def _write(path: Path, value: int) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        # Only this user reads the platform's files (0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps({"next": value}) + "\n")
        os.replace(tmp, path)

    def _locked(self, chain_id: int, address: str, op: str, a: int, b: int) -> int | bool | None:
        path, tlock, lock = self._paths(chain_id, address)
        try:
            with tlock, lock:
                stored = self._read(path)
                if op == "allocate":
                    first = max(stored or 0, a)
                    self._write(path, first + b)
                    return first
                if op == "release":
                    if stored == a + b:
                        self._write(path, a)
                        return True
                    return False
                if op == "reset":
                    self._write(path, a)
                    return None
                return stored  # peek
        except Timeout as exc:
            raise NonceError(f"timed out after {self.lock_timeout}s on {lock.lock_file}") from exc

    async def allocate(self, chain_id: int, address: str, chain_next: int, count: int = 1) -> int:
        """See :meth:`NonceStore.allocate`."""
        result = await asyncio.to_thread(
            self._locked, chain_id, address, "allocate", chain_next, count
        )
        assert isinstance(result, int)
        return result

    async def release(self, chain_id: int, address: str, first: int, count: int = 1) -> bool:
        """See :meth:`NonceStore.release`."""
        result = await asyncio.to_thread(self._locked, chain_id, address, "release", first, count)
        return bool(result)

    async def reset(self, chain_id: int, address: str, next_nonce: int) -> None:
        """See :meth:`NonceStore.reset`."""
        await asyncio.to_thread(self._locked, chain_id, address, "reset", next_nonce, 0)

    async def peek(self, chain_id: int, address: str) -> int | None:
        """See :meth:`NonceStore.peek`."""
        result = await asyncio.to_thread(self._locked, chain_id, address, "peek", 0, 0)
        return result if isinstance(result, int) and not isinstance(result, bool) else None
