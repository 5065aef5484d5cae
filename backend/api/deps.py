"""Dependencies of the routes, as ``Annotated`` aliases: the context, the services' ports, a
read session, the caller, the write runner (commands under an Idempotency-Key), pagination."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend import audit_log
from backend.api.audit_state import known_caller, request_audit
from backend.api.problems import stored_refusal
from backend.auth import Caller, authenticate, caller_of_key
from backend.context import AppContext
from backend.errors import BadRequest, Forbidden, Invalid, RateLimited
from backend.idempotency import Claimed, Finishing, Statements, StoredResponse, request_digest
from backend.ports import Ports, TxJournal, WriteContext
from backend.schemas.approvals import ApprovalPublic
from backend.services import approvals, auto_approval, commands
from backend.services.commands import Command
from ledger.roles import Role

#: The field of an answer that carries a new API key: never stored, never replayed.
SECRET_FIELD = "api_key"
#: Methods whose caller may come from the worker's :class:`~backend.auth.CallerCache`.
READS = frozenset({"GET", "HEAD"})
#: Largest page a list returns.
MAX_PAGE = 200


# Every dependency is ``async def``: FastAPI runs a plain ``def`` one in a worker thread,
# a thread hop and its wake-ups on every request for what is an attribute read.
async def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.context
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # The context from the request itself, not through ``ContextDep``: FastAPI solves every
    # sub-dependency afresh on each request (a recursive solve, cached value or not).
    ctx: AppContext = request.app.state.context
    async with ctx.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def read_session(request: Request) -> AsyncSession:
    """A session for the busiest reads to open in the route (``async with
    read_session(request) as session``) rather than take as ``SessionDep``: FastAPI runs a
    generator dependency inside an exit stack of its own with a shielded exit, which cost a
    piece's read more than opening and closing the session does."""
    ctx: AppContext = request.app.state.context
    return ctx.sessions()


async def get_ports(ctx: ContextDep) -> Ports:
    return ctx.ports


PortsDep = Annotated[Ports, Depends(get_ports)]


