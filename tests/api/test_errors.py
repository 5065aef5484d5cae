"""Error hygiene: every refusal is problem details with a stable ``code``, and tells nothing of
the machinery behind it.

Malformed requests (bad JSON, wrong types, a body over the size limit with and without a
declared length, unknown routes, methods not allowed, bad cursors, bad addresses and ids, bad
API keys and Idempotency-Keys, and for every operation in the OpenAPI hostile path values and
broken bodies) and a node outage (anvil stopped: writes answer 503 ``chain_unavailable``)
must all answer ``application/problem+json`` with ``type``, ``title``, ``status`` (the
response's), ``code`` and ``detail``, and no stack trace, SQL, exception class name, file
path, host address or node URL. The request's own path (``instance``) is the one echo allowed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.stack import Stack
from tests.support import openapi
from tests.support.api import Api
from tests.support.openapi import NO_ID, Operation, absent_path_values

MAX_BODY = 8192
LEAKS = [
    re.compile(p)
    for p in (
        r"Traceback",
        r'File "',
        r"\bline \d+\b",
        r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WHERE|JOIN|RETURNING)\b",
        r"(?i)sqlalchemy|asyncpg|aiosqlite|sqlite3|psycopg|postgresql",
        r"(?i)web3|eth_\w+|json-?rpc",
        r"\b[A-Z][A-Za-z]*(Error|Exception)\b",
        r"127\.0\.0\.1|localhost|::1",
        r"https?://(?!tierflow\.dev/problems/)",
        r"/(work|tmp|home|usr|root)/|\.py\b|site-packages",
    )
]


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    extra = {"TIERFLOW_API_MAX_BODY": str(MAX_BODY), "TIERFLOW_API_RATE_LIMIT": "1000000"}
    async with Stack.start(tmp_path_factory.mktemp("errors"), extra_env=extra) as running:
        yield running


def hygienic(r: httpx.Response, stack: Stack, status: int | None = None) -> dict[str, Any]:
    """The problem document of ``r`` after checking it leaks nothing."""
    where = f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:400]}"
    if status is not None:
        assert r.status_code == status, where
    assert 400 <= r.status_code < 600, where
    assert r.headers.get("content-type", "").startswith("application/problem+json"), where
    body = r.json()
    assert isinstance(body, dict), where
    for name, kind in (("type", str), ("title", str), ("status", int), ("code", str)):
        assert isinstance(body.get(name), kind), where
    assert isinstance(body.get("detail"), str), where
    assert body["status"] == r.status_code, where
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["code"]), where
    scanned = json.dumps({k: v for k, v in body.items() if k != "instance"})
    for leak in LEAKS:
        assert not leak.search(scanned), f"{leak.pattern} in {where}"
    port = stack.rpc_url.rsplit(":", 1)[-1]
    assert stack.rpc_url not in r.text, where
    assert f":{port}" not in scanned, where
    return body


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def test_malformed_requests(stack: Stack, api: Api) -> None:
    member = await api.member("err-supplier", ["supplier"])
    op = api.operator.http
    idem = Stack.idem
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, httpx.Response, int | None, str | None]] = [
        (
            "bad JSON",
            await op.post(
                "/v1/members", content=b'{"name": "x", ', headers={**idem(), **json_type}
            ),
            422,
            "invalid_request",
        ),
        (
            "wrong types",
            await op.post(
                "/v1/members",
                json={"name": 5, "roles": "supplier", "kyc_expires_at": "tomorrow"},
                headers=idem(),
            ),
            422,
            "invalid_request",
        ),
        (
            "not JSON at all",
            await op.post(
                "/v1/members", content=b"name=x", headers={**idem(), "Content-Type": "text/plain"}
            ),
            422,
            "invalid_request",
        ),
        (
            "a JSON array for an object",
            await op.post("/v1/members", json=[1, 2], headers=idem()),
            422,
            "invalid_request",
        ),
        (
            "huge body, declared",
            await op.post(
                "/v1/members",
                content=b"{" + b" " * (2 * MAX_BODY) + b"}",
                headers={**idem(), **json_type},
            ),
            413,
            "request_too_large",
        ),
        (
            "huge body, streamed without a length",
            await op.post(
                "/v1/members",
                content=_chunks(b'{"name": "' + b"x" * (4 * MAX_BODY) + b'"}'),
                headers={**idem(), **json_type},
            ),
            413,
            "request_too_large",
        ),
        ("unknown route", await op.get("/v1/nothing-here"), 404, "not_found"),
        ("unknown sub-route", await op.get(f"/v1/members/{member.address}/x"), 404, "not_found"),
        ("unknown version", await op.get("/v2/members"), 404, "not_found"),
        ("method not allowed", await op.delete("/v1/members"), 405, "method_not_allowed"),
        ("method not allowed 2", await op.patch("/v1/deployment"), 405, "method_not_allowed"),
        (
            "bad cursor",
            await op.get("/v1/members", params={"cursor": "!!!"}),
            422,
            "cursor_invalid",
        ),
        (
            "cursor of another type",
            await op.get("/v1/members", params={"cursor": cursor({"a": [1]})}),
            None,
            None,
        ),
        ("limit not a number", await op.get("/v1/members", params={"limit": "x"}), 422, None),
        ("limit too large", await op.get("/v1/members", params={"limit": 10**6}), 422, None),
        ("short address", await op.get("/v1/members/0x1234"), 422, "invalid_request"),
        ("not an address", await op.get("/v1/members/not-an-address"), 422, "invalid_request"),
        (
            "address with bad checksum chars",
            await op.get("/v1/members/0x" + "zz" * 20),
            422,
            "invalid_request",
        ),
        ("no key", await _with_auth(stack, None), 401, "unauthorized"),
        (
            "basic auth",
            await _with_auth(stack, "Basic dXNlcjpwYXNz"),
            401,
            "unauthorized",
        ),
        ("bearer without key", await _with_auth(stack, "Bearer"), 401, "unauthorized"),
        ("malformed key", await _with_auth(stack, "Bearer tf_x_y"), 401, "invalid_api_key"),
        (
            "unknown key id",
            await _with_auth(stack, "Bearer tf_ffffffffffff_" + "s" * 43),
            401,
            "invalid_api_key",
        ),
        (
            "right id, wrong secret",
            await _with_auth(stack, "Bearer " + member.key[:-4] + "abcd"),
            401,
            "invalid_api_key",
        ),
        ("huge key", await _with_auth(stack, "Bearer " + "k" * 6000), 401, "invalid_api_key"),
        (
            "no Idempotency-Key",
            await op.post(f"/v1/members/{member.address}/api-keys", json={}),
            422,
            "invalid_request",
        ),
        (
            "Idempotency-Key too long",
            await op.post(
                f"/v1/members/{member.address}/api-keys", json={}, headers=idem("k" * 201)
            ),
            422,
            "invalid_request",
        ),
        (
            "NUL in a string",
            await op.post(
                f"/v1/members/{member.address}/suspend",
                content=b'{"reason": "a\\u0000b"}',
                headers={**idem(), **json_type},
            ),
            None,
            None,
        ),
        (
            "deeply nested JSON",
            await op.post(
                "/v1/members",
                content=b"[" * 3000 + b"]" * 3000,
                headers={**idem(), **json_type},
            ),
            422,
            None,
        ),
    ]
    for name, r, status, code in cases:
        assert r.status_code < 500, f"{name}: {r.text}"
        if status is None and r.status_code < 400:
            continue  # taken as valid: nothing to check
        body = hygienic(r, stack, status)
        if code is not None:
            assert body["code"] == code, f"{name}: {r.text}"
    # (Starlette names the methods of one of the path's routes only: POST here, not GET.)
    assert (await op.delete("/v1/members")).headers.get("allow")


async def _chunks_gen(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 1024):
        yield data[i : i + 1024]


def _chunks(data: bytes) -> AsyncIterator[bytes]:
    return _chunks_gen(data)


async def _with_auth(stack: Stack, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with stack.client() as client:
        return await client.get("/v1/members", headers=headers)


HOSTILE = [
    "' OR 1=1 --",
    "1; DROP TABLE members",
    "../../etc/passwd",
    "%00",
    "0x" + "f" * 80,
    str(2**256),
    "-1",
    "1e308",
    "\u202e\u0000",
]


def hostile_ops(ops: list[Operation]) -> list[Operation]:
    return [op for op in ops if op.path_names]


async def test_every_operation_hostile_input(stack: Stack, api: Api) -> None:
    """Each operation with path parameters, each parameter given hostile values; each
    operation with a body given broken and ill-typed bodies: always a clean 4xx."""
    ops = openapi.operations(await openapi.fetch(stack))
    op_client = api.operator.http
    answered = 0
    for op in ops:
        base = absent_path_values(op)
        for name in op.path_names:
            for value in HOSTILE:
                path = op.url({**base, name: _quote(value)})
                r = await op_client.request(
                    op.method,
                    path,
                    json=op.body(),
                    headers=Stack.idem(),
                    params=op.required_query(),
                )
                hygienic(r, stack)
                assert r.status_code < 500, f"{op.label} {name}={value!r}: {r.text}"
                answered += 1
        if op.body_schema is not None:
            for content in (b"{", b'{"a": }', b"null", b'"text"', b"[" + b"1," * 100 + b"1]"):
                r = await op_client.request(
                    op.method,
                    op.url(base),
                    content=content,
                    headers={**Stack.idem(), "Content-Type": "application/json"},
                )
                hygienic(r, stack)
                assert r.status_code < 500, f"{op.label} {content[:20]!r}: {r.text}"
                answered += 1
            wrong = {k: {"nested": [None]} for k in openapi.properties(op.body_schema)}
            r = await op_client.request(op.method, op.url(base), json=wrong, headers=Stack.idem())
            hygienic(r, stack)
            assert r.status_code in (403, 422), f"{op.label} ill-typed body: {r.text}"
        for param in op.params("query"):
            r = await op_client.request(
                op.method,
                op.url(base),
                params={**op.required_query(), param.name: "\u0000' OR 1=1 --"},
                headers=Stack.idem(),
                json=op.body(),
            )
            if r.status_code >= 400:
                hygienic(r, stack)
            assert r.status_code < 500, f"{op.label} ?{param.name}: {r.text}"
        for param in op.params("query"):
            if param.name == "cursor":
                for bad in ("!!!", cursor(2**70), cursor({"x": None}), cursor(["a", NO_ID])):
                    r = await op_client.get(
                        op.url(base), params={**op.required_query(), "cursor": bad}
                    )
                    if r.status_code >= 400:
                        hygienic(r, stack)
                    assert r.status_code < 500, f"{op.label} cursor {bad}: {r.text}"
    assert answered > 100


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


async def test_amounts_are_strict_json_integers(stack: Stack, api: Api) -> None:
    """``"100"``, ``true`` and ``1.0`` are not amounts: 422, nothing sent."""
    holder = await api.member("strict-holder", ["supplier"])
    for amount in ("100", True, 1.0, "1e3"):
        r = await holder.post("/v1/claims/1/transfers", {"to": holder.address, "amount": amount})
        body = hygienic(r, stack, 422)
        assert body["code"] == "invalid_request", r.text
        assert any(e["type"] == "int_strict" for e in body["errors"]), r.text
    limit = {"program_limit": True}
    r = await api.operator.put(f"/v1/members/{holder.address}/program-limit", limit)
    assert hygienic(r, stack, 422)["code"] == "invalid_request"


async def test_control_characters_are_refused_in_every_text(stack: Stack, api: Api) -> None:
    kyc = "2099-01-01T00:00:00Z"
    for name in ("nul\x00byte", "escape\x1b[31m", "bell\x07", "line\nbreak"):
        body = {"name": name, "roles": ["supplier"], "kyc_expires_at": kyc}
        r = await api.operator.post("/v1/members", body)
        assert hygienic(r, stack, 400)["code"] == "control_character", r.text
    # Nested too: a member's suspension reason.
    member = await api.member("ctl-member", ["supplier"])
    r = await api.operator.post(f"/v1/members/{member.address}/suspend", {"reason": "a\x00"})
    assert hygienic(r, stack, 400)["code"] == "control_character"


async def test_repeated_headers_are_refused(stack: Stack, api: Api) -> None:
    """Two Idempotency-Keys (or two Authorizations): 400, before anything runs."""
    kyc = "2099-01-01T00:00:00Z"
    body = json.dumps({"name": "twice", "roles": ["supplier"], "kyc_expires_at": kyc}).encode()
    for name, values in (
        ("Idempotency-Key", ["first-" + Stack.idem()["Idempotency-Key"], "second"]),
        ("Authorization", [f"Bearer {stack.operator_key}", "Bearer other"]),
    ):
        headers = [
            ("Authorization", f"Bearer {stack.operator_key}"),
            ("Idempotency-Key", Stack.idem()["Idempotency-Key"]),
            ("Content-Type", "application/json"),
        ]
        headers = [h for h in headers if h[0] != name] + [(name, v) for v in values]
        async with httpx.AsyncClient(base_url=stack.base_url) as raw:
            r = await raw.post("/v1/members", content=body, headers=headers)
        assert hygienic(r, stack, 400)["code"] == "header_repeated", r.text


async def test_writes_authenticate_before_the_body(stack: Stack, api: Api) -> None:
    """A write without a valid key is refused unread (401, not the body's 422); a malformed
    body from a valid key is audited as its member's."""
    async with httpx.AsyncClient(base_url=stack.base_url) as raw:
        r = await raw.post(
            "/v1/members",
            content=b"{not json",
            headers={"Content-Type": "application/json", **Stack.idem()},
        )
        assert hygienic(r, stack, 401)["code"] in ("unauthorized", "invalid_api_key"), r.text
        r = await raw.post(
            "/v1/members",
            content=b"{not json",
            headers={"Authorization": "Bearer tf_nope_nope", **Stack.idem()},
        )
        assert hygienic(r, stack, 401)["code"] == "invalid_api_key", r.text


async def test_a_member_holds_at_most_twenty_keys(stack: Stack, api: Api) -> None:
    member = await api.member("many-keys", ["supplier"])
    path = f"/v1/members/{member.address}/api-keys"
    made = [await member.post(path, {"label": f"key {n}"}) for n in range(19)]
    assert all(r.status_code == 201 for r in made), [r.text for r in made]
    over = await member.post(path, {"label": "one too many"})
    assert hygienic(over, stack, 409)["code"] == "api_key_limit", over.text
    revoked = await member.http.delete(f"{path}/{made[0].json()['id']}")
    assert revoked.status_code == 200, revoked.text
    assert (await member.post(path, {"label": "in its place"})).status_code == 201


def test_the_platforms_files_are_private(stack: Stack) -> None:
    """The database and the nonce files are the user's alone (0600 files, 0700 nonce dir)."""
    files = [stack.data_dir / "tierflow.db", *(stack.data_dir / "nonces").glob("*.json")]
    assert len(files) > 1, files
    for path in files:
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))
    assert (stack.data_dir / "nonces").stat().st_mode & 0o077 == 0


