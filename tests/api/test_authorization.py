"""Authorization matrices (AP-2) over every operation the running server's OpenAPI lists.

Function matrix: every operation × (operator, core enterprise, supplier, financier, clearing
agent, auditor, no key, a revoked key). Without a key, or with a revoked one, every operation
but the public three answers 401; auditors get 403 ``auditor_read_only`` on every write; for
the operations whose role gate is known (:data:`GATES`) exactly the intended roles pass it and
the others get 403 ``role_missing``; nobody ever gets a 5xx. Path parameters name objects
that do not exist, so the cells that pass the gate change nothing that matters here.

Object matrix: for the objects of :mod:`tests.support.scenario` (an invoice, a payable, its
root piece, a financing request), every read of one object × identities A (its supplier),
B (a supplier party to nothing), the obligor, the financier, the clearing agent and the
auditor: parties and the auditor get 200, the others 404 (the object's existence is not
revealed); lists show it to the same identities only; non-parties' writes on it are all
refused and leave it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bench.stack import Stack
from tests.support import openapi
from tests.support.api import Api, Member
from tests.support.openapi import NO_ID, Operation, absent_path_values, call
from tests.support.scenario import Scenario, build

#: Operations anyone may call without a key.
PUBLIC = frozenset({"GET /health", "GET /metrics", "GET /v1/deployment"})
ROLES = ("operator", "core_enterprise", "supplier", "financier", "clearing_agent", "auditor")
MEMBERS = frozenset(r for r in ROLES if r != "auditor")
#: The API's role gate of known operations: who passes it (the chain then decides the rest).
#: Operations not listed (routes landing later) get the rules that hold for all.
GATES: dict[str, frozenset[str]] = {
    "POST /v1/members": frozenset({"operator"}),
    "POST /v1/members/{address}/suspend": frozenset({"operator"}),
    "POST /v1/members/{address}/reinstate": frozenset({"operator"}),
    "POST /v1/members/{address}/kyc": frozenset({"operator"}),
    "PUT /v1/members/{address}/program-limit": frozenset({"operator"}),
    "POST /v1/members/{address}/api-keys": MEMBERS,
    "DELETE /v1/members/{address}/api-keys/{key_id}": MEMBERS,
    "POST /v1/invoices": frozenset({"supplier"}),
    "POST /v1/invoices/{invoice_id}/confirm": MEMBERS,
    "POST /v1/invoices/{invoice_id}/void": MEMBERS,
    "POST /v1/payables": frozenset({"core_enterprise"}),
    "POST /v1/payables/{payable_id}/settlements": MEMBERS,
    "POST /v1/payables/{payable_id}/overdue": MEMBERS,
    "POST /v1/payables/{payable_id}/cancel": MEMBERS,
    "POST /v1/claims/{claim_id}/transfers": MEMBERS,
    "POST /v1/claims/{claim_id}/freeze": frozenset({"operator"}),
    "POST /v1/claims/{claim_id}/unfreeze": frozenset({"operator"}),
    "POST /v1/financing-requests": MEMBERS,
    "POST /v1/financing-requests/{financing_id}/approve": frozenset({"financier"}),
    "POST /v1/financing-requests/{financing_id}/reject": frozenset({"financier"}),
    "POST /v1/financing-requests/{financing_id}/withdraw": MEMBERS,
    "POST /v1/financing-requests/{financing_id}/expire": MEMBERS,
    "PUT /v1/credit-lines/{obligor}": frozenset({"financier"}),
    "PUT /v1/financing-policy": frozenset({"financier"}),
    "GET /v1/credit-lines": frozenset({"financier", "auditor", "operator"}),
    "GET /v1/financing-policy": frozenset({"financier", "auditor", "operator"}),
    "GET /v1/audit/exposure": frozenset({"core_enterprise", "financier", "auditor", "operator"}),
    "GET /v1/audit/reconciliation": frozenset({"auditor", "operator"}),
    "GET /v1/audit/log": frozenset({"auditor", "operator"}),
    "GET /v1/audit/log/verify": frozenset({"auditor", "operator"}),
    "POST /v1/dev/advance-time": frozenset({"operator"}),
}
GATE_CODES = frozenset({"role_missing", "auditor_read_only"})


@dataclass
class Caller:
    name: str
    http: httpx.AsyncClient


@pytest.fixture(scope="module")
async def scenario(api: Api) -> Scenario:
    return await build(api)


@pytest.fixture(scope="module")
async def ops(stack: Stack) -> list[Operation]:
    return openapi.operations(await openapi.fetch(stack))


@pytest.fixture(scope="module")
async def revoked_key(api: Api, stack: Stack) -> str:
    """The first key of a member, revoked after it got a second one."""
    member = await api.member("revoked-key-holder", ["supplier"])
    rotated = await member.post(f"/v1/members/{member.address}/api-keys", {"label": "new"})
    assert rotated.status_code == 201, rotated.text
    key_id = member.key.split("_")[1]
    r = await api.operator.http.delete(f"/v1/members/{member.address}/api-keys/{key_id}")
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    return member.key


def gate_refusal(r: httpx.Response) -> str | None:
    """The code of the API's own role gate refusing the caller (not the chain refusing)."""
    if r.status_code != 403 or not r.headers.get("content-type", "").startswith(
        "application/problem+json"
    ):
        return None
    body = r.json()
    return None if "chain_error" in body else body.get("code")


