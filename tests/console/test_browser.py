"""The console's pages in a real browser: Debian's Chromium, headless, driven by Playwright
(which downloads no browser of its own: ``executable_path``). Sample pages are rendered to
files in the test's output directory and served to the browser from those files, under a
strict Content-Security-Policy, with every other request refused. The test checks that the
tree's nodes are visible with their amounts, that the zoom works, that nothing breaks the
policy, and saves a screenshot of every page beside the HTML (kept in ``tmp_path``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from backend.console import STATIC_DIR, Console, tree
from backend.console.fmt import yuan
from bench import console_samples as samples

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
ORIGIN = "http://console.test"
CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/bootstrap"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Site:
    """Pages written to ``root`` as files, served to one browser page from there."""

    def __init__(self, root: Path, browser: Any) -> None:
        self.root = root
        self.refused: list[str] = []
        self.problems: list[str] = []
        shutil.copytree(STATIC_DIR, root / "console" / "static")
        self.page = browser.new_page(viewport={"width": 1440, "height": 1000})
        self.page.route("**/*", self._serve)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning") and "autocomplete" not in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    def _serve(self, route: Any) -> None:
        url: str = route.request.url
        if not url.startswith(ORIGIN + "/"):
            self.refused.append(url)
            route.abort()
            return
        path = url[len(ORIGIN) :].split("?", 1)[0].split("#", 1)[0]
        file = self.root / path.lstrip("/")
        if file.suffix == "" and file.with_suffix(".html").exists():
            file = file.with_suffix(".html")
        if not file.is_file():
            route.fulfill(status=404, body="not found")
            return
        types = {".css": "text/css", ".js": "text/javascript", ".html": "text/html"}
        route.fulfill(
            status=200,
            body=file.read_bytes(),
            headers={
                "content-type": types.get(file.suffix, "application/octet-stream")
                + "; charset=utf-8",
                "content-security-policy": CSP,
            },
        )

    def write(self, name: str, html: str) -> str:
        path = self.root / "console" / "pages" / f"{name}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        return f"{ORIGIN}/console/pages/{name}"

    def open(self, name: str, html: str) -> Any:
        self.page.goto(self.write(name, html), wait_until="load")
        return self.page

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        target = self.root / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=full_page)
        return target


@pytest.fixture
def site(tmp_path: Path, browser: Any) -> Iterator[Site]:
    s = Site(tmp_path, browser)
    try:
        yield s
    finally:
        s.page.close()
    print(f"console pages and screenshots kept in {tmp_path}")


def test_the_tree_in_a_browser(site: Site, console: Console) -> None:
    data = samples.demo_tree()
    page = site.open(
        "tree",
        console.tree_page(
            data, payable=samples.demo_payable(), viewer=samples.AUDITOR, members=samples.MEMBERS
        ),
    )
    nodes = page.locator("svg.tree g.node")
    assert nodes.count() == 13
    stack = [data["root"]]
    while stack:
        piece = stack.pop()
        stack.extend(piece["children"])
        node = page.locator(f"svg.tree g.node[data-id='{piece['id']}']")
        assert node.is_visible()
        assert node.locator("text.amount").text_content() == yuan(piece["amount"])
        box = node.bounding_box()
        assert box is not None
        assert box["width"] > 200
        assert box["height"] > 80
        row = page.locator(f"table.pieces tr#row-{piece['id']}")
        assert yuan(piece["amount"]) in row.inner_text()
    # the figures drawn in the page are the ones in the input, status marks as words
    assert "FROZEN · FINANCED" in (page.locator("g#piece-42 text.status").text_content() or "")
    # no two nodes overlap on screen
    rects = [nodes.nth(i).bounding_box() for i in range(nodes.count())]
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert a is not None
            assert b is not None
            apart = (
                a["x"] + a["width"] <= b["x"]
                or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"]
                or b["y"] + b["height"] <= a["y"]
            )
            assert apart
    site.shot("tree")
    page.locator("figure.tree-figure").screenshot(path=str(site.root / "tree-picture.png"))
    # the zoom buttons came with the script (no inline script: the CSP allows only files)
    zoom = page.locator(".zoom")
    assert zoom.is_visible()
    svg = page.locator("svg.tree")
    before = float(svg.get_attribute("width") or 0)
    page.locator("button[data-zoom='out']").click()
    assert float(svg.get_attribute("width") or 0) < before
    page.locator("button[data-zoom='reset']").click()
    assert float(svg.get_attribute("width") or 0) == before
    # a node is a link to its history
    href = page.locator("g#piece-31 a.node-link").get_attribute("href")
    assert href == "/console/claims/31"
    assert not site.problems, site.problems
    assert not site.refused, site.refused


@pytest.mark.parametrize("shape", ["bushy", "wide", "deep"])
def test_ten_thousand_pieces_in_a_browser(site: Site, console: Console, shape: str) -> None:
    page = site.open(
        f"tree-10k-{shape}",
        console.tree_page(
            samples.big_tree(10_000, shape), viewer=samples.AUDITOR, members=samples.MEMBERS
        ),
    )
    nodes = page.locator("svg.tree g.node")
    assert 1 <= nodes.count() <= tree.MAX_NODES
    focus = page.locator("svg.tree g.node.focus")
    assert focus.count() == 1
    focus.scroll_into_view_if_needed()
    assert focus.is_visible()
    stubs = page.locator("svg.tree g.stub")
    if shape != "wide":
        assert stubs.count() >= 1
    site.shot(f"tree-10k-{shape}", full_page=False)
    page.locator("button[data-zoom='fit']").click()
    page.locator("figure.tree-figure").screenshot(path=str(site.root / f"tree-10k-{shape}-fit.png"))
    assert not site.problems, site.problems
    assert not site.refused, site.refused


def test_every_page_in_a_browser(site: Site, console: Console) -> None:
    for name, html in samples.all_pages(console).items():
        page = site.open(name, html)
        assert page.locator("main#main").is_visible()
        assert page.locator("h1").first.is_visible()
        # the stylesheet applied (the top bar is the console's navy, not a bare page)
        colour = page.evaluate(
            "getComputedStyle(document.querySelector('.topbar')).backgroundColor"
        )
        assert colour == "rgb(31, 58, 95)", name
        site.shot(name)
    assert not site.problems, site.problems
    assert not site.refused, site.refused
