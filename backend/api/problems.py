"""Exception handlers: every error leaves as ``application/problem+json`` with a stable code.

No handler echoes an exception's text for errors it does not know: a 500 says only that it
happened and the request id to quote, never a stack trace, SQL or the node's URL.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.api.middleware import CURRENT_AUDIT
from backend.errors import PROBLEM_JSON, ApiError, TooManyRequests, from_revert
from ledger.errors import ChainUnavailableError, ContractRevert, TransactionTimeoutError

log = logging.getLogger("tierflow.api")


def problem_response(error: ApiError, request: Request) -> JSONResponse:
    audit = CURRENT_AUDIT.get()
    if audit is not None:
        audit.code = error.code
    headers: dict[str, str] = {}
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after_s)
    return JSONResponse(
        error.problem(request.url.path),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


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


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(ContractRevert)
    async def contract_revert(request: Request, exc: ContractRevert) -> JSONResponse:
        return problem_response(from_revert(exc), request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = ApiError(
            "the request is not valid",
            code="invalid_request",
            status=422,
            extra={"errors": _validation_errors(exc)},
        )
        return problem_response(error, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        error = ApiError(
            detail, code=codes.get(exc.status_code, "http_error"), status=exc.status_code
        )
        response = problem_response(error, request)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(ChainUnavailableError)
    async def chain_down(request: Request, exc: ChainUnavailableError) -> JSONResponse:
        log.warning("chain unavailable: %s", exc)
        return problem_response(
            ApiError(
                "the ledger node is unavailable; retry later", code="chain_unavailable", status=503
            ),
            request,
        )

    @app.exception_handler(TransactionTimeoutError)
    async def chain_slow(request: Request, exc: TransactionTimeoutError) -> JSONResponse:
        log.warning("transaction not mined in time: %s", exc)
        return problem_response(
            ApiError(
                "the transaction was sent but not mined in time; retry with the same "
                "Idempotency-Key to get its outcome",
                code="transaction_pending",
                status=503,
            ),
            request,
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.exception("unhandled error (incident %s)", incident)
        return problem_response(
            ApiError(
                f"an internal error occurred (incident {incident})",
                code="internal_error",
                status=500,
            ),
            request,
        )
