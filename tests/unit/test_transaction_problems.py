"""How the API answers a ledger ``TransactionError`` it did not expect: a write that had
already broadcast may still be mined, so 503 ``transaction_pending`` (never a 500); a write
that sent nothing is an internal error as before."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request

from backend.api import problems
from backend.api.audit_state import STATE_KEY, RequestAudit
from ledger.errors import TransactionError
from ledger.sender import FeeTooLow


def app_raising(error: Exception, sent: list[str]) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/write")
    async def write(request: Request) -> None:
        request.scope.setdefault("state", {})[STATE_KEY] = RequestAudit(txs=list(sent))
        raise error

    return app


async def post(app: FastAPI, *, handled: bool) -> httpx.Response:
    """POST to ``app``; ``handled``: the error must not escape the app as a server error (the
    catch-all answers and then re-raises it: the server logs a 500 whatever was answered)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=handled)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.post("/write")


async def test_a_refusal_after_broadcast_is_transaction_pending() -> None:
    for error in (
        FeeTooLow("node refused 0xab for its fees", "0xab"),
        TransactionError("node refused the transaction: max fee per gas less than base fee"),
    ):
        r = await post(app_raising(error, ["0xab"]), handled=True)
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "transaction_pending"
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_refusal_before_anything_was_sent_stays_internal() -> None:
    error = TransactionError("could not find a free nonce")
    r = await post(app_raising(error, []), handled=False)
    assert r.status_code == 500, r.text
    assert r.json()["code"] == "internal_error"
