"""The console's pages (issue 12, SPEC §4): server-rendered HTML for auditors, risk officers
and members, signed in with a session cookie (:mod:`backend.api.routes.console_session`).

Every page reads through the same services and visibility rules as the JSON API (AP-2): a
member opening another's payable, piece or transaction gets the 404 page the API's 404 is,
a page its roles do not open the 403 page. Answers pass through the API's response models
(``backend.schemas``) before they are drawn, so a page shows exactly what the API answers.
The console only reads; its one form that changes anything is sign-out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from web3.exceptions import TransactionNotFound

from backend import audit_anchors
from backend import console_sessions as sessions
from backend.api.console_http import (
    CONSOLE,
    COOKIE,
    ConsoleRoute,
    SignInNeeded,
    csrf_of,
    html,
    viewer_of,
)
from backend.api.deps import ContextDep, decode_cursor, encode_cursor
from backend.api.problems import status_of
from backend.auth import Caller
from backend.console import PieceNotInTree, fmt
from backend.console.pages import EVENT_FILTERS, LOG_FILTERS
from backend.console.urls import DEFAULT_LEVELS
from backend.console_sessions import Signed
from backend.errors import DomainError, Forbidden, Invalid, NotFound, RateLimited
from backend.models import MemberProfile
from backend.schemas.approvals import ApprovalPublic
from backend.schemas.audit import (
    AuditRecordPublic,
    AuditVerificationPublic,
    EventPublic,
    ExposurePublic,
    ReconciliationPublic,
)
from backend.schemas.claims import ClaimEventPublic, ClaimPublic
from backend.schemas.common import Id
from backend.schemas.financing import FinancingPublic
from backend.schemas.intents import IntentPublic
from backend.schemas.members import MemberPublic
from backend.schemas.payables import PayablePublic
from backend.services import (
    approvals,
    audit_records,
    claims,
    events_feed,
    exposure,
    financing,
    lineage,
    members,
    payables,
)
from backend.services import intents as intents_service
from backend.services import reconciliation as reconciling
from backend.services.lists import chain_position
from backend.services.visibility import tree_parties_include
from ledger.roles import Role

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

#: Rows a console list shows per page.
PAGE = 50
#: A member's pieces and requests on its home page.
HOME_ROWS = 200
#: The newest payables the home page lists.
HOME_PAYABLES = 100


async def signed_in(request: Request, ctx: ContextDep) -> Signed:
    """The session behind the cookie (else: on to the sign-in form), rate-limited as its
    member is on the API (one bucket for all the member's keys)."""
    signed = await sessions.session_caller(ctx.engine, request.cookies.get(COOKIE))
    if signed is None:
        raise SignInNeeded
    request.state.console_session = signed
    wait = await ctx.limiter.take(signed.caller.address)  # per member, as the API (all its keys)
    if wait:
        raise RateLimited(wait)
    async with ctx.sessions() as session:
        profile = await session.get(MemberProfile, signed.caller.address)
    request.state.console_name = profile.name if profile is not None else None
    return signed


SignedIn = Annotated[Signed, Depends(signed_in)]


async def get_session(ctx: ContextDep) -> Any:
    async with ctx.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def api_json(model: type[BaseModel], value: Any) -> Any:
    """``value`` as the API serialises it (checksummed addresses, ISO times)."""
    return model.model_validate(value).model_dump(mode="json")


def page_args(request: Request) -> dict[str, Any]:
    return {"viewer": viewer_of(request), "csrf_token": csrf_of(request)}


def _cursor(cursor: str | None) -> Any:
    return decode_cursor(cursor) if cursor else None


def _auditor(caller: Caller) -> None:
    if not caller.has(Role.AUDITOR, Role.OPERATOR):
        raise Forbidden("this page is for auditors and the operator", code="role_missing")


# -- a member's own page -------------------------------------------------------------------


async def awaiting_signature(
    session: AsyncSession, caller: Caller, chain_time: int
) -> list[dict[str, Any]]:
    """The caller's open intents (not past their deadline), listed by the service
    ``GET /v1/intents`` lists through and as it answers them (only the member's own)."""
    return [
        api_json(IntentPublic, i)
        for i in await intents_service.list_intents(session, caller, chain_time, HOME_ROWS)
    ]


async def awaiting_checkers(session: AsyncSession, caller: Caller) -> list[dict[str, Any]]:
    """The member's writes held for a checker under dual control (``GET
    /v1/approvals?status=pending``, through the same service)."""
    return [
        api_json(ApprovalPublic, a)
        for a in await approvals.list_approvals(session, caller, "pending", None, HOME_ROWS)
    ]


@router.get("")
async def home(
    request: Request, signed: SignedIn, session: SessionDep, ctx: ContextDep
) -> Response:
    """The member's pieces, its open financing requests, intents awaiting its signature,
    writes awaiting its checkers (dual control) and the newest payables it may see (each
    linked to its tree where it may open the whole)."""
    caller = signed.caller
    me = await members.member_view(session, caller.address) or {
        "address": caller.address,
        "name": None,
        "roles": sorted(r.value for r in caller.roles),
        "status": caller.status,
        "kyc_expires_at": None,
    }
    held = await claims.list_claims(session, caller, None, HOME_ROWS, holder=caller.address)
    requests: dict[int, dict[str, Any]] = {}
    for role in ("applicant", "financier"):
        for item in await financing.list_financings(
            session, caller, None, HOME_ROWS, status="applied", role=role
        ):
            requests[item["id"]] = item
    intents = await awaiting_signature(session, caller, await ctx.gateway.chain_time())
    checks = await awaiting_checkers(session, caller)
    listed = await payables.list_payables(session, caller, None, HOME_PAYABLES, newest_first=True)
    shown = [
        {
            **api_json(PayablePublic, p),
            "tree_visible": tree_parties_include(
                caller, p["obligor"], p["supplier"], p["clearing_agent"]
            ),
        }
        for p in listed
    ]
    people = await lineage.people(
        session,
        [caller.address]
        + [c["obligor"] for c in held if c.get("obligor")]
        + [f[k] for f in requests.values() for k in ("applicant", "financier")]
        + [p[k] for p in listed for k in ("obligor", "supplier")]
        + [a for i in intents for a in _addresses(i["action"]["args"])]
        + [a for c in checks for a in _addresses(c["arguments"])],
    )
    return html(
        CONSOLE.home_page(
            api_json(MemberPublic, me),
            claims=[api_json(ClaimPublic, c) for c in held],
            financing=[api_json(FinancingPublic, f) for f in sorted(requests.values(), key=_id)],
            intents=intents,
            approvals=checks,
            payables=shown,
            members=people,
            **page_args(request),
        )
    )


def _addresses(args: dict[str, Any]) -> list[str]:
    """The address-valued arguments of an intent's call (its counterparties)."""
    return [v for v in args.values() if fmt.is_address(v)]


def _id(item: dict[str, Any]) -> int:
    return int(item["id"])


# -- the lineage tree, a piece, a transaction -----------------------------------------------


def trees(request: Request) -> lineage.LineageCache:
    """This worker's cache of recently drawn trees (clicking through a large tree refocuses
    and pages the same tree)."""
    cache: lineage.LineageCache | None = getattr(request.app.state, "console_trees", None)
    if cache is None:
        cache = request.app.state.console_trees = lineage.LineageCache()
    return cache


@router.get("/payables/{payable_id}")
async def payable_tree(
    request: Request,
    signed: SignedIn,
    session: SessionDep,
    payable_id: Annotated[Id, Path()],
    focus: Annotated[Id | None, Query()] = None,
    levels: Annotated[int, Query(ge=1, le=8)] = DEFAULT_LEVELS,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The payable's lineage tree as a picture (a window of it around ``focus``)."""
    tree, holders = await lineage.lineage(session, signed.caller, payable_id, trees(request))
    payable = await payables.get_payable(session, signed.caller, payable_id)
    people = {
        **holders,
        **await lineage.people(
            session, [payable["obligor"], payable["supplier"], payable.get("clearing_agent")]
        ),
    }
    try:
        content = CONSOLE.tree_page(
            tree,
            payable=api_json(PayablePublic, payable),
            focus=focus,
            levels=levels,
            page=page,
            members=people,
            **page_args(request),
        )
    except PieceNotInTree as exc:
        raise NotFound(
            f"payable {payable_id} has no piece {focus}", code="claim_not_found"
        ) from exc
    return html(content)


@router.get("/claims/{claim_id}")
async def claim(
    request: Request,
    signed: SignedIn,
    session: SessionDep,
    claim_id: Annotated[Id, Path()],
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """A piece and its history of events."""
    piece = await claims.get_claim(session, signed.caller, claim_id)
    history = await claims.history(session, signed.caller, claim_id, _cursor(cursor), PAGE)
    next_cursor = encode_cursor(chain_position(history[-1])) if len(history) == PAGE else None
    people = await lineage.people(
        session, [piece["holder"], piece.get("obligor"), *_event_accounts(history)]
    )
    return html(
        CONSOLE.claim_page(
            api_json(ClaimPublic, piece),
            [api_json(ClaimEventPublic, e) for e in history],
            next_cursor=next_cursor,
            members=people,
            **page_args(request),
        )
    )


def _event_accounts(events: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for e in events:
        for value in (e.get("args") or {}).values():
            if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
                found.append(value)
    return found


@router.get("/tx/{tx_hash}")
async def transaction(
    request: Request,
    signed: SignedIn,
    session: SessionDep,
    ctx: ContextDep,
    tx_hash: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")],
) -> Response:
    """The events a transaction emitted that the member may read (404 when none)."""
    try:
        receipt = await ctx.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound as exc:
        raise NotFound("no such transaction", code="transaction_not_found") from exc
    events = await events_feed.transaction_events(
        session, signed.caller, tx_hash, int(receipt["blockNumber"])
    )
    if not events:
        raise NotFound("no such transaction", code="transaction_not_found")
    return html(
        CONSOLE.tx_page(
            tx_hash.lower(),
            [api_json(EventPublic, e) for e in events],
            members=await lineage.people(session, _event_accounts(events)),
            **page_args(request),
        )
    )


# -- exposure, events, reconciliation, the audit log ----------------------------------------


@router.get("/exposure")
async def exposure_page(request: Request, signed: SignedIn, session: SessionDep) -> Response:
    """Exposure per obligor and per financier, as charts and tables."""
    rows = await exposure.book(session, signed.caller, 200)
    people = await lineage.people(
        session, [r["obligor"] for r in rows] + [r["financier"] for r in rows if r["financier"]]
    )
    return html(
        CONSOLE.exposure_page(
            [api_json(ExposurePublic, r) for r in rows], members=people, **page_args(request)
        )
    )


def _time(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{name} is not an ISO 8601 time", code="invalid_request") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(name: str, value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise Invalid(f"{name} must be a whole number", code="invalid_request")
    return int(value)


def event_filter(raw: dict[str, str]) -> events_feed.EventFilter:
    """The events form's fields as the feed's filter (:class:`Invalid` for a bad one)."""
    invoice = raw.get("invoice_id") or None
    if invoice is not None and not (len(invoice) == 66 and invoice.startswith("0x")):
        raise Invalid("invoice_id is a 32-byte hex id", code="invalid_request")
    account = raw.get("account") or None
    if account is not None:
        try:
            account = to_checksum_address(account)
        except ValueError as exc:
            raise Invalid("account is not an address", code="invalid_request") from exc
    for name in ("event", "contract"):
        value = raw.get(name) or ""
        if value and not (value[0].isalpha() and value.replace("_", "").isalnum()):
            raise Invalid(f"{name} is a name", code="invalid_request")
    return events_feed.EventFilter(
        event=raw.get("event") or None,
        contract=raw.get("contract") or None,
        claim_id=_int("claim_id", raw.get("claim_id")),
        payable_id=_int("payable_id", raw.get("payable_id")),
        financing_id=_int("financing_id", raw.get("financing_id")),
        invoice_id=invoice.lower() if invoice else None,
        account=account,
        from_block=_int("from_block", raw.get("from_block")),
        to_block=_int("to_block", raw.get("to_block")),
        from_time=_time("from_time", raw.get("from_time")),
        to_time=_time("to_time", raw.get("to_time")),
    )


@router.get("/events")
async def events_page(request: Request, signed: SignedIn, session: SessionDep) -> Response:
    """Recent events under the feed's filters (a member without one: its own account's)."""
    caller = signed.caller
    raw = {k: v.strip() for k, v in request.query_params.items() if k in EVENT_FILTERS}
    scoped = any(
        raw.get(k) for k in ("claim_id", "payable_id", "financing_id", "invoice_id", "account")
    )
    if not caller.sees_everything and not scoped:
        raw["account"] = caller.address
    cursor = request.query_params.get("cursor")
    items: list[dict[str, Any]] = []
    error = None
    status = 200
    next_cursor = None
    try:
        f = event_filter(raw)
        items = await events_feed.list_events(
            session, caller, f, _cursor(cursor) if cursor and len(cursor) < 500 else None, PAGE
        )
        if len(items) == PAGE:
            next_cursor = encode_cursor(chain_position(items[-1]))
    except (Invalid, Forbidden, NotFound) as exc:
        error = exc.detail
        status = status_of(exc)
    people = await lineage.people(session, _event_accounts(items))
    return html(
        CONSOLE.events_page(
            [api_json(EventPublic, e) for e in items],
            filters=raw,
            next_cursor=next_cursor,
            error=error,
            members=people,
            **page_args(request),
        ),
        status,
    )


@router.get("/reconciliation")
async def reconciliation_page(request: Request, signed: SignedIn, ctx: ContextDep) -> Response:
    """Does the mirror equal the chain: checked now, against the node."""
    _auditor(signed.caller)
    checked_at = datetime.now(UTC)
    try:
        answer = await reconciling.reconciliation(ctx.engine, ctx.settings.rpc_url, 100)
    except DomainError as exc:
        return html(
            CONSOLE.reconciliation_page(
                None, checked_at=checked_at, error=exc.detail, **page_args(request)
            ),
            503,
        )
    return html(
        CONSOLE.reconciliation_page(
            api_json(ReconciliationPublic, answer), checked_at=checked_at, **page_args(request)
        )
    )


@router.get("/audit-log")
async def audit_log_page(
    request: Request, signed: SignedIn, session: SessionDep, ctx: ContextDep
) -> Response:
    """The API's audit log under its filters, and the verification of its hash chain."""
    _auditor(signed.caller)
    raw = {k: v.strip() for k, v in request.query_params.items() if k in LOG_FILTERS and v}
    cursor = request.query_params.get("cursor")
    method = raw.get("method")
    if method is not None and method not in ("POST", "PUT", "PATCH", "DELETE"):
        raise Invalid("method is POST, PUT, PATCH or DELETE", code="invalid_request")
    f = audit_records.LogFilter(
        raw.get("member"),
        method,
        _int("status", raw.get("status")),
        raw.get("code"),
        _time("from_time", raw.get("from_time")),
        _time("to_time", raw.get("to_time")),
    )
    records = await audit_records.list_log(
        session, f, _cursor(cursor) if cursor and len(cursor) < 500 else None, PAGE
    )
    next_cursor = encode_cursor(records[-1]["seq"]) if len(records) == PAGE else None
    verification = await audit_anchors.verification(ctx.engine, ctx.w3, ctx.deployment)
    return html(
        CONSOLE.audit_log_page(
            [api_json(AuditRecordPublic, r) for r in records],
            verification=api_json(AuditVerificationPublic, verification),
            filters=raw,
            next_cursor=next_cursor,
            **page_args(request),
        )
    )