async def test_node_outage_is_503_without_the_node(stack: Stack, api: Api) -> None:
    """Second to last in this module: it stops the node for good.

    A write whose first step reads the node (a member's creation reads the chain's clock)
    answers at once; reads of the mirror go on."""
    member = await api.member("outage-supplier", ["supplier"])
    stack.node.stop()
    started = time.monotonic()
    r = await api.operator.post(
        "/v1/members",
        {"name": "during outage", "roles": ["supplier"], "kyc_expires_at": "2099-01-01T00:00:00Z"},
    )
    body = hygienic(r, stack, 503)
    assert body["code"] == "chain_unavailable", r.text
    assert time.monotonic() - started < 20
    assert (await member.get("/v1/members")).status_code == 200
    health = await api.operator.get("/health")
    assert health.status_code == 503
    assert stack.rpc_url not in health.text
    assert health.json()["status"] == "down"


@pytest.mark.slow
async def test_node_outage_writes_through_the_sender(stack: Stack, api: Api) -> None:
    """After the node stopped (the test above): writes that go straight to signing retry
    for the sender's window (``TIERFLOW_API_NODE_UNAVAILABLE_S``) before answering 503, in
    parallel here."""
    member = await api.member("outage-supplier", ["supplier"])
    assert stack.node.process is None, "runs after test_node_outage_is_503_without_the_node"
    kyc = {"kyc_expires_at": "2099-01-01T00:00:00Z"}
    async with stack.client(stack.operator_key, timeout=180.0) as patient:
        writes = await asyncio.gather(
            patient.post(
                f"/v1/members/{member.address}/suspend",
                json={"reason": "x"},
                headers=Stack.idem(),
            ),
            patient.put(
                f"/v1/members/{member.address}/program-limit",
                json={"program_limit": 1},
                headers=Stack.idem(),
            ),
            patient.post(f"/v1/members/{member.address}/kyc", json=kyc, headers=Stack.idem()),
        )
    for r in writes:
        body = hygienic(r, stack, 503)
        assert body["code"] == "chain_unavailable", r.text
