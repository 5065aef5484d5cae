"""Reads one at a time against two platforms side by side, for a before/after of one setting.

Two :class:`~bench.stack.Stack`\\ s (anvil, indexer, one API worker, SQLite) run at once, one per
variant (its ``TIERFLOW_*`` settings); each is seeded with a core, a supplier and a payable.
Then, in alternating rounds (so the machine's load falls on both alike), each variant is
timed on each path one request at a time (:func:`bench.api_load.service_time`): the median
latency over all rounds, and the API process's CPU time per request over the same requests
(from ``/proc``: on a loaded machine the latency is mostly waiting for a core, the CPU time
is what the request costs), with the load average before and after.

``python -m bench.perf.reads_alone --rounds 6`` compares the caller cache off
(``TIERFLOW_API_CALLER_CACHE_S=0``, every read looks its key up) and on (the default);
``--baseline DIR`` compares the API of the checkout ``DIR`` (say ``git worktree add DIR
HEAD~1``) with this one's instead. ``--rate R`` also offers each path open loop at ``R``
requests/s for ``--seconds`` in every round (:func:`bench.api_load.open_loop`, latency from
the scheduled time): its p99 and the API's CPU per request under that load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from rich.progress import Progress

from bench.api_load import Seeder, open_loop, request_times, wait_idle
from bench.perf.figures import load_average, quantile
from bench.stack import Stack

VARIANTS: dict[str, dict[str, str]] = {
    "caller cache off": {"TIERFLOW_API_CALLER_CACHE_S": "0"},
    "caller cache on (2 s)": {},
}
BASE_ENV = {"TIERFLOW_API_RATE_LIMIT": str(10**9), "TIERFLOW_API_WORKERS": "1"}


async def _seed(stack: Stack) -> tuple[str, dict[str, str]]:
    """A supplier's key and the paths it reads."""
    s = Seeder(stack)
    try:
        core = await s.member("Reads Core", ["core_enterprise"])
        supplier = await s.member("Reads Tier 1", ["supplier"])
        await s.operator.put(f"/v1/members/{core.address}/program-limit", {"program_limit": 10**9})
        payable = await s.payable(core, supplier, 1_000_000)
        claim = int(payable["root_claim_id"])
        paths = {
            "GET /v1/deployment (floor)": "/v1/deployment",
            "GET /v1/payables?limit=20": "/v1/payables?limit=20",
            "GET /v1/claims/{id}": f"/v1/claims/{claim}",
            "GET /v1/audit/events?claim_id=…": f"/v1/audit/events?claim_id={claim}",
        }
        return supplier.key, paths
    finally:
        for c in s.clients:
            await c.aclose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children (``/proc``)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def timed(
    client: aiohttp.ClientSession, path: str, seconds: float, pid: int
) -> tuple[float, float]:
    """Median latency and API CPU seconds per request of ``path``, one at a time."""
    cpu0 = cpu_seconds(pid)
    took = await request_times(client, path, seconds)
    return statistics.median(took), (cpu_seconds(pid) - cpu0) / len(took)


def baseline_variants(checkout: Path) -> dict[str, dict[str, str]]:
    """The API of another checkout (its packages first on ``PYTHONPATH``) against this one's,
    both with the default settings: a before/after of a code change rather than a setting."""
    return {f"code at {checkout.name}": {"PYTHONPATH": str(checkout.resolve())}, "this code": {}}


async def offered(
    client: aiohttp.ClientSession, path: str, rate: float, seconds: float, pid: int
) -> tuple[float, float]:
    """p99 latency (from the scheduled time; a failure counts as infinitely slow) and API CPU
    seconds per request of ``path`` offered open loop at ``rate``/s."""
    await wait_idle(client)
    cpu0 = cpu_seconds(pid)
    with Progress(transient=True) as progress:
        run = await open_loop(client, path, path, rate, seconds, 0.5, progress)
    per = (cpu_seconds(pid) - cpu0) / max(1, int(rate * (seconds + 0.5)))
    return quantile(run.latencies + [float("inf")] * run.errors, 0.99), per


async def measure(
    rounds: int,
    seconds: float,
    variants: dict[str, dict[str, str]] = VARIANTS,
    rate: float | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds, "seconds_per_round": seconds, "rate": rate}
    async with contextlib.AsyncExitStack() as stack_of:
        stacks: dict[str, tuple[Stack, str, dict[str, str]]] = {}
        for name, env in variants.items():
            directory = stack_of.enter_context(tempfile.TemporaryDirectory(prefix="tf-reads-"))
            stack = await stack_of.enter_async_context(
                Stack.start(Path(directory), extra_env={**BASE_ENV, **env})
            )
            key, paths = await _seed(stack)
            stacks[name] = (stack, key, paths)
        took: dict[str, dict[str, list[float]]] = {n: {} for n in stacks}
        cpu: dict[str, dict[str, list[float]]] = {n: {} for n in stacks}
        p99: dict[str, dict[str, list[float]]] = {n: {} for n in stacks}
        cpu_open: dict[str, dict[str, list[float]]] = {n: {} for n in stacks}
        out["load_before"] = load_average()
        for _ in range(rounds):
            for name, (stack, key, paths) in stacks.items():
                async with aiohttp.ClientSession(
                    base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}
                ) as client:
                    pid = stack.procs["api"].popen.pid
                    for label, path in paths.items():
                        median, per = await timed(client, path, seconds, pid)
                        took[name].setdefault(label, []).append(median)
                        cpu[name].setdefault(label, []).append(per)
                        if rate is not None:
                            tail, per = await offered(client, path, rate, seconds, pid)
                            p99[name].setdefault(label, []).append(tail)
                            cpu_open[name].setdefault(label, []).append(per)
        out["load_after"] = load_average()
        out["medians_ms"] = {
            name: {label: round(statistics.median(v) * 1000, 2) for label, v in per.items()}
            for name, per in took.items()
        }
        out["api_cpu_ms_per_request"] = {
            name: {label: round(statistics.median(v) * 1000, 2) for label, v in per.items()}
            for name, per in cpu.items()
        }
        if rate is not None:
            out["open_loop_p99_ms"] = {
                name: {label: round(statistics.median(v) * 1000, 2) for label, v in per.items()}
                for name, per in p99.items()
            }
            out["open_loop_api_cpu_ms_per_request"] = {
                name: {label: round(statistics.median(v) * 1000, 2) for label, v in per.items()}
                for name, per in cpu_open.items()
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.0, help="per path and round")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout (a git worktree of the commit before) whose API is compared with this "
        "one's, instead of the caller cache off and on",
    )
    parser.add_argument(
        "--rate", type=float, help="also offer each path open loop at this many requests/s"
    )
    args = parser.parse_args()
    variants = VARIANTS if args.baseline is None else baseline_variants(args.baseline)
    result = asyncio.run(measure(args.rounds, args.seconds, variants, args.rate))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
