"""ASGI middleware: the request size limit and the audit record of every mutating request.

Pure ASGI (not ``BaseHTTPMiddleware``): the :class:`~backend.api.audit_state.RequestAudit`
put in the request's scope here is filled by the authentication dependency (who), the
exception handlers (the problem code) and the write (transactions mined, through its
:class:`~backend.ports.WriteContext`), and written by :func:`backend.audit_log.append` once
the response has started; a keyed write's own answer has its record appended already, in the
transaction that stored the answer (``RequestAudit.recorded``: one commit for both).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend import audit_log
from backend.api.audit_state import RequestAudit, attach, remember_caller
from backend.api.problems import problem
from backend.auth import authenticate
from backend.errors import PROBLEM_JSON, Unauthorized
from backend.ratelimit import RateLimiter

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNAUTHENTICATED_REFUSED = Counter(
    "tierflow_api_unauthenticated_refused",
    "Write attempts without a valid API key refused by the per-address limit (not audited "
    "one by one)",
)
#: Headers a request may carry once: two ``Idempotency-Key`` headers would run the request
#: under one and record the other (400 ``header_repeated``).
SINGLE = ("idempotency-key", "authorization", "content-type", "content-length")
log = logging.getLogger("tierflow.api")
access_log = logging.getLogger("tierflow.access")


class _TooLarge(Exception):
    pass


def problem_bytes(status: int, code: str, detail: str, request_id: str | None = None) -> bytes:
    extra = {"request_id": request_id} if request_id else None
    return json.dumps(problem(status, code, detail, None, extra)).encode()


class GuardMiddleware:
    """Refuses bodies over ``max_body`` bytes (413) and audits mutating requests."""

    def __init__(
        self, app: ASGIApp, *, max_body: int, engine_of: Any, anonymous_per_minute: int = 120
    ) -> None:
        self.anonymous_per_minute = anonymous_per_minute
        self._anonymous: RateLimiter | None = None
        self.app = app
        self.max_body = max_body
        self.engine_of = engine_of  # app → AsyncEngine, resolved per request (after startup)

    async def _refuse_early(
        self, scope: Scope, audit: RequestAudit, headers: dict[str, str]
    ) -> tuple[int, str, str] | None:
        """``(status, code, detail)`` of a request refused before its body is read: a header
        given twice (the request would run under one and be recorded under the other), or a
        ``/v1`` write without a valid API key (authenticated here, before the body is read or
        parsed, so a malformed body from a valid key is audited as its member's)."""
        names = [k.decode("latin-1").lower() for k, _ in scope["headers"]]
        repeated = next((n for n in SINGLE if names.count(n) > 1), None)
        if repeated is not None:
            return 400, "header_repeated", f"the {repeated} header may be given only once"
        if scope["method"] in MUTATING and scope["path"].startswith("/v1/"):
            refusal = await self._authenticate(scope, audit, headers.get("authorization"))
            if refusal is not None:
                client = (scope.get("client") or ("?", 0))[0]
                wait = await self._keyless_wait(scope, str(client))
                if wait:
                    # A flood without a key: refused, counted, not recorded one by one.
                    UNAUTHENTICATED_REFUSED.inc()
                    audit.unrecorded = True
                    audit.retry_after = wait
                    return 429, "rate_limited", f"too many requests; retry in {wait} s"
                return 401, refusal.code, refusal.detail
        return None

    async def _keyless_wait(self, scope: Scope, client: str) -> int:
        """Seconds a keyless write from ``client`` must wait (0: go ahead), counted in the
        database so the limit holds across workers."""
        engine = self.engine_of(scope["app"])
        if engine is None:
            return 0
        if self._anonymous is None or self._anonymous.engine is not engine:
            self._anonymous = RateLimiter(engine, self.anonymous_per_minute, scope="keyless ")
        return await self._anonymous.take(client)

    async def _authenticate(
        self, scope: Scope, audit: RequestAudit, authorization: str | None
    ) -> Unauthorized | None:
        """The caller of a write, put in the scope (``None``), or why it is refused."""
        engine = self.engine_of(scope["app"])
        if engine is None:
            return None
        try:
            async with engine.connect() as conn:
                caller = await authenticate(conn, authorization)
        except Unauthorized as exc:
            return exc
        except Exception:  # the database is down: the route's own dependency answers (503)
            return None
        audit.member = caller.address
        audit.api_key_id = caller.key_id
        remember_caller(scope, caller)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        audited = method in MUTATING
        audit = RequestAudit(
            method=method, path=scope["path"], idempotency_key=headers.get("idempotency-key")
        )
        # Always our own (a caller's X-Request-Id is not taken: the id keys the request's
        # audit_pending row, so two requests must never share one).
        request_id = audit.request_id.encode()
        attach(scope, audit)
        digest = audit.body
        started = time.perf_counter()
        answered: list[int] = []
        seen = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.max_body:
                    too_large = True
                    raise _TooLarge
                digest.update(chunk)
            return message

        recorded = False

        async def record(final_status: int) -> None:
            # Written before the response leaves: a client that has its answer finds the record.
            nonlocal recorded
            if not audited or recorded or audit.unrecorded or audit.recorded:
                return
            recorded = True
            engine = self.engine_of(scope["app"])
            if engine is None:
                return
            try:
                await audit_log.append(engine, audit.entry(final_status), audit.request_id)
            except Exception:
                # The database is down: the answer still goes out (it may be a write the chain
                # executed); a request that broadcast has its audit_pending row, which the
                # sweeper turns into a record citing its transactions.
                log.exception("audit record of request %s not written", audit.request_id)

        async def tracking_send(message: Message) -> None:
            if too_large:
                # The app caught _TooLarge while reading the body (FastAPI answers any error
                # there with 400): its answer is replaced by the 413 below.
                return
            if message["type"] == "http.response.start":
                answered.append(message["status"])
                await record(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        try:
            refused = await self._refuse_early(scope, audit, headers)
            if refused is not None:
                status, code, detail = refused
                audit.code = code
                answered.append(status)
                await record(status)
                await _send_problem(send, status, code, detail, audit.request_id, audit.retry_after)
            elif declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
                too_large = True
            else:
                try:
                    await self.app(scope, limited_receive, tracking_send)
                except _TooLarge:
                    pass
                except BaseException as exc:
                    if not too_large or not isinstance(exc, Exception):
                        # An unhandled error: the outer error middleware answers 500 after.
                        audit.code = audit.code or "internal_error"
                        answered.append(500)
                        await record(500)
                        raise
            if too_large:
                audit.code = "request_too_large"
                answered.append(413)
                await record(413)
                await _send_problem(
                    send,
                    413,
                    "request_too_large",
                    f"the body is over {self.max_body} bytes",
                    audit.request_id,
                )
        finally:
            # The access log: one line per request, with the id its answer and audit carry.
            access_log.info(
                "%s %s %s %.1fms request_id=%s member=%s code=%s",
                method,
                scope["path"],
                answered[0] if answered else "-",
                (time.perf_counter() - started) * 1000,
                audit.request_id,
                audit.member or "-",
                audit.code or "-",
            )


async def _send_problem(
    send: Send,
    status: int,
    code: str,
    detail: str,
    request_id: str,
    retry_after: int | None = None,
) -> None:
    body = problem_bytes(status, code, detail, request_id)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
