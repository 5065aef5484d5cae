"""The lineage tree: its window (levels, paged children, the node budget, "+k more"), a layout
that never overlaps, and a page whose nodes, amounts and marks are exactly the input's."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from backend.console import Console, PieceNotInTree, tree
from backend.console.fmt import yuan
from bench import console_samples as samples

Parse = Any


def _pieces(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    stack = [data["root"]]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node["children"]))
    return out


def _nodes(doc: Any) -> dict[int, Any]:
    return {int(g.attrs["data-id"]): g for g in doc.find_all("g", cls="node")}


def _stubs(doc: Any, kind: str) -> list[Any]:
    found: list[Any] = doc.find_all("g", cls="stub", data_kind=kind)
    return found


# -- the whole demo tree on one page ---------------------------------------------------------


def test_every_piece_is_a_node_and_a_row_with_its_exact_amount(
    console: Console, parse: Parse
) -> None:
    data = samples.demo_tree()
    doc = parse(console.tree_page(data, payable=samples.demo_payable(), members=samples.MEMBERS))
    nodes = _nodes(doc)
    pieces = _pieces(data)
    assert set(nodes) == {p["id"] for p in pieces}
    rows = {int(r.attrs["data-id"]): r for r in doc.find("table", cls="pieces").find_all("tr")[1:]}
    assert set(rows) == set(nodes)
    for p in pieces:
        g = nodes[p["id"]]
        assert int(g.attrs["data-amount"]) == p["amount"]
        assert g.find("text", cls="amount").text() == yuan(p["amount"])
        assert g.find("text", cls="pid").text() == f"#{p['id']}"
        assert int(rows[p["id"]].attrs["data-amount"]) == p["amount"]
        assert yuan(p["amount"]) in rows[p["id"]].text()
        assert int(rows[p["id"]].find("span", cls="money").attrs["data-fen"]) == p["amount"]
    # the one with an odd fen count is written to the fen
    assert nodes[32].find("text", cls="amount").text() == "¥2,500,000.55"


def test_marks_are_words_classes_and_borders_not_colour_alone(
    console: Console, parse: Parse
) -> None:
    doc = parse(console.tree_page(samples.demo_tree(), members=samples.MEMBERS))
    nodes = _nodes(doc)

    def status(i: int) -> str:
        return str(nodes[i].find("text", cls="status").text())

    assert "st-financed" in nodes[32].classes
    assert "FINANCED" in status(32)
    assert "st-frozen" in nodes[36].classes
    assert "FROZEN" in status(36)
    assert "st-settled" in nodes[34].classes
    assert "SETTLED" in status(34)
    assert "✓" in status(34)
    assert "st-locked" in nodes[39].classes
    assert "LOCKED" in status(39)
    # frozen and financed at once: both words, both classes
    assert {"st-frozen", "mk-financed"} <= nodes[42].classes
    assert "FROZEN" in status(42)
    assert "FINANCED" in status(42)
    # an active piece with value locked by an application says how much
    assert "mk-locked" in nodes[31].classes
    assert nodes[31].find("text", cls="locked").text() == "locked ¥1,200,000.00"
    assert nodes[31].find("rect", cls="lockbar")
    # the table says the same in words
    row = doc.find("tr", id="row-42")
    chips = {c.text().strip() for c in row.find_all("span", cls="chip")}
    assert chips == {"❄ Frozen", "◆ Financed"}
    # and each status has a legend entry
    legend = doc.find("ul", cls="legend").text()
    for label in ("Active", "Locked", "Financed", "Settled", "Frozen", "Cancelled"):
        assert label in legend


def test_custody_names_and_links(console: Console, parse: Parse) -> None:
    data = samples.demo_tree()
    doc = parse(console.tree_page(data, members=samples.MEMBERS))
    nodes = _nodes(doc)
    root = nodes[30]
    assert root.find("g", cls="custody").text() == "self"
    assert "cu-self" in root.find("g", cls="custody").classes
    assert nodes[31].find("g", cls="custody").text() == "hosted"
    assert root.find("text", cls="holder").text() == "华东精密制造有限公司"
    for p in _pieces(data):
        links = nodes[p["id"]].links()
        assert f"/console/claims/{p['id']}" in links
        assert f"/console/tx/{p['tx_hash']}" in links
    # the accessible name says it all
    label = nodes[32].find("a", cls="node-link").attrs["aria-label"]
    assert label.startswith("Piece #32; ¥2,500,000.55; held by 苏州恒达电子元件厂")
    assert "hosted custody" in label
    assert "financed" in label


def test_node_fields_override_members_and_bad_hashes_are_not_linked(
    console: Console, parse: Parse
) -> None:
    data = samples.demo_tree()
    data["root"]["holder_name"] = "Given on the node"
    data["root"]["custody"] = "hosted"
    data["root"]["tx_hash"] = "javascript:alert(1)"
    doc = parse(console.tree_page(data, members=samples.MEMBERS))
    root = _nodes(doc)[30]
    assert root.find("text", cls="holder").text() == "Given on the node"
    assert root.find("g", cls="custody").text() == "hosted"
    assert not root.find_all("a", cls="tx")
    assert not [h for h in doc.links() if "javascript" in h]


def test_totals_partition_the_face_value(console: Console, parse: Parse) -> None:
    data = samples.demo_tree()
    read = tree.read_tree(data, samples.MEMBERS)
    sums = tree.totals(read)
    assert sums.amount == samples.tree_total(data) == samples.demo_payable()["face_value"]
    assert sum(s.amount for s in sums.by_status) == sums.amount
    assert sum(s.pieces for s in sums.by_status) == 13
    assert sums.locked == 120_000_000 + 9_999_999
    assert sums.financed == 250_000_055 + 400_000_000 + 20_000_000 + 100_000_000
    assert sums.depth == 3
    doc = parse(console.tree_page(data, members=samples.MEMBERS))
    assert yuan(sums.amount) in doc.find("section", cls="summary").text()


# -- the window ------------------------------------------------------------------------------


def test_a_window_of_levels_with_more_links_that_refocus(console: Console, parse: Parse) -> None:
    data = samples.big_tree(10, "deep")
    doc = parse(console.tree_page(data, levels=4))
    assert set(_nodes(doc)) == {1, 2, 3, 4, 5}
    (more,) = _stubs(doc, "more")
    assert more.attrs["data-for"] == "5"
    assert more.attrs["data-hidden"] == "5"
    assert more.text() == "+5 more pieces below"
    assert more.find("a").attrs["href"] == "/console/payables/7?focus=5"
    # following it shows the rest, the ancestors as a trail
    doc = parse(console.tree_page(data, focus=5, levels=4))
    assert set(_nodes(doc)) == {5, 6, 7, 8, 9}
    (more,) = _stubs(doc, "more")
    assert more.text() == "+1 more piece below"
    assert set(_nodes(parse(console.tree_page(data, focus=6)))) == {6, 7, 8, 9, 10}
    assert not _stubs(parse(console.tree_page(data, focus=6)), "more")
    crumbs = doc.find("nav", cls="crumbs").text()
    assert "#1" in crumbs
    assert "#4" in crumbs
    assert "focus" in _nodes(doc)[5].classes


def test_the_focus_childrens_pages(console: Console, parse: Parse) -> None:
    data = samples.big_tree(121, "wide")  # the root and 120 children
    doc = parse(console.tree_page(data))
    assert len(_nodes(doc)) == 51
    (nxt,) = _stubs(doc, "next")
    assert nxt.text() == "pieces 51–100 of 120 →"
    assert nxt.find("a").attrs["href"] == "/console/payables/7?focus=1&page=2"
    assert not _stubs(doc, "prev")
    doc = parse(console.tree_page(data, focus=1, page=3))
    assert set(_nodes(doc)) == {1, *range(102, 122)}
    (prev,) = _stubs(doc, "prev")
    assert prev.find("a").attrs["href"] == "/console/payables/7?focus=1&page=2"
    assert not _stubs(doc, "next")
    pager = doc.find("nav", cls="pager")
    assert "Page 3 of 3" in pager.text()
    # a page past the end shows the last one
    assert set(_nodes(parse(console.tree_page(data, page=99)))) == set(_nodes(doc))


def test_children_of_a_piece_below_the_focus_page_by_refocusing(
    console: Console, parse: Parse
) -> None:
    data = samples.big_tree(2, "deep")
    child = data["root"]["children"][0]
    for i in range(70):
        samples.node(100 + i, child, samples.SUPPLIERS[1], 1_000 + i)
    doc = parse(console.tree_page(data))
    assert len(_nodes(doc)) == 2 + 50
    (nxt,) = _stubs(doc, "next")
    assert nxt.attrs["data-for"] == "2"
    assert nxt.find("a").attrs["href"] == "/console/payables/7?focus=2&page=2"
    doc = parse(console.tree_page(data, focus=2, page=2))
    assert set(_nodes(doc)) == {2, *range(150, 170)}


def test_the_node_budget_folds_whole_levels(console: Console, parse: Parse) -> None:
    data = samples.big_tree(1111, "tiers")  # 1 + 10 + 100 + 1000
    read = tree.read_tree(data)
    win = tree.window(read, levels=4, max_nodes=200)
    assert win.levels_shown == 2
    assert win.cut_by_budget
    assert win.shown == 111
    more = [b for row in win.rows for b in row.children if b.kind == "more"]
    assert len(more) == 100
    assert all(b.hidden == 10 for b in more)
    doc = parse(console.tree_page(data, max_nodes=200))
    assert "Deeper levels are folded" in doc.find("p", cls="window-note").text()
    # the first level below the focus is always drawn, whatever the budget
    assert tree.window(read, max_nodes=1).shown == 11


def test_pieces_the_api_left_out_are_announced(console: Console, parse: Parse) -> None:
    data = samples.big_tree(3, "deep")
    cut = data["root"]["children"][0]["children"][0]
    cut["child_count"] = 3
    cut["truncated"] = True
    read = tree.read_tree(data)
    assert not read.root.complete
    doc = parse(console.tree_page(data))
    (more,) = _stubs(doc, "more")
    assert more.text() == "+3 children and more below"
    assert more.find("a").attrs["href"] == "/console/payables/7?focus=3"


def test_a_focus_outside_the_tree_is_refused(console: Console) -> None:
    with pytest.raises(PieceNotInTree):
        console.tree_page(samples.demo_tree(), focus=999)


def test_amounts_are_integers_of_fen() -> None:
    data = samples.demo_tree()
    data["root"]["amount"] = 1.5
    with pytest.raises(ValueError, match="integer"):
        tree.read_tree(data)
    with pytest.raises(TypeError):
        yuan(1.5)  # type: ignore[arg-type]


def test_yuan_is_exact() -> None:
    assert yuan(1234567) == "¥12,345.67"
    assert yuan(0) == "¥0.00"
    assert yuan(5) == "¥0.05"
    assert yuan(100) == "¥1.00"
    assert yuan(-250) == "-¥2.50"
    top = 2**128 - 1
    assert yuan(top) == f"¥{top // 100:,}.{top % 100:02d}"
    assert yuan(top).replace(",", "").replace("¥", "").replace(".", "") == str(top)


@pytest.mark.parametrize("shape", ["deep", "wide", "bushy", "tiers"])
def test_ten_thousand_pieces_render_a_bounded_window(
    console: Console, parse: Parse, shape: str
) -> None:
    data = samples.big_tree(10_000, shape)
    html = console.tree_page(data)
    doc = parse(html)
    nodes = _nodes(doc)
    assert 1 <= len(nodes) <= tree.MAX_NODES
    assert "10,000" in doc.find("section", cls="summary").text()
    # what is not drawn is reachable: drawn + hidden behind stubs = the tree
    hidden = sum(int(s.attrs["data-hidden"]) for s in doc.find_all("g", cls="stub"))
    assert len(nodes) + hidden == 10_000


# -- the layout ------------------------------------------------------------------------------


def _overlaps(win: tree.Window) -> list[tuple[int, int]]:
    boxes: list[tree.Box] = []
    stack = [win.root]
    while stack:
        box = stack.pop()
        boxes.append(box)
        stack.extend(box.children)
    clashes = []
    by_column: dict[int, list[tree.Box]] = {}
    for box in boxes:
        by_column.setdefault(box.level, []).append(box)
    for column in by_column.values():
        column.sort(key=lambda b: b.y)
        for upper, lower in itertools.pairwise(column):
            if upper.y + upper.height + tree.SIBLING_GAP - 0.01 > lower.y:
                clashes.append((id(upper), id(lower)))
    return clashes


@pytest.mark.parametrize("seed", range(25))
def test_the_layout_never_overlaps_and_keeps_tree_order(seed: int) -> None:
    rnd = random.Random(seed)
    shape = rnd.choice(["bushy", "tiers", "wide", "deep"])
    data = samples.big_tree(rnd.randrange(2, 600), shape, seed=seed)
    read = tree.read_tree(data)
    focus = rnd.choice(read.order).id
    win = tree.window(read, focus, levels=rnd.randrange(1, 7), page_size=rnd.choice([3, 10, 50]))
    assert not _overlaps(win)
    stack = [win.root]
    while stack:
        box = stack.pop()
        centre = box.y + box.height / 2
        ys = [c.y for c in box.children]
        assert ys == sorted(ys)  # siblings top to bottom in the answer's order
        for child in box.children:
            assert child.x > box.x + box.width  # children in the next column
        if box.children:
            first = box.children[0].y + box.children[0].height / 2
            last = box.children[-1].y + box.children[-1].height / 2
            assert abs(centre - (first + last) / 2) < 0.01  # parent centred on its children
        stack.extend(box.children)
    assert all(b.y >= 0 and b.x >= 0 for b in _all(win))
    assert max(b.y + b.height for b in _all(win)) <= win.height
    assert max(b.x + b.width for b in _all(win)) <= win.width


def _all(win: tree.Window) -> list[tree.Box]:
    out = []
    stack = [win.root]
    while stack:
        box = stack.pop()
        out.append(box)
        stack.extend(box.children)
    return out


def test_a_small_subtree_tucks_in_beside_a_deep_one() -> None:
    """Reingold–Tilford, not one slot per leaf: a leaf sibling sits level with the next
    sibling's children instead of below all of them."""
    data = samples.big_tree(1, "deep")
    root = data["root"]
    deep = samples.node(2, root, samples.SUPPLIERS[1], 10)
    for i in range(6):
        samples.node(10 + i, deep, samples.SUPPLIERS[2], 10)
    samples.node(3, root, samples.SUPPLIERS[1], 10)
    win = tree.window(tree.read_tree(data))
    boxes = {b.piece.id: b for b in _all(win) if b.piece and b.kind == "piece"}
    leaf_children_bottom = max(boxes[i].y + boxes[i].height for i in range(10, 16))
    assert boxes[3].y < leaf_children_bottom
