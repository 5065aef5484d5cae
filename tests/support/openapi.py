"""The running server's own OpenAPI document, read as the API tests need it.

The API test families cover every operation the server describes at test time, so a route
that lands later is covered without touching the tests:

- :func:`fetch` reads ``/openapi.json`` from a running :class:`~bench.stack.Stack`;
- :func:`operations` lists every operation as an :class:`Operation` (method, path, its
  parameters and its request body schema, ``$ref``\\ s resolved);
- :func:`sample` makes the smallest *valid* instance of a JSON schema (the body a request
  schema accepts), with chosen values by property name (``buyer=...``);
- :meth:`Operation.url` fills the path template.

It knows the few string patterns the schemas use (addresses, 32-byte hashes, SHA-256 hex, key
ids); another pattern falls back to the schema's ``examples``.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from eth_utils.address import to_checksum_address

from bench.stack import Stack

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: A checksummed address that is no member (the OpenAPI's own example).
SOME_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#: An id no object has.
NO_ID = 2**62
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
_PATTERN_SAMPLES = {
    ADDRESS_PATTERN: SOME_ADDRESS,
    r"^0x[0-9a-fA-F]{64}$": "0x" + "ab" * 32,
    r"^[0-9a-fA-F]{64}$": "cd" * 32,
    r"^[0-9a-f]{12}$": "0123456789ab",
    r"^apr_[0-9a-f]{16}$": "apr_00000000000000ff",
    r"^int_[0-9a-f]{16}$": "int_00000000000000ff",
}


async def fetch(stack: Stack) -> dict[str, Any]:
    """The OpenAPI document the running server publishes."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30.0) as client:
        r = await client.get("/openapi.json")
    r.raise_for_status()
    doc: dict[str, Any] = r.json()
    return doc


def resolve(doc: Mapping[str, Any], schema: Any) -> Any:
    """``schema`` with every ``$ref`` replaced by what it points at (request schemas have no
    cycles)."""
    if isinstance(schema, list):
        return [resolve(doc, s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        merged = {**copy.deepcopy(target), **{k: v for k, v in schema.items() if k != "$ref"}}
        return resolve(doc, merged)
    return {k: resolve(doc, v) for k, v in schema.items()}


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # path, query, header
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: tuple[Parameter, ...]
    body_schema: dict[str, Any] | None
    body_required: bool

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS

    def params(self, location: str) -> list[Parameter]:
        return [p for p in self.parameters if p.location == location]

    @property
    def path_names(self) -> list[str]:
        return [p.name for p in self.params("path")]

    @property
    def takes_idempotency_key(self) -> bool:
        return any(p.name.lower() == "idempotency-key" for p in self.params("header"))

    def url(self, values: Mapping[str, Any]) -> str:
        """The path with ``{name}`` replaced by ``values[name]``."""
        path = self.path
        for name in self.path_names:
            path = path.replace("{" + name + "}", str(values[name]))
        return path

    def required_query(self, **chosen: Any) -> dict[str, Any]:
        """Valid values of the required query parameters (``chosen`` by name first)."""
        return {
            p.name: chosen[p.name] if p.name in chosen else sample(p.schema)
            for p in self.params("query")
            if p.required
        }

    def body(self, **chosen: Any) -> Any:
        """A valid body for this operation (None when it takes none)."""
        if self.body_schema is None:
            return None
        return sample(self.body_schema, **chosen)


def operations(doc: Mapping[str, Any]) -> list[Operation]:
    """Every operation of the document, in its order."""
    out = []
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            params = tuple(
                Parameter(p["name"], p["in"], bool(p.get("required")), resolve(doc, p["schema"]))
                for p in (resolve(doc, raw) for raw in op.get("parameters", []))
            )
            body = op.get("requestBody")
            schema = None
            if body is not None:
                schema = resolve(doc, body["content"]["application/json"]["schema"])
            out.append(
                Operation(
                    method.upper(),
                    path,
                    params,
                    schema,
                    bool(body and body.get("required")),
                )
            )
    return out


def absent_path_values(op: Operation) -> dict[str, Any]:
    """Path values naming nothing that exists: a fresh address, unused ids and hashes.

    (Path parameters lose the address pattern in FastAPI's schema; their title says it.)"""
    values: dict[str, Any] = {}
    for p in op.params("path"):
        pattern = p.schema.get("pattern")
        if p.schema.get("type") == "integer":
            values[p.name] = NO_ID
        elif pattern == ADDRESS_PATTERN or p.schema.get("title") == "Address":
            values[p.name] = to_checksum_address("0x" + secrets.token_hex(20))
        elif pattern == r"^0x[0-9a-fA-F]{64}$":
            values[p.name] = "0x" + "ee" * 32
        else:
            values[p.name] = sample(p.schema)
    return values


async def call(
    http: httpx.AsyncClient,
    op: Operation,
    path_values: Mapping[str, Any],
    body: Any = None,
    query: Mapping[str, Any] | None = None,
) -> httpx.Response:
    """Send ``op`` (with a fresh Idempotency-Key where it takes one)."""
    headers = Stack.idem() if op.takes_idempotency_key else {}
    return await http.request(
        op.method,
        op.url(path_values),
        json=body if op.body_schema is not None else None,
        params=dict(query) if query is not None else op.required_query(),
        headers=headers,
    )


def properties(schema: Mapping[str, Any]) -> set[str]:
    """The property names an object schema declares."""
    return set(schema.get("properties", {}))


def sample(schema: Mapping[str, Any], **chosen: Any) -> Any:
    """The smallest valid instance of ``schema``; object properties named in ``chosen`` get
    those values (at any depth), optional ones are left out unless chosen."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return copy.deepcopy(schema["default"])
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            options = [s for s in schema[combinator] if s.get("type") != "null"]
            return sample(options[0] if options else schema[combinator][0], **chosen)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return sample(merged, **chosen)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return {
            name: chosen[name] if name in chosen else sample(sub, **chosen)
            for name, sub in props.items()
            if name in required or name in chosen
        }
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [sample(schema.get("items", {}), **chosen) for _ in range(count)]
    if kind == "integer":
        if "exclusiveMinimum" in schema:
            return int(schema["exclusiveMinimum"]) + 1
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "string":
        return _string(schema)
    if kind == "null":
        return None
    raise ValueError(f"no sample for schema {schema!r}")


def _string(schema: Mapping[str, Any]) -> str:
    pattern = schema.get("pattern")
    if pattern in _PATTERN_SAMPLES:
        return _PATTERN_SAMPLES[pattern]
    if schema.get("format") == "date-time":
        return (datetime.now(UTC) + timedelta(days=365)).isoformat()
    examples = schema.get("examples")
    if examples:
        return str(examples[0])
    if pattern is not None:
        raise ValueError(f"no sample for pattern {pattern!r}")
    return "x" * max(1, int(schema.get("minLength", 1)))
