"""A payable's lineage tree as a picture: the API's nested tree read into pieces, a window of
levels cut around a focus piece (children paginated, a node budget), a tidy layout of that
window and the SVG that draws it.

The whole tree may hold 10,000 pieces and more; the page only ever draws a window of it:

- ``levels`` levels below the focus piece (4 by default);
- at most ``page_size`` children of a piece (50): the focus piece's children are paged
  (``page``), any other piece shows its first page and a "next" box that refocuses on it;
- at most ``max_nodes`` pieces (200): a level that would go past it is not drawn, the level
  above ends in "+k more" boxes instead (the first level below the focus is always drawn);
- a piece whose descendants are not drawn ends in a "+k more" box linking to the tree
  refocused on it (k: its hidden descendants, or its children when the API's answer was cut).

Everything here walks the tree without recursion over the whole tree (a chain of 10,000
pieces is a legal tree); only the window, at most ``levels + 1`` deep, is laid out
recursively.

The layout is Reingold–Tilford's idea on a left-to-right tree: depth runs along x in fixed
columns, each subtree is laid out on its own and pushed down against its elder siblings'
subtrees until, level by level, their contours keep a gap, then its parent is centred on its
first and last child. Nodes never overlap, and a small subtree tucks in beside a deep one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from markupsafe import Markup, escape

from backend.console.fmt import clip_px, is_hash, short_hex, yuan
from backend.console.urls import DEFAULT_LEVELS, Urls

#: The claim statuses the API answers (``backend.schemas.payables.ClaimStatus``).
STATUSES = ("active", "locked", "financed", "settled", "frozen", "cancelled")
STATUS_LABELS = {
    "active": "Active",
    "locked": "Locked",
    "financed": "Financed",
    "settled": "Settled",
    "frozen": "Frozen",
    "cancelled": "Cancelled",
}
#: Next to the status word on a node, so a mark does not rest on colour alone.
STATUS_SYMBOLS = {"settled": "✓", "frozen": "❄", "financed": "◆", "locked": "▲"}

PAGE_SIZE = 50
MAX_NODES = 200
MAX_LEVELS = 8

# Geometry of the picture, in SVG user units (CSS pixels at zoom 1).
NODE_W = 236
NODE_H = 92
STUB_W = 200
STUB_H = 30
COLUMN_GAP = 60
SIBLING_GAP = 12
COUSIN_GAP = 26
MARGIN = 16


class PieceNotInTree(LookupError):
    """The focus piece is not in the tree that was given."""


@dataclass(slots=True, eq=False)
class Piece:
    """A piece of the payable as the tree answer has it, with what the console adds."""

    id: int
    parent_id: int | None
    depth: int
    holder: str
    amount: int
    locked_amount: int
    status: str
    invoice_id: str | None
    child_count: int
    truncated: bool
    tx_hash: str | None
    custody: str | None
    holder_name: str | None
    financed: bool
    frozen: bool
    children: list[Piece] = field(default_factory=list)
    parent: Piece | None = None
    #: Pieces in its subtree that the answer holds, itself included.
    size: int = 1
    #: Its whole subtree is in the answer (no piece below was cut by the API's level limit).
    complete: bool = True

    @property
    def settled(self) -> bool:
        return self.status == "settled"

    @property
    def locked(self) -> bool:
        return self.locked_amount > 0 or self.status == "locked"

    @property
    def hidden_children(self) -> bool:
        """The API left its children out (its answer's level limit)."""
        return self.child_count > len(self.children)

    def marks(self) -> list[str]:
        """What sets it apart, as words: its status first, then flags the status hides (a
        financed piece that is frozen is both)."""
        marks = [self.status]
        if self.financed and "financed" not in marks:
            marks.append("financed")
        if self.frozen and "frozen" not in marks:
            marks.append("frozen")
        if self.locked_amount > 0 and "locked" not in marks:
            marks.append("locked")
        return marks


@dataclass(slots=True)
class Tree:
    """A tree answer read into pieces: ``by_id`` indexes every piece, ``order`` lists them
    depth first in the answer's order."""

    payable_id: int
    from_claim_id: int
    root: Piece
    by_id: dict[int, Piece]
    order: list[Piece]

    def ancestors(self, piece: Piece) -> list[Piece]:
        """From the tree's first piece down to the piece's parent."""
        chain: list[Piece] = []
        node = piece.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()
        return chain


def _int(raw: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"piece field {key!r} must be an integer, not {value!r}")
    return value


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return None if value is None else str(value)


def read_tree(
    data: Mapping[str, Any], members: Mapping[str, Mapping[str, Any]] | None = None
) -> Tree:
    """Read ``GET /v1/payables/{id}/tree``'s answer (``{payable_id, from_claim_id,
    node_count, root}``, ``root`` nesting ``children``).

    Besides the API's fields a node may carry ``holder_name``, ``custody`` (``self`` or
    ``hosted``), ``tx_hash`` (the transaction that created the piece), ``financed`` and
    ``frozen``; ``members`` (address → ``{name, custody}``, any case) fills the name and the
    custody of holders that lack them. Amounts must be integers (fen): a float is refused, not
    rounded."""
    members = {k.lower(): v for k, v in (members or {}).items()}
    root_raw = data["root"]
    by_id: dict[int, Piece] = {}
    order: list[Piece] = []
    stack: list[tuple[Mapping[str, Any], Piece | None]] = [(root_raw, None)]
    while stack:
        raw, parent = stack.pop()
        holder = str(raw["holder"])
        member = members.get(holder.lower(), {})
        status = str(raw.get("status", "active"))
        if status not in STATUS_LABELS:
            raise ValueError(f"unknown piece status {status!r}")
        children_raw: Sequence[Mapping[str, Any]] = raw.get("children") or ()
        tx_hash = _text(raw, "tx_hash")
        custody = _text(raw, "custody") or _text(member, "custody")
        piece = Piece(
            id=_int(raw, "id"),
            parent_id=None if raw.get("parent_id") is None else _int(raw, "parent_id"),
            depth=_int(raw, "depth", 0),
            holder=holder,
            amount=_int(raw, "amount"),
            locked_amount=_int(raw, "locked_amount", 0),
            status=status,
            invoice_id=_text(raw, "invoice_id"),
            child_count=_int(raw, "child_count", len(children_raw)),
            truncated=bool(raw.get("truncated", False)),
            tx_hash=tx_hash if is_hash(tx_hash) else None,
            custody=custody if custody in ("self", "hosted") else None,
            holder_name=_text(raw, "holder_name") or _text(member, "name"),
            financed=bool(raw.get("financed", status == "financed")),
            frozen=bool(raw.get("frozen", status == "frozen")),
            parent=parent,
        )
        if piece.id in by_id:
            raise ValueError(f"piece {piece.id} appears twice in the tree")
        by_id[piece.id] = piece
        order.append(piece)
        if parent is not None:
            parent.children.append(piece)
        for child in reversed(children_raw):
            stack.append((child, piece))
    for piece in reversed(order):  # children before parents
        piece.size = 1 + sum(c.size for c in piece.children)
        piece.complete = not piece.hidden_children and all(c.complete for c in piece.children)
    root = order[0]
    return Tree(
        payable_id=int(data["payable_id"]),
        from_claim_id=int(data.get("from_claim_id", root.id)),
        root=root,
        by_id=by_id,
        order=order,
    )


@dataclass(frozen=True, slots=True)
class StatusTotal:
    status: str
    pieces: int
    amount: int


@dataclass(frozen=True, slots=True)
class Totals:
    """The tree's pieces and value by status; a split moves value from a piece to a new one,
    so the amounts add up to the value of the tree's first piece before any split (the face
    value, for the whole tree)."""

    pieces: int
    amount: int
    by_status: list[StatusTotal]
    locked: int
    financed: int
    frozen: int
    holders: int
    #: Levels of splits below the tree's first piece (0: it was never split).
    depth: int


def totals(tree: Tree) -> Totals:
    pieces: dict[str, int] = dict.fromkeys(STATUSES, 0)
    amounts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    locked = financed = frozen = 0
    holders: set[str] = set()
    deepest = tree.root.depth
    for p in tree.order:
        deepest = max(deepest, p.depth)
        pieces[p.status] += 1
        amounts[p.status] += p.amount
        locked += p.locked_amount
        financed += p.amount if p.financed else 0
        frozen += p.amount if p.frozen else 0
        holders.add(p.holder.lower())
    return Totals(
        pieces=len(tree.order),
        amount=sum(amounts.values()),
        by_status=[StatusTotal(s, pieces[s], amounts[s]) for s in STATUSES if pieces[s]],
        locked=locked,
        financed=financed,
        frozen=frozen,
        holders=len(holders),
        depth=deepest - tree.root.depth,
    )


# -- the window ------------------------------------------------------------------------------

BoxKind = Literal["piece", "more", "next", "prev"]


@dataclass(slots=True, eq=False)
class Box:
    """Something drawn in the window: a piece, or a link standing for pieces not drawn."""

    kind: BoxKind
    level: int
    piece: Piece | None = None
    label: str = ""
    href: str = ""
    hidden: int = 0
    children: list[Box] = field(default_factory=list)
    # set by the layout
    x: float = 0.0
    y: float = 0.0
    offsets: list[float] = field(default_factory=list)

    @property
    def width(self) -> int:
        return NODE_W if self.kind == "piece" else STUB_W

    @property
    def height(self) -> int:
        return NODE_H if self.kind == "piece" else STUB_H


@dataclass(slots=True)
class Window:
    """The part of the tree a page draws."""

    tree: Tree
    focus: Piece
    levels: int
    page: int
    pages: int
    page_size: int
    root: Box
    #: The pieces drawn, depth first (the table lists them in this order).
    rows: list[Box]
    #: Levels drawn below the focus (fewer than ``levels`` when the node budget cut it).
    levels_shown: int
    cut_by_budget: bool
    width: float = 0.0
    height: float = 0.0

    @property
    def shown(self) -> int:
        return len(self.rows)


def _more(piece: Piece, level: int, urls: Urls, payable_id: int, levels: int) -> Box:
    if piece.complete:
        hidden = piece.size - 1
        label = f"+{hidden:,} more piece{'s' if hidden != 1 else ''} below"
    else:
        hidden = max(piece.child_count, piece.size - 1)
        label = f"+{piece.child_count:,} children and more below"
    return Box(
        kind="more",
        level=level,
        piece=piece,
        label=label,
        hidden=hidden,
        href=urls.payable(payable_id, focus=piece.id, levels=levels),
    )


def window(
    tree: Tree,
    focus_id: int | None = None,
    *,
    levels: int = DEFAULT_LEVELS,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    max_nodes: int = MAX_NODES,
    urls: Urls | None = None,
) -> Window:
    """Cut the window around ``focus_id`` (the tree's first piece by default) and lay it out.
    Raises :class:`PieceNotInTree` for a focus the tree does not hold."""
    urls = urls or Urls()
    levels = max(1, min(int(levels), MAX_LEVELS))
    focus = tree.root if focus_id is None else tree.by_id.get(focus_id)
    if focus is None:
        raise PieceNotInTree(focus_id)
    pid = tree.payable_id
    pages = max(1, -(-len(focus.children) // page_size))
    page = max(1, min(int(page), pages))

    root = Box(kind="piece", level=0, piece=focus)
    frontier = [root]
    shown = 1
    depth = 0
    cut_by_budget = False
    while depth < levels and frontier:
        planned: list[tuple[Box, int, list[Piece]]] = []
        count = 0
        for box in frontier:
            piece = box.piece
            assert piece is not None
            if not piece.children:
                continue
            start = (page - 1) * page_size if piece is focus else 0
            chunk = piece.children[start : start + page_size]
            planned.append((box, start, chunk))
            count += len(chunk)
        if not planned:
            break
        if depth > 0 and shown + count > max_nodes:
            cut_by_budget = True
            break
        next_frontier: list[Box] = []
        for box, start, chunk in planned:
            piece = box.piece
            assert piece is not None
            total = len(piece.children)
            if start > 0:
                box.children.append(
                    Box(
                        kind="prev",
                        level=depth + 1,
                        piece=piece,
                        label=f"← pieces {max(1, start - page_size + 1):,}–{start:,} of {total:,}",
                        href=urls.payable(pid, focus=piece.id, page=page - 1, levels=levels),
                    )
                )
            for child in chunk:
                child_box = Box(kind="piece", level=depth + 1, piece=child)
                box.children.append(child_box)
                next_frontier.append(child_box)
            end = start + len(chunk)
            if end < total:
                next_page = page + 1 if piece is focus else 2
                box.children.append(
                    Box(
                        kind="next",
                        level=depth + 1,
                        piece=piece,
                        label=f"pieces {end + 1:,}–{min(end + page_size, total):,} of {total:,} →",
                        hidden=total - end,
                        href=urls.payable(pid, focus=piece.id, page=next_page, levels=levels),
                    )
                )
        shown += count
        frontier = next_frontier
        depth += 1

    # Pieces whose descendants are not drawn end in a "+k more" box.
    rows: list[Box] = []
    stack = [root]
    while stack:
        box = stack.pop()
        if box.kind != "piece":
            continue
        rows.append(box)
        piece = box.piece
        assert piece is not None
        drawn = any(c.kind == "piece" for c in box.children)
        if not drawn and (piece.children or piece.hidden_children):
            box.children.append(_more(piece, box.level + 1, urls, pid, levels))
        stack.extend(reversed(box.children))

    win = Window(
        tree=tree,
        focus=focus,
        levels=levels,
        page=page,
        pages=pages,
        page_size=page_size,
        root=root,
        rows=rows,
        levels_shown=depth,
        cut_by_budget=cut_by_budget,
    )
    _lay_out(win)
    return win


# -- the layout ------------------------------------------------------------------------------

Contour = list[tuple[float, float]]


def _contour(box: Box) -> Contour:
    """Lay the subtree out relative to ``box``'s centre; answer its extent per level (top and
    bottom edge, level 0 being ``box`` itself)."""
    half = box.height / 2
    if not box.children:
        return [(-half, half)]
    outline: Contour = []
    offsets: list[float] = []
    for child in box.children:
        shape = _contour(child)
        if not offsets:
            offsets.append(0.0)
            outline = list(shape)
            continue
        shift = float("-inf")
        for lvl in range(min(len(outline), len(shape))):
            gap = SIBLING_GAP if lvl == 0 else COUSIN_GAP
            shift = max(shift, outline[lvl][1] + gap - shape[lvl][0])
        offsets.append(shift)
        for lvl, (top, bottom) in enumerate(shape):
            if lvl < len(outline):
                outline[lvl] = (outline[lvl][0], bottom + shift)
            else:
                outline.append((top + shift, bottom + shift))
    centre = (offsets[0] + offsets[-1]) / 2
    box.offsets = [o - centre for o in offsets]
    return [(-half, half), *((t - centre, b - centre) for t, b in outline)]


def _lay_out(win: Window) -> None:
    outline = _contour(win.root)
    top = min(t for t, _ in outline)
    bottom = max(b for _, b in outline)
    stack: list[tuple[Box, float]] = [(win.root, MARGIN - top)]
    right = 0.0
    while stack:
        box, centre = stack.pop()
        box.x = MARGIN + box.level * (NODE_W + COLUMN_GAP)
        box.y = centre - box.height / 2
        right = max(right, box.x + box.width)
        for child, offset in zip(box.children, box.offsets, strict=True):
            stack.append((child, centre + offset))
    win.width = right + MARGIN
    win.height = bottom - top + 2 * MARGIN


# -- the picture -----------------------------------------------------------------------------


def _name(piece: Piece) -> str:
    return piece.holder_name or short_hex(piece.holder)


def describe(piece: Piece) -> str:
    """One sentence for a piece: a tooltip and the accessible name of its node."""
    parts = [f"Piece #{piece.id}", yuan(piece.amount), f"held by {_name(piece)}"]
    if piece.holder_name:
        parts[-1] += f" ({piece.holder})"
    if piece.custody:
        parts.append(f"{piece.custody} custody")
    parts.append(", ".join(STATUS_LABELS.get(m, m).lower() for m in piece.marks()))
    if piece.locked_amount:
        parts.append(f"{yuan(piece.locked_amount)} locked by a financing application")
    return "; ".join(parts)


def _node(box: Box, focus: Piece, urls: Urls) -> str:
    p = box.piece
    assert p is not None
    e = escape
    classes = ["node", f"st-{p.status}"]
    classes += [f"mk-{m}" for m in p.marks()[1:]]
    if p is focus:
        classes.append("focus")
    words = " · ".join(STATUS_LABELS[m].upper() for m in p.marks())
    symbol = STATUS_SYMBOLS.get(p.status, "")
    status_text = f"{symbol} {words}" if symbol else words
    label = describe(p)
    out = [
        f'<g class="{" ".join(classes)}" id="piece-{p.id}" data-id="{p.id}" '
        f'data-amount="{p.amount}" data-status="{e(p.status)}" '
        f'transform="translate({box.x:.1f},{box.y:.1f})">',
        f'<a class="node-link" href="{e(urls.claim(p.id))}" aria-label="{e(label)}">',
        f"<title>{e(label)}</title>",
        f'<rect class="card" width="{NODE_W}" height="{NODE_H}" rx="6"/>',
        f'<rect class="accent" width="5" height="{NODE_H}" rx="2"/>',
        f'<text class="pid" x="16" y="20">#{p.id}</text>',
        f'<text class="status" x="{NODE_W - 12}" y="20">{e(status_text)}</text>',
        f'<text class="amount" x="16" y="44">{e(yuan(p.amount))}</text>',
        f'<text class="holder" x="16" y="64">{e(clip_px(_name(p), NODE_W - 80, 12.5))}</text>',
    ]
    if p.locked_amount:
        out.append(f'<text class="locked" x="16" y="82">locked {e(yuan(p.locked_amount))}</text>')
        fraction = min(1.0, p.locked_amount / p.amount) if p.amount else 1.0
        out.append(
            f'<rect class="lockbar" x="5" y="{NODE_H - 4}" '
            f'width="{(NODE_W - 5) * fraction:.1f}" height="4"/>'
        )
    else:
        out.append(f'<text class="addr" x="16" y="82">{e(short_hex(p.holder))}</text>')
    out.append("</a>")
    if p.custody:
        out.append(
            f'<g class="custody cu-{p.custody}" transform="translate({NODE_W - 62},52)">'
            f'<rect width="50" height="17" rx="8"/>'
            f'<text x="25" y="12.5">{e(p.custody)}</text></g>'
        )
    tx = urls.tx(p.tx_hash) if p.tx_hash else None
    if tx and p.tx_hash:
        out.append(
            f'<a class="tx" href="{e(tx)}" aria-label="transaction {e(p.tx_hash)}">'
            f"<title>transaction {e(p.tx_hash)}</title>"
            f'<text x="{NODE_W - 12}" y="82">tx {e(short_hex(p.tx_hash))}</text></a>'
        )
    out.append("</g>")
    return "".join(out)


def _stub(box: Box) -> str:
    e = escape
    owner = box.piece.id if box.piece else 0
    return (
        f'<g class="stub {box.kind}" data-kind="{box.kind}" data-for="{owner}" '
        f'data-hidden="{box.hidden}" transform="translate({box.x:.1f},{box.y:.1f})">'
        f'<a href="{e(box.href)}"><rect width="{box.width}" height="{box.height}" rx="15"/>'
        f'<text x="14" y="19.5">{e(box.label)}</text></a></g>'
    )


def _edge(parent: Box, child: Box) -> str:
    x1 = parent.x + parent.width
    y1 = parent.y + parent.height / 2
    x2 = child.x
    y2 = child.y + child.height / 2
    xm = x1 + COLUMN_GAP / 2
    dashed = " stub-edge" if child.kind != "piece" else ""
    return f'<path class="edge{dashed}" d="M{x1:.1f} {y1:.1f}H{xm:.1f}V{y2:.1f}H{x2:.1f}"/>'


def svg(win: Window, urls: Urls | None = None) -> Markup:
    """The window as an inline SVG element (escaped here: names and labels are text)."""
    urls = urls or Urls()
    edges: list[str] = []
    nodes: list[str] = []
    stack = [win.root]
    while stack:
        box = stack.pop()
        if box.kind == "piece":
            nodes.append(_node(box, win.focus, urls))
        else:
            nodes.append(_stub(box))
        for child in box.children:
            edges.append(_edge(box, child))
        stack.extend(reversed(box.children))
    w, h = round(win.width), round(win.height)
    return Markup(
        f'<svg class="tree" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="group" aria-label="Lineage tree of payable '
        f'{win.tree.payable_id} from piece {win.focus.id}" data-width="{w}" data-height="{h}">'
        f'<g class="edges">{"".join(edges)}</g><g class="nodes">{"".join(nodes)}</g></svg>'
    )
