"""The console in a real browser against the real platform: Debian's Chromium (headless,
driven by Playwright, which downloads no browser: ``executable_path``) signs in through the
form of ``tierflow serve``, opens the tree of the demo's payable and checks every node and
its amount against ``GET /v1/payables/{id}/tree``; an outsider signed in the same way gets
the 404 page for it. The real headers apply (CSP ``default-src 'self'``): any violation, page
error or request leaving the platform fails the test. Screenshots are saved in the test's
output directory; with ``TIERFLOW_CONSOLE_SCREENSHOT=<path>`` the tree's is also written
there (how ``docs/img/console-tree.png`` in the README is made)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from backend.console.fmt import yuan
from tests.support.console_demo import Demo, demo_platform

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    async with demo_platform(tmp_path_factory.mktemp("console-browser")) as made:
        yield made


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/bootstrap"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """One browser context (its own cookies) on the platform; records what goes wrong."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.base_url = base_url
        self.problems: list[str] = []
        self.foreign: list[str] = []
        self.failed: list[tuple[int, str]] = []
        self.context = browser.new_context(
            viewport={"width": 1440, "height": 1000}, base_url=base_url
        )
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("console", self._console)
        self.page.on("request", self._request)
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        text: str = message.text
        if "autocomplete" in text or text.startswith("Failed to load resource"):
            return  # (a failed load is in self.failed, with its address)
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.failed.append((response.status, response.url[len(self.base_url) :]))

    def _request(self, request: Any) -> None:
        if not request.url.startswith(self.base_url + "/"):
            self.foreign.append(request.url)

    def sign_in(self, path: str, key: str) -> Any:
        """Open ``path``, be sent to the sign-in form, sign in, land back on ``path``."""
        page = self.page
        page.goto(path)
        assert "/console/sign-in" in page.url
        page.fill("#api_key", key)
        with page.expect_navigation():
            page.click("form button[type=submit]")
        return page

    def close(self) -> None:
        self.context.close()


def _pieces(tree: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    todo = [tree["root"]]
    while todo:
        node = todo.pop()
        out.append(node)
        todo += node["children"]
    return out


async def _tree(demo: Demo) -> dict[str, Any]:
    r = await demo.api_get(demo.key("auditor"), f"/v1/payables/{demo.payable_id}/tree")
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


@pytest.fixture(scope="module")
async def api_tree(demo: Demo) -> dict[str, Any]:
    return await _tree(demo)


def test_the_demo_tree_in_chromium(
    demo: Demo, api_tree: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    tab = Tab(browser, demo.stack.base_url)
    try:
        path = f"/console/payables/{demo.payable_id}"
        page = tab.sign_in(path, demo.key("auditor"))
        assert page.url == demo.stack.base_url + path
        nodes = page.locator("svg.tree g.node")
        pieces = _pieces(api_tree)
        assert nodes.count() == len(pieces)
        for piece in pieces:
            node = page.locator(f"svg.tree g.node[data-id='{piece['id']}']")
            assert node.is_visible()
            assert node.locator("text.amount").text_content() == yuan(piece["amount"])
            row = page.locator(f"table.pieces tr#row-{piece['id']}")
            assert yuan(piece["amount"]) in row.inner_text()
        # the bank's pieces say FINANCED in words
        bank = demo.story["bank"].address
        for piece in pieces:
            if piece["holder"] == bank:
                status = page.locator(f"g#piece-{piece['id']} text.status").text_content() or ""
                assert "FINANCED" in status
        # no two nodes overlap on screen
        rects = [nodes.nth(i).bounding_box() for i in range(nodes.count())]
        for i, a in enumerate(rects):
            for b in rects[i + 1 :]:
                assert a is not None
                assert b is not None
                assert (
                    a["x"] + a["width"] <= b["x"]
                    or b["x"] + b["width"] <= a["x"]
                    or a["y"] + a["height"] <= b["y"]
                    or b["y"] + b["height"] <= a["y"]
                )
        page.screenshot(path=str(tmp_path / "tree.png"), full_page=True)
        picture = tmp_path / "tree-picture.png"
        page.locator("figure.tree-figure").screenshot(path=str(picture))
        target = os.environ.get("TIERFLOW_CONSOLE_SCREENSHOT")
        if target:
            page.screenshot(path=target, full_page=False)
        # the zoom (the committed script runs under the policy)
        svg = page.locator("svg.tree")
        before = float(svg.get_attribute("width") or 0)
        page.locator("button[data-zoom='out']").click()
        assert float(svg.get_attribute("width") or 0) < before
        # a node opens the piece's history, its "tx" the transaction
        root = api_tree["root"]["id"]
        with page.expect_navigation():
            page.locator(f"g#piece-{root} a.node-link").click()
        assert page.url.endswith(f"/console/claims/{root}")
        assert "PayableIssued" in page.locator("main").inner_text()
        page.screenshot(path=str(tmp_path / "claim.png"), full_page=True)
        page.go_back()
        with page.expect_navigation():
            page.locator(f"g#piece-{root} a.tx").click()
        assert "/console/tx/0x" in page.url
        assert "PayableIssued" in page.locator("main").inner_text()
        for name in ("exposure", "events", "reconciliation", "audit-log"):
            page.goto(f"/console/{name}")
            assert page.locator("main#main").is_visible(), name
            page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        # signing out: back to the form, and the tree asks for a sign-in again
        with page.expect_navigation():
            page.click("form[action='/console/sign-out'] button")
        assert "/console/sign-in" in page.url
        page.goto(path)
        assert "/console/sign-in" in page.url
        assert not tab.problems, tab.problems
        assert not tab.foreign, tab.foreign
        assert not tab.failed, tab.failed
    finally:
        tab.close()
    print(f"screenshots kept in {tmp_path}")


def test_an_outsider_gets_not_found_in_chromium(
    demo: Demo, api_tree: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    tab = Tab(browser, demo.stack.base_url)
    try:
        path = f"/console/payables/{demo.payable_id}"
        page = tab.sign_in(path, demo.outsider_key)
        assert page.locator("h1").first.inner_text() == "Not found"
        assert page.locator("svg.tree").count() == 0
        text = page.locator("body").inner_text()
        assert yuan(api_tree["root"]["amount"]) not in text
        assert "Anda Components" not in text
        page.screenshot(path=str(tmp_path / "outsider.png"), full_page=True)
        # its own page opens
        page.goto("/console")
        assert page.locator("h1").first.inner_text() == "Outsider Trading"
        assert not tab.problems, tab.problems
        assert tab.failed == [(404, path)]
    finally:
        tab.close()
