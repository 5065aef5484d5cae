"""The app matches a request in one pass over its own routes (``backend.app._add_routes``):
every resource router's routes are the app's, in order, and no router is kept as a branch
that a request would be matched against twice (FastAPI's ``include_router``)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Match, Mount, Route

from backend.api.routes import claims, console, payables, system
from backend.app import create_app


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_every_route_is_the_apps_own_no_router_branch() -> None:
    app = create_app()
    routes = app.router.routes
    assert all(isinstance(r, Route | Mount) for r in routes), [type(r) for r in routes]
    for module in (system, payables, claims, console):
        mine = [r for r in routes if r in module.router.routes]
        assert mine == module.router.routes  # all of them, in the router's order


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("GET", "/v1/claims/7", "get_claim"),
        ("GET", "/v1/payables", "list_payables"),
        ("GET", "/v1/payables/3/tree", "get_payable_tree"),
    ],
)
def test_a_read_is_matched_once_by_its_route(method: str, path: str, endpoint: str) -> None:
    app = create_app()
    full = [r for r in app.router.routes if r.matches(_scope(method, path))[0] == Match.FULL]
    assert len(full) == 1
    assert isinstance(full[0], APIRoute)
    assert full[0].endpoint.__name__ == endpoint
