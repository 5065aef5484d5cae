"""The open-loop read generator run in a process of its own gives back its whole ReadRun."""

from __future__ import annotations

import io

from aiohttp import web
from rich.console import Console
from rich.progress import Progress

from bench.open_loop_apart import open_loop_apart


async def test_a_generator_of_its_own_measures_a_server() -> None:
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/v1/deployment", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with Progress(console=Console(file=io.StringIO())) as progress:
            run = await open_loop_apart(
                f"http://127.0.0.1:{port}",
                {"Authorization": "Bearer k"},
                "floor",
                "/v1/deployment",
                rate=100.0,
                seconds=1.0,
                warmup=0.2,
                progress=progress,
            )
    finally:
        await runner.cleanup()
    assert run.name == "floor"
    assert run.errors == 0
    assert not run.failures
    assert len(run.latencies) == 100  # the last second's, the warm-up's left out
    assert len(seen) == 120
    assert set(seen) == {"Bearer k"}
    assert run.achieved > 80
    assert 0 < run.p50 < 1.0
    assert run.cpu > 0
