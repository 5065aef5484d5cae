"""The open-loop read generator in a process of its own.

``tierflow bench`` runs for a quarter of an hour in one process: by its reads that process
holds every figure, seed and client made so far, and its collector's full passes (and any
other thread of it) pause the generator. In the 23:07 run two reads at 500/s had the
generator late by 87 and 103 ms (p99; 1.1 ms for every other read of the run), and their
p99 was 155 and 169 ms against 2.4–5.7 ms. The generator's lateness is measured (a late
generator flatters the server, which sees fewer requests at once), but a pause of the
benchmark's own is not the platform's. :func:`open_loop_apart` runs
:func:`bench.api_load.open_loop` in a fresh interpreter (``python -m bench.open_loop_apart``,
its one aiohttp session as :func:`bench.perf.api.reads` opens it) and reads its
:class:`~bench.api_load.ReadRun` back as JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections import Counter
from typing import Any

import aiohttp
import uvloop
from rich.progress import Progress

from bench.api_load import TIMEOUT_S, ReadRun, open_loop
from ledger.paths import repo_root


async def open_loop_apart(
    base_url: str,
    headers: dict[str, str],
    name: str,
    path: str,
    rate: float,
    seconds: float,
    warmup: float,
    progress: Progress,
) -> ReadRun:
    """:func:`bench.api_load.open_loop` of ``GET path`` in a process of its own."""
    task = progress.add_task(f"{name} at {rate:g}/s (a generator of its own)", total=1)
    spec = {
        "base_url": base_url,
        "headers": headers,
        "name": name,
        "path": path,
        "rate": rate,
        "seconds": seconds,
        "warmup": warmup,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.open_loop_apart",
        json.dumps(spec),
        cwd=repo_root(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    progress.advance(task)
    if child.returncode != 0:
        raise RuntimeError(f"the read generator failed: {err.decode(errors='replace')[-2000:]}")
    fields = json.loads(out.decode().strip().splitlines()[-1])
    fields["failures"] = Counter(fields["failures"])
    return ReadRun(**fields)


async def _run(spec: dict[str, Any]) -> ReadRun:
    async with aiohttp.ClientSession(
        base_url=spec["base_url"],
        headers=spec["headers"],
        connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=2.0),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
    ) as client:
        with Progress(disable=True) as progress:
            return await open_loop(
                client,
                spec["name"],
                spec["path"],
                spec["rate"],
                spec["seconds"],
                spec["warmup"],
                progress,
            )


def main() -> None:
    run = uvloop.run(_run(json.loads(sys.argv[1])))
    print(json.dumps(dataclasses.asdict(run)))


if __name__ == "__main__":
    main()
