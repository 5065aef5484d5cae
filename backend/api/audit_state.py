"""What a mutating request's audit record is made of, carried in the request's scope.

The guard middleware puts a :class:`RequestAudit` in the ASGI scope's ``state`` (so
``request.state`` holds it for the routes and their dependencies); the authentication
dependency fills in who is calling, the problem handlers the refusal's code, and the write's
:class:`~backend.ports.WriteContext` shares its list of mined transactions. No context
variable: the scope is the request's own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

STATE_KEY = "tierflow_audit"


@dataclass
class RequestAudit:
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    member: str | None = None
    api_key_id: str | None = None
    code: str | None = None
    txs: list[str] = field(default_factory=list)


def attach(scope: dict[str, Any] | Any, audit: RequestAudit) -> None:
    """Put ``audit`` in ``scope``'s state (the request's own copy)."""
    scope.setdefault("state", {})[STATE_KEY] = audit


def request_audit(request: Request) -> RequestAudit | None:
    """The audit record of ``request`` (``None`` outside the middleware)."""
    state = request.scope.get("state") or {}
    found = state.get(STATE_KEY)
    return found if isinstance(found, RequestAudit) else None