def code_of(r: httpx.Response) -> str | None:
    if r.headers.get("content-type", "").startswith("application/problem+json"):
        code: str | None = r.json().get("code")
        return code
    return None


async def test_function_matrix(
    stack: Stack, api: Api, scenario: Scenario, ops: list[Operation], revoked_key: str
) -> None:
    s = scenario
    by_role = {
        "operator": s.operator,
        "core_enterprise": s.core,
        "supplier": s.a,
        "financier": s.financier,
        "clearing_agent": s.agent,
        "auditor": s.auditor,
    }
    callers = [Caller(role, m.http) for role, m in by_role.items()]
    anonymous = stack.client()
    revoked = stack.client(revoked_key)
    failures: list[str] = []
    open_without_key: set[str] = set()
    try:
        for op in ops:
            values = absent_path_values(op)
            body = op.body(claim_id=NO_ID, payable_id=NO_ID, financing_id=NO_ID)
            for name, http in (("no key", anonymous), ("revoked key", revoked)):
                r = await call(http, op, values, body)
                want = "unauthorized" if name == "no key" else "invalid_api_key"
                if op.label in PUBLIC:
                    if r.status_code != 200:
                        failures.append(f"{op.label} {name}: {r.status_code} {r.text[:200]}")
                elif r.status_code != 401 or code_of(r) != want:
                    failures.append(f"{op.label} {name}: {r.status_code} {r.text[:200]}")
                if r.status_code != 401 and name == "no key":
                    open_without_key.add(op.label)
            for caller in callers:
                r = await call(caller.http, op, values, body)
                cell = f"{op.label} as {caller.name}: {r.status_code} {r.text[:200]}"
                gated = gate_refusal(r) in GATE_CODES
                if r.status_code >= 500 or r.status_code == 401:
                    failures.append(cell)
                elif op.is_write and caller.name == "auditor":
                    if gate_refusal(r) != "auditor_read_only":
                        failures.append(f"auditor wrote: {cell}")
                elif op.label in GATES:
                    allowed = caller.name in GATES[op.label]
                    if allowed and gated:
                        failures.append(f"refused an allowed role: {cell}")
                    if not allowed and gate_refusal(r) != "role_missing":
                        failures.append(f"let a role through: {cell}")
                elif gated and not op.is_write:
                    failures.append(f"a read refused by role, gate unknown: {cell}")
    finally:
        await anonymous.aclose()
        await revoked.aclose()
    assert open_without_key == PUBLIC
    assert not failures, "\n".join(failures)


def test_gates_name_existing_operations(ops: list[Operation]) -> None:
    """The role table keeps up with the routes (a renamed route is not silently untested)."""
    labels = {op.label for op in ops}
    assert set(GATES) <= labels, set(GATES) - labels


# -- object matrix ---------------------------------------------------------------------------

OBJECT_PARAMS = ("invoice_id", "payable_id", "claim_id", "financing_id")


def parties() -> dict[str, set[str]]:
    """Who is party to each scenario object (SPEC §2 and backend/services/visibility.py)."""
    return {
        "invoice_id": {"A", "obligor"},
        "payable_id": {"A", "obligor", "agent"},
        "claim_id": {"A", "obligor", "agent", "financier"},
        "financing_id": {"A", "financier"},
        # The lineage tree: the payable's own parties.
        "GET /v1/payables/{payable_id}/tree": {"A", "obligor", "agent"},
    }


def identities(s: Scenario) -> dict[str, Member]:
    return {
        "A": s.a,
        "B": s.b,
        "obligor": s.core,
        "financier": s.financier,
        "agent": s.agent,
        "auditor": s.auditor,
    }


def object_values(s: Scenario) -> dict[str, Any]:
    values = {
        "invoice_id": s.invoice_id,
        "payable_id": s.payable_id,
        "claim_id": s.claim_id,
        "financing_id": s.financing_id,
    }
    return {k: v for k, v in values.items() if v is not None}


