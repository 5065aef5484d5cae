"""The console's pages: plain data shaped like the API's JSON in, HTML out.

:class:`Console` holds the Jinja2 environment (autoescaped, strict about undefined names) and
renders each page. It reads nothing and decides no visibility: the caller (the routes,
``backend/api/routes/console.py``) fetches what the signed-in member may see through the
services and passes it in.

Every page takes, besides its own data:

- ``viewer``: who is signed in, ``{address, name, roles}`` (None on the sign-in page);
- ``members``: address → ``{name, custody}`` for names shown instead of bare addresses;
- ``csrf_token``: put in the sign-out form (and the sign-in form) when given.

Pages carry no inline script or style (``style=`` attributes included): the CSS and JS are
static files, so the app can send ``Content-Security-Policy: default-src 'self'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any
from urllib.parse import urlencode

import jinja2

from backend.console import charts, fmt
from backend.console import tree as treemod
from backend.console.events import KNOWN_EVENTS, event_row
from backend.console.urls import DEFAULT_LEVELS, Urls

Data = Mapping[str, Any]
Members = Mapping[str, Mapping[str, Any]]

#: The event filters of ``GET /v1/audit/events`` the events page offers, in form order.
EVENT_FILTERS = (
    "event",
    "contract",
    "claim_id",
    "payable_id",
    "financing_id",
    "invoice_id",
    "account",
    "from_block",
    "to_block",
    "from_time",
    "to_time",
)
#: The audit log's filters (``GET /v1/audit/log``).
LOG_FILTERS = ("member", "method", "status", "code", "from_time", "to_time")


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str
    label: str
    href: str


def _members(members: Members | None) -> dict[str, Mapping[str, Any]]:
    return {k.lower(): v for k, v in (members or {}).items()}


def _amount(row: Data, key: str) -> int | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key!r} must be an integer number of fen, not {value!r}")
    return value


class Console:
    """Renders the console's pages. ``urls`` says where its links point; ``zone`` is the time
    zone times are shown in (UTC by default, labelled on every time)."""

    def __init__(self, urls: Urls | None = None, zone: tzinfo = UTC) -> None:
        self.urls = urls or Urls()
        self.zone = zone
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("backend.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            yuan=fmt.yuan,
            short=fmt.short_hex,
            when=lambda v: fmt.when(v, self.zone),
            clip=fmt.clip,
            percent=fmt.percent,
        )
        self.env.globals.update(urls=self.urls, is_hash=fmt.is_hash, is_address=fmt.is_address)

    # -- common ------------------------------------------------------------------------------

    def nav(self, viewer: Data | None) -> list[NavItem]:
        """The navigation a viewer's roles call for (the routes still check each page)."""
        if viewer is None:
            return []
        roles = set(viewer.get("roles") or ())
        u = self.urls
        items: list[NavItem] = []
        if roles - {"auditor"}:
            items.append(NavItem("home", "My pieces", u.home()))
        else:
            items.append(NavItem("home", "Payables", u.home()))
        if roles & {"auditor", "operator", "core_enterprise", "financier"}:
            items.append(NavItem("exposure", "Exposure", u.exposure()))
        items.append(NavItem("events", "Events", u.events()))
        if roles & {"auditor", "operator"}:
            items.append(NavItem("reconciliation", "Reconciliation", u.reconciliation()))
            items.append(NavItem("audit", "Audit log", u.audit_log()))
        return items

    def _render(
        self,
        template: str,
        *,
        viewer: Data | None,
        members: Members | None,
        csrf_token: str | None,
        section: str,
        title: str,
        **context: Any,
    ) -> str:
        people = _members(members)

        def name(address: str | None) -> str | None:
            return fmt.member_name(address, people)

        def custody_of(address: str | None) -> str | None:
            """``self`` or ``hosted`` as the tree draws it; None when not known."""
            value = (people.get(address.lower()) or {}).get("custody") if address else None
            return value if value in ("self", "hosted") else None

        return self.env.get_template(template).render(
            viewer=viewer,
            nav=self.nav(viewer),
            section=section,
            title=title,
            csrf_token=csrf_token,
            name=name,
            custody_of=custody_of,
            **context,
        )

    # -- pages -------------------------------------------------------------------------------

    def tree_page(
        self,
        tree: Data,
        *,
        payable: Data | None = None,
        focus: int | None = None,
        levels: int = DEFAULT_LEVELS,
        page: int = 1,
        page_size: int = treemod.PAGE_SIZE,
        max_nodes: int = treemod.MAX_NODES,
        viewer: Data | None = None,
        members: Members | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """A payable's lineage tree (``GET /v1/payables/{id}/tree``'s answer, nodes optionally
        with ``holder_name``, ``custody``, ``tx_hash``, ``financed``, ``frozen``) drawn as a
        window around ``focus``, with the same pieces as a table. ``payable`` is the
        ``GET /v1/payables/{id}`` answer, for the header. Raises
        :class:`~backend.console.tree.PieceNotInTree` for a focus outside the tree."""
        people = _members(members)
        data = treemod.read_tree(tree, people)
        win = treemod.window(
            data,
            focus,
            levels=levels,
            page=page,
            page_size=page_size,
            max_nodes=max_nodes,
            urls=self.urls,
        )
        ancestors = data.ancestors(win.focus)
        if len(ancestors) > 6:
            crumbs: list[treemod.Piece | None] = [*ancestors[:2], None, *ancestors[-3:]]
        else:
            crumbs = list(ancestors)
        return self._render(
            "tree.html",
            viewer=viewer,
            members=members,
            csrf_token=csrf_token,
            section="tree",
            title=f"Payable #{data.payable_id} — lineage",
            payable=payable,
            tree=data,
            win=win,
            picture=treemod.svg(win, self.urls),
            totals=treemod.totals(data),
            crumbs=crumbs,
            hidden_ancestors=len(ancestors) - 5 if len(ancestors) > 6 else 0,
            statuses=treemod.STATUS_LABELS,
            symbols=treemod.STATUS_SYMBOLS,
            level_choices=list(range(1, treemod.MAX_LEVELS + 1)),
            describe=treemod.describe,
        )

    def claim_page(
        self,
        claim: Data,
        history: Sequence[Data],
        *,
        next_cursor: str | None = None,
        viewer: Data | None = None,
        members: Members | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """A piece (``GET /v1/claims/{id}``) and its history (``GET /v1/claims/{id}/history``
        items, oldest first)."""
        people = _members(members)
        rows = [event_row(e, self.urls, people, self.zone) for e in history]
        return self._render(
            "claim.html",
            viewer=viewer,
            members=members,
            csrf_token=csrf_token,
            section="tree",
            title=f"Piece #{claim['id']}",
            claim=claim,
            rows=rows,
            next_href=self.urls.claim(int(claim["id"])) + "?cursor=" + next_cursor
            if next_cursor
            else None,
        )

    def tx_page(
        self,
        tx_hash: str,
        events: Sequence[Data],
        *,
        viewer: Data | None = None,
        members: Members | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """A transaction: the events it emitted (``EventPublic`` items) that the viewer may
        see."""
        people = _members(members)
        rows = [event_row(e, self.urls, people, self.zone) for e in events]
        return self._render(
            "tx.html",
            viewer=viewer,
            members=members,
            csrf_token=csrf_token,
            section="events",
            title=f"Transaction {fmt.short_hex(tx_hash)}",
            tx_hash=tx_hash,
            rows=rows,
            block=rows[0].block_number if rows else None,
            time=rows[0].time if rows else None,
        )

    def exposure_page(
        self,
        exposures: Sequence[Data],
        *,
        viewer: Data | None = None,
        members: Members | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """Exposure rows (``GET /v1/audit/exposure`` items: obligors' aggregate rows and
        financiers' own rows) as charts and tables."""
        obligors, financiers = charts.read_exposure(exposures, _members(members))
        return self._render(
            "exposure.html",
            viewer=viewer,
            members=members,
            csrf_token=csrf_token,
            section="exposure",
            title="Exposure",
            obligors=[(o, charts.obligor_chart(o)) for o in obligors],
            financiers=[(f, charts.financier_chart(f)) for f in financiers],
        )

    def events_page(
        self,
        events: Sequence[Data],
        *,
        filters: Mapping[str, Any] | None = None,
        next_cursor: str | None = None,
        event_names: Sequence[str] | None = None,
        contracts: Sequence[str] | None = None,
        error: str | None = None,
        viewer: Data | None = None,
        members: Members | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """Recent events (``GET /v1/audit/events`` items) under a GET form of its filters
        (``filters``: what the request asked, shown back in the form; ``error``: why the
        filters were refused)."""
        people = _members(members)
        given = {k: ("" if v is None else str(v)) for k, v in (filters or {}).items()}
        values = {k: given.get(k, "") for k in EVENT_FILTERS}
        active = {k: v for k, v in values.items() if v}
        next_href = self.urls.events(**active, cursor=next_cursor) if next_cursor else None
        names = sorted(
            set(event_names) if event_names else {n for ns in KNOWN_EVENTS.values() for n in ns}
        )
        return self._render(
            "events.html",
            viewer=viewer,
            members=members,
            csrf_token=csrf_token,
            section="events",
            title="Events",
            rows=[event_row(e, self.urls, people, self.zone) for e in events],
            values=values,
            active=active,
            next_href=next_href,
            event_names=names,
            contracts=list(contracts) if contracts else sorted(KNOWN_EVENTS),
            error=error,
        )

    def reconciliation_page(
        self,
        reconciliation: Data | None,
        *,
        checked_at: Any = None,
        error: str | None = None,
        viewer: Data | None = None,
        members: Members | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """The mirror against the chain (``GET /v1/audit/reconciliation``) and when it was
        checked; ``error`` when it could not be (the node unavailable)."""
        return self._render(
            "reconciliation.html",
            viewer=viewer,
            members=members,
            csrf_token=csrf_token,
            section="reconciliation",
            title="Reconciliation",
            rec=reconciliation,
            checked_at=checked_at,
            error=error,
        )

    def audit_log_page(
        self,
        records: Sequence[Data],
        *,
        verification: Data | None = None,
        filters: Mapping[str, Any] | None = None,
        next_cursor: str | None = None,
        viewer: Data | None = None,
        members: Members | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """The API's audit log (``GET /v1/audit/log`` items) and, when given, its verification
        (``GET /v1/audit/log/verify``: ``ok``, ``records``, ``first_bad_seq``, ``reason``,
        and once anchors exist ``anchored_seq``, ``anchor_tx_hash``, ``anchored_at``)."""
        given = {k: ("" if v is None else str(v)) for k, v in (filters or {}).items()}
        values = {k: given.get(k, "") for k in LOG_FILTERS}
        active = {k: v for k, v in values.items() if v}
        next_href = None
        if next_cursor:
            next_href = self.urls.audit_log() + "?" + urlencode({**active, "cursor": next_cursor})
        bad = verification.get("first_bad_seq") if verification else None
        return self._render(
            "audit_log.html",
            viewer=viewer,
            members=members,
            csrf_token=csrf_token,
            section="audit",
            title="Audit log",
            records=records,
            verification=verification,
            first_bad=bad,
            anchored=verification.get("anchored_seq") if verification else None,
            values=values,
            active=active,
            next_href=next_href,
        )

    def home_page(
        self,
        member: Data,
        *,
        claims: Sequence[Data] = (),
        financing: Sequence[Data] = (),
        intents: Sequence[Data] = (),
        approvals: Sequence[Data] = (),
        payables: Sequence[Data] = (),
        viewer: Data | None = None,
        members: Members | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """A member's own page: ``member`` (``GET /v1/members/{address}``), the pieces it
        holds (``ClaimPublic`` items), its open financing requests (``FinancingPublic``, as
        applicant or financier), its intents awaiting signature (``GET /v1/intents``
        items: ``id``, ``expires_at``, ``digest``, ``action`` ``{contract, function,
        args}``, optionally plain ``amount`` and ``counterparty``) and the payables it may see
        (``PayablePublic`` items; ``tree_visible``: it may open the whole tree)."""
        address = str(member.get("address", ""))
        held = [c for c in claims if str(c.get("status")) != "cancelled"]
        total = sum(_amount(c, "amount") or 0 for c in held)
        locked = sum(_amount(c, "locked_amount") or 0 for c in held)
        rows = [self._intent_row(i) for i in intents]
        held_for_checkers = [self._approval_row(a) for a in approvals]
        requests = [
            {
                **f,
                "counterparty": f.get("financier")
                if str(f.get("applicant", "")).lower() == address.lower()
                else f.get("applicant"),
                "side": "applied to"
                if str(f.get("applicant", "")).lower() == address.lower()
                else "applied by",
            }
            for f in financing
        ]
        return self._render(
            "home.html",
            viewer=viewer,
            members=members,
            csrf_token=csrf_token,
            section="home",
            title=str(member.get("name") or "My pieces"),
            me=member,
            claims=claims,
            held_total=total,
            held_locked=locked,
            held_count=len(held),
            requests=requests,
            intents=rows,
            approvals=held_for_checkers,
            dual_control=bool(member.get("dual_control")) or bool(held_for_checkers),
            payables=payables,
        )

    @staticmethod
    def _approval_row(approval: Data) -> dict[str, Any]:
        args: Mapping[str, Any] = approval.get("arguments") or {}
        amount = next(
            (
                int(v)
                for k in ("amount", "face_value", "limit", "value")
                if isinstance(v := args.get(k), int | str)
                and not isinstance(v, bool)
                and str(v).isdigit()
            ),
            None,
        )
        counterparty = next(
            (
                args[k]
                for k in ("to", "buyer", "financier", "applicant", "supplier", "obligor")
                if fmt.is_address(args.get(k))
            ),
            None,
        )
        return {
            "id": str(approval.get("id", "")),
            "operation": str(approval.get("operation", "")),
            "request": f"{approval.get('method', '')} {approval.get('path', '')}",
            "amount": amount,
            "counterparty": counterparty,
            "maker": approval.get("maker_user_id") or approval.get("maker_key_id"),
            "created_at": approval.get("created_at"),
            "status": approval.get("status") or "pending",
        }

    @staticmethod
    def _intent_row(intent: Data) -> dict[str, Any]:
        action: Mapping[str, Any] = intent.get("action") or {}
        args: Mapping[str, Any] = action.get("args") or {}
        amount = intent.get("amount")
        if amount is None:
            for key in ("value", "amount", "faceValue", "limit", "exposureLimit"):
                candidate = args.get(key)
                if isinstance(candidate, int) and not isinstance(candidate, bool):
                    amount = candidate
                    break
                if isinstance(candidate, str) and candidate.isdigit():
                    amount = int(candidate)
                    break
        counterparty = intent.get("counterparty")
        if counterparty is None:
            for key in ("to", "financier", "supplier", "obligor", "applicant", "buyer"):
                if fmt.is_address(args.get(key)):
                    counterparty = args[key]
                    break
        function = str(action.get("function", ""))
        contract = str(action.get("contract", ""))
        return {
            "id": str(intent.get("id", "")),
            "action": f"{contract}.{function}" if contract else function,
            "function": function,
            "amount": amount if isinstance(amount, int) else None,
            "counterparty": counterparty,
            "expires_at": intent.get("expires_at"),
            "status": intent.get("status") or "open",
            "digest": str(intent.get("digest") or ""),
            "args": [(str(k), v) for k, v in args.items()],
        }

    def sign_in_page(
        self,
        *,
        error: str | None = None,
        next_path: str | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """The sign-in form: ``POST /console/sign-in`` with the field ``api_key`` (and
        ``next``, the page asked for, when given)."""
        return self._render(
            "sign_in.html",
            viewer=None,
            members=None,
            csrf_token=csrf_token,
            section="sign-in",
            title="Sign in",
            error=error,
            next_path=next_path if next_path and next_path.startswith(self.urls.base) else None,
        )

    def error_page(
        self,
        status: int,
        *,
        detail: str | None = None,
        viewer: Data | None = None,
        csrf_token: str | None = None,
    ) -> str:
        """404 (not found: also what a member gets for an object it may not see), 403 (not
        allowed: a page its roles do not open), 401 (signed out) or another status."""
        titles = {
            401: "Please sign in",
            403: "Not allowed",
            404: "Not found",
            503: "Unavailable",
        }
        return self._render(
            "error.html",
            viewer=viewer,
            members=None,
            csrf_token=csrf_token,
            section="error",
            title=titles.get(status, "Something went wrong"),
            status=status,
            detail=detail,
        )
