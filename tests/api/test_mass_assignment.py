"""Mass assignment: a field the request schema does not declare is refused, never applied.

For every POST, PUT and PATCH with a JSON body in the running server's OpenAPI, a body that
is valid (made from the operation's own request schema) plus one field a client must not set
(``holder``, ``status``, ``amount`` where the schema has none, ``address``, ``roles`` …) is
answered 422 ``invalid_request`` whose only error is ``extra_forbidden`` at that field, at
the top level and inside nested objects (settlement items). The caller is one that passes the
operation's role gate, so the refusal is the schema's. Nothing reaches the chain: the block
number does not move.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bench.stack import Stack
from ledger.anvil import rpc_call
from tests.support import openapi
from tests.support.api import Api, Member
from tests.support.openapi import Operation, absent_path_values, call
from tests.support.scenario import Scenario, cast

#: Fields a client might try to slip in, with values that would matter if applied.
EXTRAS: dict[str, Any] = {
    "holder": openapi.SOME_ADDRESS,
    "status": "approved",
    "amount": 10**12,
    "address": openapi.SOME_ADDRESS,
    "roles": ["operator", "auditor"],
    "id": 1,
    "obligor": openapi.SOME_ADDRESS,
    "financier": openapi.SOME_ADDRESS,
    "applicant": openapi.SOME_ADDRESS,
    "seller": openapi.SOME_ADDRESS,
    "owner": openapi.SOME_ADDRESS,
    "locked_amount": 0,
    "settled_value": 0,
    "api_key": "tf_0123456789ab_chosen-by-the-client",
    "revoked_at": None,
    "tx_hash": "0x" + "00" * 32,
    "is_operator": True,
}


@pytest.fixture(scope="module")
async def members(api: Api) -> Scenario:
    return await cast(api, "ma-")


def gate_refused(r: httpx.Response) -> bool:
    return (
        r.status_code == 403
        and r.headers.get("content-type", "").startswith("application/problem+json")
        and "chain_error" not in r.json()
        and r.json().get("code") in {"role_missing", "auditor_read_only"}
    )


def nested_objects(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Object-valued properties (directly or as array items): (name, item schema)."""
    out = []
    for name, sub in schema.get("properties", {}).items():
        item = sub.get("items", sub) if sub.get("type") == "array" else sub
        if item.get("type") == "object" and "properties" in item:
            out.append((name, item))
    return out


def variants(op: Operation) -> list[tuple[str, Any, list[str]]]:
    """(what, body, the loc of the one error) for each extra field this operation must
    refuse."""
    schema = op.body_schema
    assert schema is not None
    base = op.body()
    out: list[tuple[str, Any, list[str]]] = []
    declared = openapi.properties(schema)
    for field, value in EXTRAS.items():
        if field not in declared:
            out.append((field, {**base, field: value}, ["body", field]))
    for name, item_schema in nested_objects(schema):
        inner = openapi.properties(item_schema)
        for field, value in EXTRAS.items():
            if field in inner:
                continue
            body = dict(base)
            if isinstance(base[name], list):
                body[name] = [{**base[name][0], field: value}, *base[name][1:]]
                loc = ["body", name, "0", field]
            else:
                body[name] = {**base[name], field: value}
                loc = ["body", name, field]
            out.append((f"{name}.{field}", body, loc))
    return out


async def test_every_body_refuses_undeclared_fields(
    stack: Stack, api: Api, members: Scenario
) -> None:
    ops = [
        op
        for op in openapi.operations(await openapi.fetch(stack))
        if op.body_schema is not None and op.method in {"POST", "PUT", "PATCH"}
    ]
    callers: list[Member] = [
        api.operator,
        members.core,
        members.a,
        members.financier,
        members.agent,
    ]
    block_before = int(rpc_call(stack.rpc_url, "eth_blockNumber"), 16)
    tried: set[tuple[str, str]] = set()
    failures = []
    for op in ops:
        values = absent_path_values(op)
        for what, body, loc in variants(op):
            for member in callers:
                r = await call(member.http, op, values, body)
                if not gate_refused(r):
                    break
            else:
                failures.append(f"{op.label}: every caller refused by the role gate")
                break
            tried.add((op.label, what))
            problem = r.json() if r.status_code == 422 else {}
            errors = problem.get("errors", [])
            if (
                r.status_code != 422
                or problem.get("code") != "invalid_request"
                or [(e["loc"], e["type"]) for e in errors] != [(loc, "extra_forbidden")]
            ):
                failures.append(f"{op.label} + {what}: {r.status_code} {r.text[:300]}")
    assert not failures, "\n".join(failures)
    # Nothing was sent to the chain.
    assert int(rpc_call(stack.rpc_url, "eth_blockNumber"), 16) == block_before
    # What the test plan names in particular.
    must = {
        ("POST /v1/members/{address}/api-keys", "roles"),
        ("POST /v1/members", "api_key"),
        ("POST /v1/members", "status"),
    }
    labels = {op.label for op in ops}
    if "POST /v1/claims/{claim_id}/transfers" in labels:
        must |= {
            ("POST /v1/claims/{claim_id}/transfers", "holder"),
            ("POST /v1/claims/{claim_id}/transfers", "status"),
        }
    if "POST /v1/payables" in labels:
        must |= {("POST /v1/payables", "status"), ("POST /v1/payables", "amount")}
    if "POST /v1/payables/{payable_id}/settlements" in labels:
        must |= {("POST /v1/payables/{payable_id}/settlements", "items.holder")}
    if "POST /v1/financing-requests/{financing_id}/approve" in labels:
        must |= {("POST /v1/financing-requests/{financing_id}/approve", "amount")}
    assert must <= tried, must - tried
    assert {op.label for op in ops} == {label for label, _ in tried}


async def test_the_refused_member_was_not_made(stack: Stack, api: Api) -> None:
    """A member creation with a chosen address is refused whole: no member has that name."""
    name = "mass-assignment-probe"
    body = {
        "name": name,
        "roles": ["supplier"],
        "kyc_expires_at": "2099-01-01T00:00:00Z",
        "address": openapi.SOME_ADDRESS,
        "status": "active",
    }
    r = await api.operator.post("/v1/members", body)
    assert r.status_code == 422, r.text
    listed = (await api.operator.get("/v1/members", limit=200)).json()["items"]
    assert name not in {m["name"] for m in listed}
    assert (await api.operator.get(f"/v1/members/{openapi.SOME_ADDRESS}")).status_code == 404
