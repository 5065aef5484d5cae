"""The OpenAPI document as a client (and Spectral's OWASP ruleset, ``.spectral.yaml``) needs it.

:func:`install` completes what FastAPI and :func:`backend.api.problems.document_problems`
generate:

- the bearer scheme (``Authorization: Bearer tf_<id>_<secret>``) on every operation that
  authenticates its caller (found from the route's dependencies, so a new route is covered by
  itself), an explicit empty ``security`` on the public ones (``/health``, ``/metrics``,
  ``/v1/deployment``), and their 401, 403 and 429 (with ``Retry-After``) answers;
- ``X-RateLimit-Limit`` on every 2XX and 4XX answer (the requests a minute an API key may
  make, ``TIERFLOW_API_RATE_LIMIT``, which the API sends on every answer);
- integers as integers: FastAPI's OpenAPI model holds ``minimum``/``maximum`` as floats, so
  2^128 − 1 came out as ``3.402823669209385e+38``; they are restored exactly, and every
  integer carries a ``format`` (``int32``, ``int64``, or ``uint128`` for amounts) and bounds;
- bounds where a schema states none: a string is never longer than the largest request body
  (``TIERFLOW_API_MAX_BODY``), an integer the API speaks of is a count, an id, a block or a
  time (0 … 2^63 − 1), and a list answer holds at most :data:`MAX_ITEMS` entries (pages hold
  200; a lineage tree is cut to its node budget).
"""

from __future__ import annotations

import re
import re._constants as sre_constants
import re._parser as sre_parse
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from backend.api.deps import get_caller

BEARER = "bearerAuth"
INT64_MAX = 2**63 - 1
UINT128_MAX = 2**128 - 1
#: Floats FastAPI's model turned our exact bounds into, back to the integers they were.
EXACT = {float(v): v for v in (INT64_MAX, UINT128_MAX, 2**64 - 1, 2**256 - 1)}
MAX_ITEMS = 100_000
#: An ISO 8601 time with a zone and microseconds is 32 characters; longer is never one.
DATE_TIME_MAX = 64
RATE_LIMIT_HEADER = "X-RateLimit-Limit"


def needs_caller(dependant: Dependant) -> bool:
    """Whether the route authenticates its caller (``get_caller`` among its dependencies)."""
    return any(dep.call is get_caller or needs_caller(dep) for dep in dependant.dependencies)


def _operations(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant]]:
    """``(path, methods, dependant)`` of every documented route, routers' prefixes included."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            dependant = getattr(context, "dependant", None) or route.dependant
            yield context.path_format or route.path_format, context.methods or set(), dependant


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    if headers:
        response["headers"] = headers
    return response


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in the document (schemas, and others the callers filter out)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def _exact(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return EXACT.get(value, int(value))
    return value


def _pattern_width(pattern: str | None) -> int | None:
    """The longest string an anchored pattern (``^…$``) matches, if bounded."""
    if not pattern or not pattern.startswith("^") or not pattern.endswith("$"):
        return None
    if pattern.endswith("\\$"):
        return None
    try:
        width = sre_parse.parse(pattern).getwidth()[1]
    except re.error:
        return None
    return width if width < sre_constants.MAXREPEAT else None


def _bound(schema: dict[str, Any], max_string: int) -> None:
    kind = schema.get("type")
    if kind == "integer":
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if key in schema:
                schema[key] = _exact(schema[key])
        if "minimum" not in schema and "exclusiveMinimum" not in schema:
            schema["minimum"] = 0
        if "maximum" not in schema and "exclusiveMaximum" not in schema:
            schema["maximum"] = INT64_MAX
        top = int(schema.get("maximum", schema.get("exclusiveMaximum", 0)))
        bottom = int(schema.get("minimum", schema.get("exclusiveMinimum", 0)))
        if "format" not in schema:
            if top <= 2**31 - 1 and bottom >= -(2**31):
                schema["format"] = "int32"
            elif top <= INT64_MAX:
                schema["format"] = "int64"
            else:
                schema["format"] = "uint128"
    elif kind == "string":
        if not ({"maxLength", "enum", "const"} & set(schema)):
            schema["maxLength"] = _pattern_width(schema.get("pattern")) or (
                DATE_TIME_MAX if schema.get("format") == "date-time" else max_string
            )
    elif kind == "array" and "maxItems" not in schema:
        schema["maxItems"] = MAX_ITEMS


def complete(doc: dict[str, Any], app: FastAPI, rate_limit: int, max_body: int) -> None:
    """Complete ``doc`` (the document of ``app``) in place; see the module docstring."""
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key `tf_<id>_<secret>`: the operator's is shown once at first "
        "start (or set with TIERFLOW_OPERATOR_API_KEY); members get theirs when onboarded.",
    }
    limit_header: dict[str, dict[str, Any]] = {
        RATE_LIMIT_HEADER: {
            "description": "requests a minute an API key may make (TIERFLOW_API_RATE_LIMIT)",
            "schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 2**31 - 1},
        }
    }
    retry_after = {
        "Retry-After": {
            "description": "seconds to wait before trying again",
            "schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 86_400},
        }
    }
    for path, methods, dependant in _operations(app):
        item = doc.get("paths", {}).get(path, {})
        for method in methods:
            operation = item.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if needs_caller(dependant):
                operation["security"] = [{BEARER: []}]
                responses.setdefault("401", _problem("No API key, or one that is not valid"))
                responses.setdefault(
                    "403", _problem("The caller's roles or party do not allow this")
                )
                responses.setdefault(
                    "429", _problem("Too many requests for this API key", dict(retry_after))
                )
            else:
                operation["security"] = []
            responses.setdefault("500", _problem("An internal error (an incident id to quote)"))
            for status, response in responses.items():
                if status[0] in "24" and "$ref" not in response:
                    response.setdefault("headers", {}).update(limit_header)
    for schema in _schemas(doc):
        _bound(schema, max_body)
    if rate_limit:  # the header's example is this server's setting
        limit_header[RATE_LIMIT_HEADER]["example"] = rate_limit


def install(app: FastAPI, rate_limit: int, max_body: int) -> None:
    """Make ``app.openapi()`` return the completed document (computed once)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    done: list[bool] = []

    def openapi() -> dict[str, Any]:
        doc = generate()
        if not done:
            complete(doc, app, rate_limit, max_body)
            done.append(True)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
