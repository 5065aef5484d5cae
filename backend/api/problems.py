"""The only place that knows HTTP for errors: a domain error's kind → its status, and every
error leaves as ``application/problem+json`` (RFC 9457) with a stable code.

No handler echoes an exception's text for errors it does not know: a 500 says only that it
happened and the request id to quote, never a stack trace, SQL or the node's URL.

The OpenAPI document says so too (:func:`document_problems`): every operation's client errors
(``4XX``) and ``503`` are ``application/problem+json`` bodies of the ``Problem`` schema, in
place of FastAPI's default ``422`` ``HTTPValidationError``, which this API never sends.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from web3.exceptions import TimeExhausted

from backend.api.audit_state import request_audit
from backend.chain_errors import NODE_DOWN_ERRORS
from backend.errors import (
    PROBLEM_JSON,
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unavailable,
    from_revert,
)
from backend.schemas.common import CONTROL_CHARACTER
from ledger.errors import ContractRevert, TransactionError, TransactionTimeoutError

log = logging.getLogger("tierflow.api")

#: A domain error's kind → the status it answers.
STATUS: dict[type[DomainError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Invalid: 422,
    RateLimited: 429,
    Unavailable: 503,
}

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def status_of(error: DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def problem(
    status: int, code: str, detail: str, instance: str | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": f"https://tierflow.dev/problems/{code.replace('_', '-')}",
        "title": TITLES.get(status, "Bad request"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return body


def answer(error: DomainError, instance: str | None) -> tuple[int, dict[str, Any]]:
    """``(status, problem document)`` of a domain error."""
    status = status_of(error)
    return status, problem(status, error.code, error.detail, instance, error.extra)


def as_domain_error(exc: BaseException) -> DomainError | None:
    """The domain error a refusal is (a contract's revert is translated), or ``None``."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, ContractRevert):
        return from_revert(exc)
    return None


def stored_refusal(
    instance: str, request_id: str | None = None
) -> Callable[[BaseException], tuple[int, Any] | None]:
    """What an idempotent write stores as its answer when it is refused: the problem it
    answers, naming the request that was refused (``request_id``: a replay answers the same
    body, so it names the request that did the work, as the live answer did); nothing for a
    dependency that is down (a retry must run it again) or a bug."""

    def refusal(exc: BaseException) -> tuple[int, Any] | None:
        error = as_domain_error(exc)
        if error is None or isinstance(error, Unavailable):
            return None
        status, body = answer(error, instance)
        if request_id:
            body["request_id"] = request_id
        return status, body

    return refusal


def _record_code(request: Request, code: str) -> dict[str, Any]:
    """Note the refusal's code for the audit record; the request id for the problem body."""
    audit = request_audit(request)
    if audit is None:
        return {}
    audit.code = code
    return {"request_id": audit.request_id}


def problem_response(error: DomainError, request: Request) -> JSONResponse:
    ids = _record_code(request, error.code)
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited | Unavailable):
        headers["Retry-After"] = str(error.retry_after_s)
    status, body = answer(error, request.url.path)
    body.update(ids)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _status_response(
    request: Request, status: int, code: str, detail: str, extra: dict[str, Any] | None = None
) -> JSONResponse:
    body = problem(
        status, code, detail, request.url.path, {**(extra or {}), **_record_code(request, code)}
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors()[:20]:
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return out


class Problem(BaseModel):
    """RFC 9457 problem details: how every error of this API answers."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    request_id: str | None = Field(
        default=None,
        max_length=64,
        description="the request's id (its X-Request-Id header, and its audit record's)",
    )


def _problem_response(description: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM_JSON: {"schema": ref}}}


def document_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe the error bodies the API really sends."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["Problem"] = Problem.model_json_schema()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                responses["4XX"] = _problem_response(
                    "Refused: problem details with a stable `code` (401 no or bad API key, "
                    "403 role or party, 404 not found or not visible, 409 state, 413 body too "
                    "large, 422 invalid, 429 rate limited with Retry-After)"
                )
                responses["503"] = _problem_response(
                    "The ledger node is unavailable, or a transaction was not mined in time"
                )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


CHAIN_DOWN = "chain_unavailable"
DATABASE_DOWN = "database_unavailable"


def _pending() -> Unavailable:
    return Unavailable(
        "the transaction was sent and its outcome is not known yet; retry with the same "
        "Idempotency-Key to get it",
        code="transaction_pending",
    )


def _unless_sent(request: Request, error: Unavailable) -> Unavailable:
    """``error``, or ``transaction_pending`` when the request already broadcast: the chain
    may have executed it, so the answer must not read as a failure (AP-4)."""
    audit = request_audit(request)
    return _pending() if audit is not None and audit.txs else error


def install(app: FastAPI) -> None:
    document_problems(app)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(ContractRevert)
    async def contract_revert(request: Request, exc: ContractRevert) -> JSONResponse:
        return problem_response(from_revert(exc), request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(err.get("type") == CONTROL_CHARACTER for err in exc.errors()):
            return problem_response(
                BadRequest(
                    "text in the request holds a control character",
                    code=CONTROL_CHARACTER,
                    extra={"errors": _validation_errors(exc)},
                ),
                request,
            )
        error = Invalid(
            "the request is not valid",
            code="invalid_request",
            extra={"errors": _validation_errors(exc)},
        )
        return problem_response(error, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        response = _status_response(
            request, exc.status_code, codes.get(exc.status_code, "http_error"), detail
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    # A plain read of the node (its clock, gas price, a balance) that cannot reach it fails
    # with the HTTP client's error, not ChainUnavailableError: the same answer. A node that
    # does not answer within TIERFLOW_API_NODE_TIMEOUT_S (stopped, paused) is a timeout.
    async def chain_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("chain unavailable: %s: %s", type(exc).__name__, exc)
        return problem_response(
            _unless_sent(
                request,
                Unavailable(
                    "the ledger node is unavailable; retry later", code="chain_unavailable"
                ),
            ),
            request,
        )

    for down in NODE_DOWN_ERRORS:
        app.add_exception_handler(down, chain_down)

    # The database refused a connection (down, restarting) or the pool had none free in time.
    @app.exception_handler(sqlalchemy.exc.OperationalError)
    @app.exception_handler(sqlalchemy.exc.InterfaceError)
    @app.exception_handler(sqlalchemy.exc.TimeoutError)
    @app.exception_handler(OSError)
    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return problem_response(
            _unless_sent(
                request,
                Unavailable(
                    "the database is unavailable; retry later", code="database_unavailable"
                ),
            ),
            request,
        )

    @app.exception_handler(TransactionTimeoutError)
    @app.exception_handler(TimeExhausted)
    async def chain_slow(request: Request, exc: Exception) -> JSONResponse:
        log.warning("transaction not mined in time: %s", exc)
        return problem_response(_pending(), request)

    # The node refused a transaction of a write that had already broadcast (re-sending a
    # recorded transaction, say): the write may still be mined under a hash it was sent
    # with, so the answer is that it is pending, as a problem of its own (not a 500: an
    # exception left to the catch-all is logged as a server error).
    @app.exception_handler(TransactionError)
    async def transaction_refused(request: Request, exc: Exception) -> JSONResponse:
        audit = request_audit(request)
        if audit is None or not audit.txs:
            return await internal(request, exc)
        log.warning("a sent write's transaction was refused: %s: %s", type(exc).__name__, exc)
        return problem_response(_pending(), request)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error (incident %s)", incident)
        audit = request_audit(request)
        if audit is not None and audit.txs:
            # The write broadcast its transactions: whatever broke after, it is not a failure
            # the client may act on. A retry with the same key gives the outcome.
            return problem_response(_pending(), request)
        return _status_response(
            request,
            500,
            "internal_error",
            f"an internal error occurred (incident {incident})",
        )
