"""Reads served in process, two checkouts side by side: CPU per request and the round trips to
SQLite's connection threads, which the machine's load does not change.

One :class:`~bench.stack.Stack` (anvil, indexer, SQLite) is seeded as ``tierflow bench``'s
reads are (:func:`bench.api_load.seed`: the tree of 50 pieces, a piece with a history). Then,
in alternating rounds, each checkout's API is built in a process of its own (its packages first
on ``PYTHONPATH``) against that database and asked each path ``--requests`` times through
``httpx.ASGITransport`` (no HTTP server, no socket: the app's own work and the client's): the
process's CPU time per request, the calls made on aiosqlite's connection threads per
request (each a hop to that thread and back into the event loop), and the Python function
calls per request (this thread's, the client's included: a count the load does not move).

``python -m bench.perf.reads_inproc --baseline DIR`` (``DIR`` a ``git worktree add`` of the
commit before). ``--writes N`` first splits a payable of two other members ``N`` times through
the API (16 clients): the reads then run on a platform with that history, as ``tierflow
bench``'s one-worker reads come after its writes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress

from bench.api_load import Seeder, seed
from bench.perf.figures import load_average
from bench.stack import Stack

RATE_LIMIT = str(10**9)
_RUN_THIS_FILE = (
    "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


async def calls_per_request(client: Any, path: str, requests: int = 20) -> float:
    """Python function calls (Python's and C's, the client's too) per ``GET path``: a count
    the machine's load does not change, where the CPU time moves with it."""
    calls = [0]

    def count(_frame: Any, event: str, _arg: Any) -> None:
        if event in ("call", "c_call"):
            calls[0] += 1

    sys.setprofile(count)
    try:
        for _ in range(requests):
            await client.get(path)
    finally:
        sys.setprofile(None)
    return calls[0] / requests


async def serve_in_process(config: dict[str, Any], requests: int) -> dict[str, float]:
    """This process's API (its checkout's code) asked each path ``requests`` times."""
    import aiosqlite
    import httpx

    from backend.app import create_app
    from backend.config import ApiSettings

    hops = [0]
    original: Any = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops[0] += 1
        return await original(self, fn, *args, **kwargs)

    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
    os.environ.update(config["env"])
    app = create_app(ApiSettings())
    out: dict[str, float] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers={"Authorization": f"Bearer {config['key']}"},
        ) as client,
    ):
        for name, path in config["paths"].items():
            for _ in range(50):  # warm: statement caches, the caller cache
                answer = await client.get(path)
                if answer.status_code != 200:
                    raise SystemExit(f"GET {path} answered {answer.status_code}")
            cpu0, hops0 = time.process_time(), hops[0]
            for _ in range(requests):
                await client.get(path)
            out[f"{name} · CPU ms"] = (time.process_time() - cpu0) / requests * 1000
            out[f"{name} · hops"] = (hops[0] - hops0) / requests
            out[f"{name} · calls"] = await calls_per_request(client, path)
    return out


async def others_splits(stack: Stack, writes: int, clients: int = 16) -> None:
    """``writes`` splits of one unit between two members of their own (none of the reader's
    pieces), ``clients`` at a time."""
    s = Seeder(stack)
    try:
        core = await s.member("Others Core", ["core_enterprise"])
        holder = await s.member("Others Tier 1", ["supplier"])
        to = await s.member("Others Tier 2", ["supplier"])
        await s.operator.put(f"/v1/members/{core.address}/program-limit", {"program_limit": 10**12})
        root = int((await s.payable(core, holder, 10**9))["root_claim_id"])
        left = [writes]

        async def client() -> None:
            while left[0] > 0:
                left[0] -= 1
                await Seeder.split(holder, root, to, 1)

        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        for c in s.clients:
            await c.aclose()


async def measure(
    variants: dict[str, Path], rounds: int, requests: int, writes: int = 0
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tf-reads-inproc-") as directory:
        async with Stack.start(
            Path(directory), extra_env={"TIERFLOW_API_RATE_LIMIT": RATE_LIMIT}
        ) as stack:
            with Progress(transient=True) as progress:
                s = await seed(stack, 0, progress)
            await s.close()
            if writes:
                await others_splits(stack, writes)
            config = Path(directory) / "reads.json"
            config.write_text(
                json.dumps(
                    {
                        "env": {**stack.env, "TIERFLOW_API_RATE_LIMIT": RATE_LIMIT},
                        "key": s.reader.key,
                        "paths": {
                            "GET /v1/deployment": "/v1/deployment",
                            "GET /v1/claims/{id}": f"/v1/claims/{s.claim_id}",
                            "GET /v1/payables/{id}/tree (50 pieces)": (
                                f"/v1/payables/{s.payable_id}/tree"
                            ),
                            "GET /v1/audit/events?claim_id=…": (
                                f"/v1/audit/events?claim_id={s.events_claim_id}&limit=200"
                            ),
                            "GET /v1/payables?limit=20": "/v1/payables?limit=20",
                        },
                    }
                )
            )
            found: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
            load_before = load_average()
            for _ in range(rounds):
                for name, checkout in variants.items():
                    env = {
                        **os.environ,
                        "PYTHONPATH": str(checkout),
                        "TIERFLOW_REPO_ROOT": str(checkout),
                    }
                    # This file run in the checkout (which need not have it): its packages,
                    # not this one's, are the ones imported.
                    command = [sys.executable, "-c", _RUN_THIS_FILE, __file__, "--serve"]
                    command += [str(config), "--requests", str(requests)]
                    done = await asyncio.to_thread(
                        subprocess.run,
                        command,
                        cwd=checkout,
                        env=env,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode != 0:
                        raise SystemExit(f"{name}: {done.stderr[-3000:]}")
                    figures = json.loads(done.stdout.strip().splitlines()[-1])
                    for key, value in figures.items():
                        found[name].setdefault(key, []).append(value)
            return {
                "rounds": rounds,
                "requests": requests,
                "writes_first": writes,
                "load_before": load_before,
                "load_after": load_average(),
                "medians": {
                    name: {key: round(statistics.median(v), 3) for key, v in per.items()}
                    for name, per in found.items()
                },
                "rounds_each": found,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", type=Path, help="the checkout to compare with this one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="per path and round")
    parser.add_argument(
        "--writes", type=int, default=0, help="others' splits through the API before the reads"
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # one variant's process
    args = parser.parse_args()
    if args.serve is not None:
        config = json.loads(args.serve.read_text())
        print(json.dumps(asyncio.run(serve_in_process(config, args.requests))))
        return
    here = Path(__file__).resolve().parents[2]
    variants = {"this code": here}
    if args.baseline is not None:
        variants = {f"code at {args.baseline.name}": args.baseline.resolve(), **variants}
    print(
        json.dumps(
            asyncio.run(measure(variants, args.rounds, args.requests, args.writes)), indent=2
        )
    )


if __name__ == "__main__":
    main()
