"""What a mutating request's audit record is made of, carried in the request's scope.

The guard middleware puts a :class:`RequestAudit` in the ASGI scope's ``state`` (so
``request.state`` holds it for the routes and their dependencies); the authentication
dependency fills in who is calling, the problem handlers the refusal's code, and the write's
:class:`~backend.ports.WriteContext` shares its list of mined transactions. No context
variable: the scope is the request's own.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from backend.audit_log import Entry

STATE_KEY = "tierflow_audit"


@dataclass
class RequestAudit:
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    method: str = ""
    path: str = ""
    idempotency_key: str | None = None
    member: str | None = None
    api_key_id: str | None = None
    code: str | None = None
    txs: list[str] = field(default_factory=list)
    #: Not recorded one by one (a flood without a key over its limit: counted instead).
    unrecorded: bool = False
    #: Already appended, in the transaction that stored a keyed write's answer
    #: (:class:`backend.idempotency.Finishing`): the middleware appends no second record.
    recorded: bool = False
    #: Seconds a refused client is told to wait (429 answered by the middleware).
    retry_after: int | None = None
    #: SHA-256 of the body as read so far (the whole body once the route runs).
    body: Any = field(default_factory=hashlib.sha256)

    def entry(self, status: int) -> Entry:
        """The audit record of this request answered with ``status``."""
        return Entry(
            method=self.method,
            path=self.path,
            status=status,
            request_sha256=self.body.hexdigest(),
            member=self.member,
            api_key_id=self.api_key_id,
            code=self.code,
            idempotency_key=self.idempotency_key,
            tx_hashes=tuple(self.txs),
            request_id=self.request_id,
        )


def attach(scope: dict[str, Any] | Any, audit: RequestAudit) -> None:
    """Put ``audit`` in ``scope``'s state (the request's own copy)."""
    scope.setdefault("state", {})[STATE_KEY] = audit


def request_audit(request: Request) -> RequestAudit | None:
    """The audit record of ``request`` (``None`` outside the middleware)."""
    state = request.scope.get("state") or {}
    found = state.get(STATE_KEY)
    return found if isinstance(found, RequestAudit) else None


CALLER_KEY = "tierflow_caller"


def remember_caller(scope: dict[str, Any] | Any, caller: Any) -> None:
    """Keep the caller the middleware authenticated in ``scope``'s state."""
    scope.setdefault("state", {})[CALLER_KEY] = caller


def known_caller(request: Request) -> Any:
    """The caller the middleware authenticated for ``request`` (``None``: not done)."""
    state = request.scope.get("state") or {}
    return state.get(CALLER_KEY)