async def get_caller(request: Request) -> Caller:
    # The context and the Authorization header read from the request, not declared as
    # sub-dependencies (``ContextDep``, ``Header``, out of the OpenAPI document anyway):
    # FastAPI solves each afresh on every request, and every request has a caller.
    ctx: AppContext = request.app.state.context
    authorization = request.headers.get("authorization")
    # A connection of its own, back in the pool at once rather than staying with the request
    # while it waits (a duplicate waiting for its Idempotency-Key, a write waiting for its
    # receipt), so a burst of requests cannot exhaust the pool.
    known = known_caller(request)
    if isinstance(known, Caller):
        caller = known  # authenticated by the guard middleware, before the body was read
    else:
        reading = request.method in READS
        cached = ctx.callers.get(authorization) if reading else None
        if cached is not None:
            caller = cached
        else:
            generation = ctx.callers.generation
            async with ctx.engine.connect() as conn:
                caller = await authenticate(conn, authorization)
            if reading:
                ctx.callers.put(authorization, caller, generation)
    audit = request_audit(request)
    if audit is not None:
        audit.member = caller.address
        audit.api_key_id = caller.key_id
    wait = await ctx.limiter.take(caller.address)  # per member: more keys are not more requests
    if wait:
        raise RateLimited(wait)
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def require(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency admitting callers that hold one of ``roles`` (on chain)."""
    names = " or ".join(r.value for r in roles)

    async def check(caller: CurrentCaller) -> Caller:
        if not caller.has(*roles):
            raise Forbidden(f"this needs the {names} role", code="role_missing")
        return caller

    return check


def writer(*roles: Role) -> Any:
    """``Depends`` for a write route: the caller must hold one of ``roles``; auditors never
    write (AP-2)."""

    async def check(caller: CurrentCaller) -> Caller:
        if caller.is_auditor and not caller.has(*(r for r in roles if r != Role.AUDITOR)):
            raise Forbidden("auditors read; they change nothing", code="auditor_read_only")
        if roles and not caller.has(*roles):
            names = " or ".join(r.value for r in roles)
            raise Forbidden(f"this needs the {names} role", code="role_missing")
        return caller

    return Depends(check)


def _write_context(ctx: AppContext, request: Request, caller: Caller) -> WriteContext:
    """The write's context, sharing the audit record's list of broadcast transactions; each
    is kept in ``audit_pending`` before it leaves (see :mod:`backend.audit_log`)."""
    audit = request_audit(request)
    if audit is None:
        return WriteContext(caller)

    async def keep_citations() -> None:
        await audit_log.mark_pending(ctx.engine, audit.request_id, audit.entry(0))

    async def keep_citations_in(conn: AsyncConnection) -> None:
        await audit_log.keep_pending(conn, audit.request_id, audit.entry(0))

    return WriteContext(
        caller,
        request_id=audit.request_id,
        tx_hashes=audit.txs,
        before_broadcast=keep_citations,
        cite_in=keep_citations_in,
        engine=ctx.engine,
    )


def _finishing(request: Request) -> Finishing | None:
    """The request's audit record, appended in the transaction that stores a keyed write's
    answer (one commit for both); the middleware then appends none of its own."""
    audit = request_audit(request)
    if audit is None:
        return None

    async def within(conn: AsyncConnection, status: int, body: Any) -> None:
        if status >= 400 and isinstance(body, dict):
            audit.code = body.get("code")
        await audit_log.append_in(conn, audit.entry(status), audit.request_id)

    def committed() -> None:
        audit.recorded = True

    return Finishing(within, committed)


@dataclass
class Writes:
    """Runs a write, a :class:`~backend.services.commands.Command`, under the request's
    Idempotency-Key (see :mod:`backend.idempotency`)."""

    ctx: AppContext
    request: Request
    key: str | None

    async def run(self, caller: Caller, command: Command) -> JSONResponse:
        """Run ``command`` once for this key; its answer (serialised through the command's
        answer model) is stored, so a replay returns the very same bytes. Under dual control
        a business write is held for a checker first (``202 awaiting_approval``)."""
        if self.key is None:
            raise BadRequest(
                "this request needs an Idempotency-Key header", code="idempotency_key_required"
            )
        body = await self.request.body()
        request = (self.request.method, self.request.url.path, body)
        if await approvals.needs_approval(self.ctx.engine, caller, command):
            digest = request_digest(*request)
            approval = await approvals.hold(
                self.ctx.sessions, caller, self.key, request, digest, command
            )
            if approval is not None and approval["status"] == "pending":
                shown = ApprovalPublic.model_validate(approval).model_dump(mode="json")
                return JSONResponse(
                    {"status": "awaiting_approval", "approval": shown}, status_code=202
                )
        return await self.run_keyed(caller, self.key, request, command)

    async def run_keyed(
        self, caller: Caller, key: str, request: tuple[str, str, bytes], command: Command
    ) -> JSONResponse:
        """Run ``command`` as ``caller`` under its Idempotency-Key ``key`` for ``request``
        (``(method, path, body)``): also a maker's write a checker approved."""
        write = _write_context(self.ctx, self.request, caller)
        write.idempotency_key = key
        ports = self.ctx.ports

        secret: dict[str, str] = {}

        async def execute(claimed: Claimed, journal: TxJournal) -> tuple[int, Any]:
            # A resumed write runs the command stored with the key, as its caller.
            write.journal = journal
            answer = await commands.execute(ports, write, claimed.command)
            if write.mirror_behind and isinstance(answer, dict):
                # Done on chain; the mirror had not shown it yet (reads may lag).
                answer["mirror_behind"] = True
            return status_of_command(claimed.command), _withhold_secret(answer, secret)

        path = request[1]
        audit = request_audit(self.request)
        request_id = audit.request_id if audit is not None else None
        stored = await self.ctx.idempotency.run(
            caller.address,
            key,
            request,
            command,
            caller.key_id,
            execute,
            stored_refusal(path, request_id),
            self.ctx.gateway.canonical,
            _finishing(self.request),
        )
        return self._respond(stored, secret)

    async def resume(
        self,
        member: str,
        key: str,
        first: Statements | None = None,
        presenter: Caller | None = None,
        signed_intents: Mapping[str, Any] | None = None,
    ) -> JSONResponse:
        """Run the write waiting under ``member``'s key ``key`` to its end (a ``self``
        member's signature came), as the caller that made it; or replay its answer.
        ``first`` runs in the transaction that takes the key up (the signature kept).
        ``presenter``: this request's caller, looked up moments ago; when it presented the
        API key that made the write, it is that key's caller (the same lookup: the key, the
        member's status and roles, dual control) and is not looked up again.
        ``signed_intents``: the intents ``first`` signed, as it left them (filled by the time
        the write runs; see :attr:`~backend.ports.WriteContext.signed_intents`)."""
        ctx = self.ctx

        async def execute(claimed: Claimed, journal: TxJournal) -> tuple[int, Any]:
            if claimed.caller_key_id == auto_approval.AUTO_KEY_ID:
                # The financier's own policy prepared it: the financier acts.
                caller = auto_approval.system_caller(member)
            elif presenter is not None and presenter.key_id == claimed.caller_key_id:
                caller = presenter
            else:
                async with ctx.engine.connect() as conn:
                    caller = await caller_of_key(conn, claimed.caller_key_id)
            write = _write_context(ctx, self.request, caller)
            write.idempotency_key = key
            write.journal = journal
            if signed_intents is not None:
                write.signed_intents = signed_intents
            answer = await commands.execute(ctx.ports, write, claimed.command)
            if claimed.caller_key_id == auto_approval.AUTO_KEY_ID and isinstance(answer, dict):
                answer = await auto_approval.signed(ctx.ports, answer)
            if write.mirror_behind and isinstance(answer, dict):
                answer["mirror_behind"] = True
            return status_of_command(claimed.command), _withhold_secret(answer, secret)

        secret: dict[str, str] = {}
        path = self.request.url.path
        audit = request_audit(self.request)
        refusal = stored_refusal(path, audit.request_id if audit is not None else None)
        stored = await ctx.idempotency.resume(
            member, key, execute, refusal, path, _finishing(self.request), first
        )
        return self._respond(stored, secret)

    def _respond(
        self, stored: StoredResponse, secret: dict[str, str] | None = None
    ) -> JSONResponse:
        """The answer of a keyed write; ``secret`` (a new API key) goes into the first answer
        only, never into the stored one a replay gives."""
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
        if stored.rerun is not None:
            headers["Idempotent-Rerun"] = stored.rerun
        if isinstance(stored.body, dict) and stored.body.get("mirror_behind"):
            headers["Mirror-Behind"] = "true"
        audit = request_audit(self.request)
        if audit is not None:
            # A replay cites the transactions of the write it answers for.
            audit.txs.extend(h for h in stored.tx_hashes if h not in audit.txs)
        body = stored.body
        if secret and not stored.replayed and isinstance(body, dict):
            body = {**body, **secret}
        if stored.status >= 400:
            if audit is not None and isinstance(stored.body, dict):
                audit.code = stored.body.get("code")
            return JSONResponse(
                stored.body,
                status_code=stored.status,
                media_type="application/problem+json",
                headers=headers,
            )
        return JSONResponse(body, status_code=stored.status, headers=headers)

    async def run_once(self, caller: Caller, command: Command) -> Any:
        """Run ``command`` without an Idempotency-Key (a PUT or DELETE that is idempotent by
        itself); its answer as JSON."""
        write = _write_context(self.ctx, self.request, caller)
        return await commands.execute(self.ctx.ports, write, command)


def _withhold_secret(answer: Any, secret: dict[str, str]) -> Any:
    """The answer to store: a new API key is shown once, so the stored (replayable) answer
    holds none; the key is kept in ``secret`` for the first answer."""
    if isinstance(answer, dict) and isinstance(answer.get(SECRET_FIELD), str):
        secret[SECRET_FIELD] = answer[SECRET_FIELD]
        return {**answer, SECRET_FIELD: None}
    return answer


def status_of_command(command: Command) -> int:
    """A write that creates an object answers 201, any other 200."""
    return 201 if commands.spec(command.operation).creates else 200


async def get_writes(
    ctx: ContextDep,
    request: Request,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="Unique per intended effect: a retry with the same key and body "
            "returns the first response and causes no second transaction.",
        ),
    ],
) -> Writes:
    return Writes(ctx, request, idempotency_key)


WritesDep = Annotated[Writes, Depends(get_writes)]


async def get_unkeyed_writes(ctx: ContextDep, request: Request) -> Writes:
    return Writes(ctx, request, None)


#: Writes of routes that take no Idempotency-Key (``Writes.run_once``).
UnkeyedWritesDep = Annotated[Writes, Depends(get_unkeyed_writes)]


@dataclass(frozen=True)
class Page:
    """``limit`` rows after ``cursor`` (the last key of the previous page, opaque)."""

    limit: int
    after: Any

    def next_cursor(self, rows: list[Any], key: Callable[[Any], Any]) -> str | None:
        if len(rows) < self.limit or not rows:
            return None
        return encode_cursor(key(rows[-1]))


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("the cursor is not one this API gave out", code="cursor_invalid") from exc


async def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the page before.")
    ] = None,
) -> Page:
    return Page(limit, decode_cursor(cursor) if cursor else None)


PageDep = Annotated[Page, Depends(get_page)]
