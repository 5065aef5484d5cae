"""The client's HTTP behaviour against scripted answers (``httpx.MockTransport``): retries that
reuse one ``Idempotency-Key`` (network errors, 502/503/504 with or without ``Retry-After``,
``409 idempotency_in_progress``), bounded; problem+json mapped to the exception of its class;
pagination over ``next_cursor``; answers that are not what the API documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from client import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ProblemError,
    RateLimited,
    ResponseError,
    RetryPolicy,
    ServerError,
    TierflowClient,
    TierflowError,
    TransportError,
    Unauthorized,
    Unavailable,
)
from client.models import Invoice

FAST = RetryPolicy(attempts=4, backoff_s=0.001, max_wait_s=0.01)
INVOICE: dict[str, Any] = {
    "id": "0x" + "ab" * 32,
    "seller": "0x" + "11" * 20,
    "buyer": "0x" + "22" * 20,
    "amount": 5,
    "issue_date": "2026-01-01T00:00:00Z",
    "document_sha256": "cd" * 32,
    "status": "registered",
    "tx_hash": "0x" + "ef" * 32,
    "block_number": 9,
    "a_field_from_a_newer_api": [1, 2],
}


def problem(status: int, code: str, **extra: Any) -> httpx.Response:
    body = {"type": "t", "title": "x", "status": status, "code": code, "detail": f"{code}!"}
    headers = {"content-type": "application/problem+json", **extra.pop("headers", {})}
    return httpx.Response(status, json={**body, **extra}, headers=headers)


Script = list[Callable[[httpx.Request], httpx.Response]]


def scripted(script: Script, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = script.pop(0) if len(script) > 1 else script[0]
        return step(request)

    return httpx.MockTransport(handle)


def client(script: Script, seen: list[httpx.Request], **options: Any) -> TierflowClient:
    options.setdefault("retry", FAST)
    return TierflowClient(
        "http://tierflow.test", "tf_secret", transport=scripted(script, seen), **options
    )


def drop(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset by peer", request=request)


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json=INVOICE)


def register_args() -> dict[str, Any]:
    return {
        "buyer": "0x" + "22" * 20,
        "seller_tax_id": "91310000MA1FL0XX1X",
        "number": "1",
        "amount": 5,
        "issue_date": 1_767_225_600,
        "document_sha256": "cd" * 32,
    }


async def test_a_write_sends_auth_a_fresh_key_and_answers_its_model() -> None:
    seen: list[httpx.Request] = []
    async with client([ok], seen) as tf:
        made = await tf.invoices.register(**register_args())
        await tf.invoices.register(**register_args())
        await tf.invoices.register(**register_args(), idempotency_key="mine-1")
    assert made.id == INVOICE["id"]
    assert made.block_number == 9
    assert made.model_extra == {"a_field_from_a_newer_api": [1, 2]}
    assert seen[0].headers["Authorization"] == "Bearer tf_secret"
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert len(set(keys)) == 3
    assert keys[2] == "mine-1"
    body = json.loads(seen[0].content)
    assert body["issue_date"] == 1_767_225_600
    assert body["invoice_code"] == ""


@pytest.mark.parametrize("failure", [drop, refuse], ids=["dropped", "refused"])
async def test_a_network_error_is_retried_under_the_same_key(
    failure: Callable[[httpx.Request], httpx.Response],
) -> None:
    seen: list[httpx.Request] = []
    async with client([failure, failure, ok], seen) as tf:
        made = await tf.invoices.register(**register_args())
    assert made.id == INVOICE["id"]
    assert len(seen) == 3
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1
    assert len({r.content for r in seen}) == 1


async def test_503_with_retry_after_is_honoured_and_retried_under_the_same_key() -> None:
    seen: list[httpx.Request] = []
    busy = problem(503, "chain_unavailable", headers={"Retry-After": "0"})
    async with client([lambda r: busy, lambda r: busy, ok], seen) as tf:
        made = await tf.invoices.register(**register_args())
    assert made.id == INVOICE["id"]
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1
    assert len(seen) == 3


async def test_retries_are_bounded_and_the_error_carries_the_key() -> None:
    seen: list[httpx.Request] = []
    busy = problem(503, "transaction_pending", headers={"Retry-After": "7"})
    async with client([lambda r: busy], seen) as tf:
        with pytest.raises(Unavailable) as raised:
            await tf.invoices.register(**register_args(), idempotency_key="k-503")
    assert len(seen) == FAST.attempts
    assert raised.value.retry_after == 7
    assert raised.value.code == "transaction_pending"
    assert raised.value.idempotency_key == "k-503"

    seen.clear()
    async with client([drop], seen) as tf:
        with pytest.raises(TransportError) as dropped:
            await tf.invoices.register(**register_args(), idempotency_key="k-net")
    assert len(seen) == FAST.attempts
    assert dropped.value.idempotency_key == "k-net"
    assert "k-net" in str(dropped.value)


async def test_a_first_try_still_running_is_waited_for() -> None:
    seen: list[httpx.Request] = []
    running = problem(409, "idempotency_in_progress")
    async with client([drop, lambda r: running, ok], seen) as tf:
        assert (await tf.invoices.register(**register_args())).amount == 5
    assert len({r.headers["Idempotency-Key"] for r in seen}) == 1
    # Any other conflict is the answer.
    async with client([lambda r: problem(409, "invoice_duplicate")], seen) as tf:
        with pytest.raises(Conflict):
            await tf.invoices.register(**register_args())


async def test_a_read_is_retried_too_and_never_carries_a_key() -> None:
    seen: list[httpx.Request] = []
    answer = httpx.Response(200, json=INVOICE)
    async with client(
        [refuse, lambda r: problem(502, "bad_gateway"), lambda r: answer], seen
    ) as tf:
        assert (await tf.invoices.get(INVOICE["id"])).status == "registered"
    assert all("Idempotency-Key" not in r.headers for r in seen)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, Invalid),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (405, ProblemError),
        (409, Conflict),
        (413, Invalid),
        (422, Invalid),
        (429, RateLimited),
        (500, ServerError),
        (503, Unavailable),
    ],
)
async def test_problems_become_exceptions_by_class(status: int, kind: type[ProblemError]) -> None:
    seen: list[httpx.Request] = []
    extra: dict[str, Any] = {"retry_after": 3} if status == 429 else {}
    if status == 422:
        extra["errors"] = [{"loc": ["body", "amount"], "msg": "too big", "type": "x"}]
    answer = problem(status, f"code_{status}", **extra)
    async with client([lambda r: answer], seen, retry=RetryPolicy(attempts=1)) as tf:
        with pytest.raises(kind) as raised:
            await tf.invoices.get(INVOICE["id"])
    error = raised.value
    assert type(error) is kind
    assert isinstance(error, TierflowError)
    assert (error.status, error.code, error.detail) == (status, f"code_{status}", f"code_{status}!")
    assert error.body["status"] == status
    if isinstance(error, RateLimited):
        assert error.retry_after == 3
    if status == 422:
        assert isinstance(error, Invalid)
        assert error.errors[0]["loc"] == ["body", "amount"]


async def test_an_error_that_is_not_problem_json_still_maps() -> None:
    seen: list[httpx.Request] = []
    html = httpx.Response(502, text="<html>bad gateway</html>")
    async with client([lambda r: html], seen) as tf:
        with pytest.raises(Unavailable) as raised:
            await tf.health()
    assert raised.value.code == "http_502"
    assert "bad gateway" in raised.value.detail


async def test_answers_that_are_not_the_documented_shape_are_response_errors() -> None:
    seen: list[httpx.Request] = []
    for answer in (
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"id": 1}),
        httpx.Response(202, json={"status": "queued"}),
    ):
        async with client([lambda r, a=answer: a], seen) as tf:  # type: ignore[misc]
            with pytest.raises(ResponseError):
                await tf.invoices.register(**register_args())


async def test_pagination_follows_next_cursor_to_the_end() -> None:
    seen: list[httpx.Request] = []
    pages = {
        None: (["a", "b"], "c1"),
        "c1": (["c", "d"], "c2"),
        "c2": (["e"], None),
    }

    def handle(request: httpx.Request) -> httpx.Response:
        items, cursor = pages[request.url.params.get("cursor")]
        rows = [{**INVOICE, "id": "0x" + (i * 64)[:64].encode().hex()[:64]} for i in items]
        return httpx.Response(200, json={"items": rows, "next_cursor": cursor})

    async with client([handle], seen) as tf:
        found = [i async for i in tf.invoices.list(status="registered", limit=2)]
        first = await tf.invoices.page(limit=2)
    assert len(found) == 5
    assert all(isinstance(i, Invoice) for i in found)
    assert [r.url.params.get("cursor") for r in seen[:3]] == [None, "c1", "c2"]
    assert all(r.url.params["status"] == "registered" for r in seen[:3])
    assert all(r.url.params["limit"] == "2" for r in seen[:3])
    assert first.next_cursor == "c1"
    assert len(first.items) == 2


async def test_csv_export_joins_every_page_under_one_header() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("cursor") is None:
            return httpx.Response(200, text="id,amount\r\na,1\r\n", headers={"X-Next-Cursor": "n1"})
        return httpx.Response(200, text="id,amount\r\nb,2\r\n")

    async with client([handle], seen) as tf:
        text = await tf.payables.export_csv(status="issued")
    assert text == "id,amount\r\na,1\r\nb,2\r\n"
    assert seen[0].url.params["format"] == "csv"
