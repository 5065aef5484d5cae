"""How long the processes of ``tierflow run`` live: they die with it, and what an earlier run
left behind is found and stopped.

- :func:`die_with_parent` is a ``preexec_fn`` that asks Linux to send the child SIGTERM when
  the process that started it dies, however it dies (``PR_SET_PDEATHSIG``, kept across
  ``exec``); :func:`spawn` also puts each child in a process group of its own, so a stop
  reaches its own children too (uvicorn's workers) and a Ctrl-C at the terminal reaches only
  the supervisor, which then stops them in order (the API, the indexer, the chain last so it
  writes its state).
- :class:`PidFiles` records each child's pid with its start time (so a reused pid is never
  mistaken for it) and stops the ones still running from a run that was killed.
- :func:`port_busy` and :func:`listener_pids` check ports before anything starts, and whether
  a port is served by the process we just started (``/proc/net/tcp``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when its parent dies (Linux)."""
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would tell us.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a process group of its own, output appended to ``log`` (mode 0600),
    dying with us."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=die_with_parent(),
        )
    finally:
        os.close(fd)


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> int | None:
    """SIGTERM to the child's process group, wait, SIGKILL the group if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(5)
    # The leader is gone; make sure nothing of its group stays behind.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


# -- pid files ---------------------------------------------------------------------------------


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), or
    None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@dataclass(frozen=True)
class Stale:
    name: str
    pid: int


class PidFiles:
    """``<directory>/<name>.pid``: ``<pid> <start time>`` of each running child."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, name: str, pid: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{name}.pid"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{pid} {start_time(pid) or 0}\n")
        os.replace(tmp, path)

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{name}.pid").unlink()

    def read(self, name: str) -> int | None:
        """The pid recorded for ``name`` if that very process still runs."""
        try:
            pid_text, started = (self.directory / f"{name}.pid").read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        return pid if start_time(pid) == int(started) else None

    def stop_stale(self, timeout_s: float = 15.0) -> list[Stale]:
        """Stop (group and all) every recorded process that still runs; forget the files."""
        stopped: list[Stale] = []
        if not self.directory.is_dir():
            return stopped
        for path in sorted(self.directory.glob("*.pid")):
            name = path.stem
            pid = self.read(name)
            if pid is not None and pid != os.getpid():
                _terminate(pid, timeout_s)
                stopped.append(Stale(name, pid))
            self.remove(name)
        return stopped


def _terminate(pid: int, timeout_s: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            try:
                os.killpg(pid, sig)  # our children lead their own groups
            except ProcessLookupError:
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)


# -- ports -------------------------------------------------------------------------------------


def port_busy(host: str, port: int) -> bool:
    """Whether a server could not bind ``host:port`` now (something listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    return inodes


def listener_pids(port: int) -> set[int]:
    """The pids (of processes we may inspect) holding a listening socket on ``port``."""
    inodes = {f"socket:[{i}]" for i in _listening_inodes(port)}
    pids: set[int] = set()
    if not inodes:
        return pids
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        pids.add(int(entry.name))
                        break
    return pids


def command_of(pid: int) -> str:
    """A short name for a pid (its executable's base name), for messages."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    return os.path.basename(argv[0].decode(errors="replace")) if argv and argv[0] else "?"
