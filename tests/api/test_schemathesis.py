"""Schemathesis against the running server's own OpenAPI document (every operation in it).

Each operation gets generated requests with the operator's API key and a fresh
``Idempotency-Key``, in three passes:

- positive data with generated parameters (ids mostly name nothing: 404s and refusals);
- positive data with the path parameters bound to the objects of a real scenario
  (:mod:`tests.support.scenario`), so success bodies are checked too;
- negative data (values outside the schema).

Every response must be no server error (``not_a_server_error``), have a documented status and
content type, and a body matching the documented schema; negative data must be refused with a
4xx (``negative_data_rejection``), except a number given for a date-time, which the API takes
as UNIX seconds (pydantic's datetime does; the document says only ISO 8601). The stack is
this module's own, with a rate limit high enough not to answer 429 to the fuzzer. Budgets
are small here (the run stays well under 90 s); ``@pytest.mark.slow`` runs a larger one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from bench.stack import Stack
from tests.support import openapi
from tests.support.api import Api
from tests.support.scenario import Scenario, build

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
FAST_EXAMPLES = 6
#: ``Authorization`` as the bearer scheme has it (RFC 6750's token68 after ``Bearer``).
BEARER_CREDENTIAL = re.compile(r"Bearer [A-Za-z0-9\-._~+/]+=*")
SLOW_EXAMPLES = 60


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """This module's platform: the fuzzer sends hundreds of requests a minute on one key."""
    extra = {"TIERFLOW_API_RATE_LIMIT": "1000000"}
    async with Stack.start(tmp_path_factory.mktemp("fuzz"), extra_env=extra) as running:
        yield running


@pytest.fixture(scope="module")
async def scenario(api: Api) -> Scenario:
    return await build(api)


@dataclass
class Outcome:
    """What a pass did: the operations run, the cases sent, the failures found."""

    operations: list[str] = field(default_factory=list)
    cases: dict[str, int] = field(default_factory=dict)
    unsatisfiable: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def report(self) -> str:
        return "\n\n".join(self.failures)


def run(
    stack: Stack,
    mode: GenerationMode,
    examples: int,
    bound: dict[str, Any] | None = None,
) -> Outcome:
    """Every operation of the server's OpenAPI, ``examples`` cases each, all checks.

    With ``bound``, only the operations whose path parameters are all in it run, with those
    values."""
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    doc = requests.get(f"{stack.base_url}/openapi.json", timeout=30).json()
    ops = {op.label: op for op in openapi.operations(doc)}
    outcome = Outcome()
    auth = {"Authorization": f"Bearer {stack.operator_key}"}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            names = [p.name for p in operation.path_parameters]
            path_values = None
            if bound is not None:
                if not names or any(n not in bound for n in names):
                    continue
                path_values = {n: bound[n] for n in names}
            outcome.operations.append(label)
            outcome.cases[label] = 0
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_values)
            try:
                _exercise(
                    label, strategy, examples, session, auth, outcome, time_fields(ops.get(label))
                )
            except Unsatisfiable:
                outcome.unsatisfiable.append(label)
            except Exception as exc:
                outcome.failures.append(f"{label}:\n{exc}")
    return outcome


def _is_time(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(o.get("format") == "date-time" for o in options)


def time_fields(op: openapi.Operation | None) -> tuple[set[str], set[str]]:
    """The operation's date-time query parameters and top-level body properties."""
    if op is None:
        return set(), set()
    query = {p.name for p in op.params("query") if _is_time(p.schema)}
    props = (op.body_schema or {}).get("properties", {})
    return query, {name for name, sub in props.items() if _is_time(sub)}


def _numeric(value: Any) -> bool:
    if isinstance(value, list | tuple):
        # A query parameter given more than once: the API reads the last one.
        return bool(value) and _numeric(value[-1])
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def unix_seconds_for_a_time(case: Case[Any], times: tuple[set[str], set[str]]) -> bool:
    """A number where the schema says date-time: the API takes it as UNIX seconds (pydantic's
    datetime does), a documented leniency the negative check would call acceptance."""
    query = case.query or {}
    body = case.body if isinstance(case.body, dict) else {}
    return any(_numeric(query.get(n)) for n in times[0] if n in query) or any(
        _numeric(body.get(n)) for n in times[1] if n in body
    )


def _exercise(
    label: str,
    strategy: Any,
    examples: int,
    session: requests.Session,
    auth: dict[str, str],
    outcome: Outcome,
    times: tuple[set[str], set[str]],
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Case[Any]) -> None:
        if unix_seconds_for_a_time(case, times):
            reject()
        outcome.cases[label] += 1
        negative_headers = bool(case.meta and case.meta.is_negative_at(ParameterLocation.HEADER))
        # A negative case whose Authorization is the negative part (left out, or not a bearer
        # credential) is sent with it as generated: the operator's key put in its place made
        # the API serve the request, and the check called that acceptance (seen when the
        # case's other negative part, a query value, was one a URL cannot carry).
        sent: dict[str, Any] = dict(case.headers or {})
        generated = sent.get("Authorization")
        own_auth = negative_headers and (
            generated is None or not BEARER_CREDENTIAL.fullmatch(str(generated))
        )
        headers = {} if own_auth else dict(auth)
        if not negative_headers:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        case.call_and_validate(session=session, headers=headers, checks=CHECKS)

    check()


def scenario_ids(s: Scenario) -> dict[str, Any]:
    values = {
        "address": s.a.address,
        "obligor": s.core.address,
        "invoice_id": s.invoice_id,
        "payable_id": s.payable_id,
        "claim_id": s.claim_id,
        "financing_id": s.financing_id,
        "key_id": s.a.key.split("_")[1],
    }
    return {k: v for k, v in values.items() if v is not None}


def test_positive_data_every_operation(stack: Stack, scenario: Scenario) -> None:
    outcome = run(stack, GenerationMode.POSITIVE, FAST_EXAMPLES)
    assert len(outcome.operations) >= 40, outcome.operations
    assert not outcome.unsatisfiable
    assert all(n >= 1 for n in outcome.cases.values()), outcome.cases
    assert not outcome.failures, outcome.report()


def test_positive_data_on_real_objects(stack: Stack, scenario: Scenario) -> None:
    outcome = run(stack, GenerationMode.POSITIVE, FAST_EXAMPLES, bound=scenario_ids(scenario))
    assert {"GET /v1/claims/{claim_id}", "GET /v1/members/{address}"} <= set(outcome.operations)
    assert not outcome.failures, outcome.report()


def test_negative_data_refused_with_4xx(stack: Stack, scenario: Scenario) -> None:
    outcome = run(stack, GenerationMode.NEGATIVE, FAST_EXAMPLES)
    # Only operations without any input have no negative data.
    negated = [label for label, n in outcome.cases.items() if n]
    assert len(negated) >= 30, outcome.cases
    assert not outcome.failures, outcome.report()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_larger_budget(stack: Stack, scenario: Scenario, mode: GenerationMode) -> None:
    outcome = run(stack, mode, SLOW_EXAMPLES)
    assert not outcome.failures, outcome.report()
    bound = run(stack, mode, SLOW_EXAMPLES, bound=scenario_ids(scenario))
    assert not bound.failures, bound.report()
