"""The OpenAPI document passes Spectral's OWASP API Security ruleset (``.spectral.yaml``) with
no error, and says what a client needs: the bearer scheme on every authenticated operation,
401/403/429 answers, the rate-limit headers, exact integer bounds (2^128 − 1 as an integer,
not a float) and a format on every integer.

The document is built from the application itself (no server: ``app.openapi()``); Spectral
is the npm devDependency ``@stoplight/spectral-cli`` (``npm ci`` installs it).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.app import create_app
from backend.config import ApiSettings
from ledger.bindings import MAX_AMOUNT
from ledger.paths import node_bin

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {("/health", "get"), ("/metrics", "get"), ("/v1/deployment", "get")}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(ApiSettings(data_dir=tmp_path_factory.mktemp("openapi")))
    doc: dict[str, Any] = app.openapi()
    return doc


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            yield node
        for value in node.values():
            yield from schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from schemas(value)


def test_spectral_owasp_finds_no_error(document: dict[str, Any], tmp_path: Path) -> None:
    spectral = node_bin("spectral")
    assert spectral.exists(), f"{spectral} is missing: run `npm ci` (package.json devDependencies)"
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(document))
    report = tmp_path / "lint.json"
    done = subprocess.run(
        [
            str(spectral), "lint", str(source),
            "--ruleset", str(ROOT / ".spectral.yaml"),
            "--format", "json", "--output", str(report),
            "--fail-severity", "error",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert report.exists(), done.stdout + done.stderr
    results = json.loads(report.read_text() or "[]")
    errors = [
        f"{r['code']} at {'.'.join(map(str, r['path']))}" for r in results if r["severity"] == 0
    ]
    assert not errors, "\n".join(errors[:50])
    assert done.returncode == 0, done.stdout + done.stderr


def test_bearer_scheme_on_every_authenticated_operation(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for path, method, operation in operations(document):
        if (path, method) in PUBLIC:
            assert operation["security"] == [], (path, method)
            continue
        if path.startswith("/console"):
            continue  # the console's pages authenticate with their session cookie
        assert operation["security"] == [{"bearerAuth": []}], (path, method)
        responses = operation["responses"]
        assert {"401", "403", "429"} <= set(responses), (path, method)
        assert "Retry-After" in responses["429"]["headers"]
    advance = document["paths"]["/v1/dev/advance-time"]["post"]
    assert advance["security"] == [{"bearerAuth": []}]


def test_rate_limit_header_on_every_2xx_and_4xx(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "24":
                assert "X-RateLimit-Limit" in response.get("headers", {}), (path, method, status)


def test_integers_are_exact_bounded_and_formatted(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert "e+38" not in text, "a bound written as a float"
    assert "e+18" not in text, "a bound written as a float"
    integers = [s for s in schemas(document) if s["type"] == "integer"]
    assert integers
    for schema in integers:
        assert schema.get("format") in {"int32", "int64", "uint128"}, schema
        assert isinstance(schema.get("minimum", schema.get("exclusiveMinimum")), int), schema
        assert isinstance(schema.get("maximum", schema.get("exclusiveMaximum")), int), schema
    assert any(s.get("maximum") == MAX_AMOUNT and s["format"] == "uint128" for s in integers)