def object_ops(ops: list[Operation], s: Scenario) -> list[tuple[Operation, str]]:
    """Operations on one scenario object: (operation, the object's parameter)."""
    values = object_values(s)
    out = []
    for op in ops:
        names = op.path_names
        if len(names) == 1 and names[0] in OBJECT_PARAMS and names[0] in values:
            out.append((op, names[0]))
    return out


async def snapshot(s: Scenario, ops: list[Operation]) -> dict[str, Any]:
    """Each object as the auditor reads it."""
    values = object_values(s)
    seen = {}
    for op, param in object_ops(ops, s):
        if op.method == "GET" and op.path.endswith("{" + param + "}"):
            r = await s.auditor.get(op.url(values))
            seen[op.label] = r.json()
    return seen


async def test_object_reads_parties_and_auditors_only(
    scenario: Scenario, ops: list[Operation]
) -> None:
    s = scenario
    assert set(object_values(s)) == set(OBJECT_PARAMS), "the scenario made every object"
    values = object_values(s)
    who = identities(s)
    rules = parties()
    covered = set()
    failures = []
    for op, param in object_ops(ops, s):
        if op.method != "GET":
            continue
        covered.add(param)
        allowed = rules.get(op.label, rules[param]) | {"auditor"}
        for name, member in who.items():
            r = await member.http.get(op.url(values), params=op.required_query())
            ok = r.status_code == 200 if name in allowed else r.status_code == 404
            if not ok:
                failures.append(f"{op.label} as {name}: {r.status_code} {r.text[:200]}")
            elif name not in allowed:
                assert r.headers["content-type"].startswith("application/problem+json")
                assert str(r.json()["code"]).endswith("not_found"), r.text
    assert covered == set(values)
    assert not failures, "\n".join(failures)


async def test_lists_show_an_object_to_its_parties_only(
    scenario: Scenario, ops: list[Operation]
) -> None:
    s = scenario
    values = object_values(s)
    rules = parties()
    labels = {op.label for op in ops}
    checked = 0
    failures = []
    for op, param in object_ops(ops, s):
        list_path = op.path.removesuffix("/{" + param + "}")
        if op.method != "GET" or list_path == op.path or f"GET {list_path}" not in labels:
            continue
        checked += 1
        for name, member in identities(s).items():
            r = await member.get(list_path, limit=200)
            assert r.status_code == 200, r.text
            ids = {str(item["id"]) for item in r.json()["items"]}
            listed = str(values[param]) in ids
            if listed != (name in rules[param] | {"auditor"}):
                failures.append(f"GET {list_path} as {name}: listed={listed}")
    assert checked == len(values)
    assert not failures, "\n".join(failures)


async def test_non_parties_change_nothing(scenario: Scenario, ops: list[Operation]) -> None:
    s = scenario
    values = object_values(s)
    rules = parties()
    who = identities(s)
    before = await snapshot(s, ops)
    failures = []
    for op, param in object_ops(ops, s):
        if not op.is_write:
            continue
        for name in sorted(set(who) - rules[param] - {"auditor"}):
            member = who[name]
            body = op.body(
                claim_id=s.claim_id, to=member.address, amount=1, financier=member.address
            )
            r = await call(member.http, op, values, body)
            if r.status_code < 400 or r.status_code >= 500:
                failures.append(f"{op.label} as {name}: {r.status_code} {r.text[:200]}")
    assert await snapshot(s, ops) == before
    assert not failures, "\n".join(failures)


async def test_a_key_revoked_through_the_worker_stops_reading_at_once(
    api: Api, stack: Stack
) -> None:
    """Reads take their caller from the worker's cache (TIERFLOW_API_CALLER_CACHE_S), but a
    key revoked through the same worker is refused by the very next read, and so is a write."""
    member = await api.member("cached-key-holder", ["supplier"])
    rotated = await member.post(f"/v1/members/{member.address}/api-keys", {"label": "second"})
    assert rotated.status_code == 201, rotated.text
    for _ in range(3):  # the first looks the key up, the others are answered from the cache
        assert (await member.get("/v1/payables", limit=20)).status_code == 200
    key_id = member.key.split("_")[1]
    second = stack.client(rotated.json()["api_key"])
    try:
        r = await second.delete(f"/v1/members/{member.address}/api-keys/{key_id}")
        assert r.status_code == 200, r.text
    finally:
        await second.aclose()
    read = await member.get("/v1/payables", limit=20)
    assert read.status_code == 401, read.text
    assert code_of(read) == "invalid_api_key"
    write = await member.post(f"/v1/members/{member.address}/api-keys", {"label": "third"})
    assert write.status_code == 401, write.text
