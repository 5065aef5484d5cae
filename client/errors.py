"""Every exception the client raises, under one root: :class:`TierflowError`.

::

    TierflowError
    ├── TransportError            the API could not be reached (connect, timeout, dropped),
    │                             after the bounded retries
    ├── ProblemError              the API refused: RFC 9457 problem details
    │   │                         (``status``, ``code``, ``detail``, ``body``)
    │   ├── Invalid               400, 413, 415, 422: the request itself is wrong
    │   ├── Unauthorized          401: no API key, or not a valid one
    │   ├── Forbidden             403: the role or the party is wrong
    │   ├── NotFound              404: absent, or not visible to the caller
    │   ├── Conflict              409: the object's state does not allow it
    │   ├── RateLimited           429 (``retry_after`` seconds)
    │   ├── ServerError           500 and other 5xx
    │   └── Unavailable           502, 503, 504 (``retry_after`` when the API gave one)
    ├── ResponseError             an answer the client cannot read (not JSON, wrong shape)
    ├── PendingError              a write the API accepted but has not executed yet
    │   ├── SignatureRequired     a ``self`` member's write awaits a signature and the client
    │   │                         has no signer (``intent``)
    │   └── ApprovalPending       dual control: the write waits for a checker (``pending``,
    │                             a :class:`~client.PendingApproval` to poll)
    ├── IntentRejected            an intent the client refused to sign: it does not say what
    │                             its plain fields say, or is for another deployment or key
    ├── SigningDeclined           the ``confirm`` hook said no
    └── SignerError               the key could not sign (key file, PKCS#11 token, PIN, label)

A write the chain may have executed is never reported as a plain failure by the client: a
network error or a 503 is retried with the same ``Idempotency-Key`` (bounded), and when the
retries run out the :class:`TransportError` or :class:`Unavailable` carries that key
(``idempotency_key``), so the caller can ask again and get the write's real outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.intents import Intent
    from client.pending import PendingApproval

__all__ = [
    "ApprovalPending",
    "Conflict",
    "Forbidden",
    "IntentRejected",
    "Invalid",
    "NotFound",
    "PendingError",
    "ProblemError",
    "RateLimited",
    "ResponseError",
    "ServerError",
    "SignatureRequired",
    "SignerError",
    "SigningDeclined",
    "TierflowError",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "problem_error",
]


class TierflowError(Exception):
    """The root of every error this package raises."""


class TransportError(TierflowError):
    """The request could not be completed over the network (after the retries)."""

    def __init__(self, message: str, *, idempotency_key: str | None = None) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key


class ProblemError(TierflowError):
    """The API answered an error: ``status``, a stable ``code``, a ``detail`` for people and
    the whole problem document as ``body``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.body: dict[str, Any] = body if body is not None else {}
        self.idempotency_key = idempotency_key


class Invalid(ProblemError):
    """400, 413, 415 or 422: the request is malformed or its values are refused."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The field errors of a 422 ``invalid_request`` (``loc``, ``msg``, ``type``)."""
        found = self.body.get("errors")
        return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


class Unauthorized(ProblemError):
    """401: no API key, or one that is unknown or revoked."""


class Forbidden(ProblemError):
    """403: the caller lacks the role, or is not the party this needs."""


class NotFound(ProblemError):
    """404: no such object, or one the caller may not see."""


class Conflict(ProblemError):
    """409: the object's state (or the chain's rules) does not allow it now."""


class _RetryAfter(ProblemError):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, detail, body, idempotency_key=idempotency_key)
        self.retry_after = retry_after


class RateLimited(_RetryAfter):
    """429: too many requests for this API key; ``retry_after`` seconds to wait."""


class ServerError(ProblemError):
    """500 (or another 5xx that is not an outage): the API failed; quote ``detail``."""


class Unavailable(_RetryAfter):
    """502, 503 or 504: a dependency (node, database, indexer) is down or a transaction was not
    mined in time; retry with the same ``idempotency_key`` after ``retry_after`` seconds."""


class ResponseError(TierflowError):
    """The API answered something the client cannot read as the documented representation."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class PendingError(TierflowError):
    """The API accepted the write (``202``) but has not executed it."""


class SignatureRequired(PendingError):
    """A ``self`` member's write waits for the member's signature and this client has no
    :class:`~client.signing.Signer`: sign ``intent`` elsewhere (or configure a signer and call
    :meth:`~client.TierflowClient.sign_intent`)."""

    def __init__(self, intent: Intent) -> None:
        super().__init__(f"intent {intent.id} awaits a signature (expires {intent.expires_at})")
        self.intent = intent


class ApprovalPending(PendingError):
    """Dual control: a checker of the member must approve this write first. ``pending`` polls
    for the outcome (:meth:`~client.PendingApproval.wait`)."""

    def __init__(self, pending: PendingApproval[Any]) -> None:
        super().__init__(f"approval {pending.approval_id} awaits a checker")
        self.pending = pending


class IntentRejected(TierflowError):
    """An intent this client will not sign; ``reason`` says which check failed."""

    def __init__(self, reason: str, *, intent_id: str | None = None) -> None:
        prefix = f"intent {intent_id}: " if intent_id else ""
        super().__init__(prefix + reason)
        self.reason = reason
        self.intent_id = intent_id


class SigningDeclined(TierflowError):
    """The ``confirm`` hook declined the decoded action; nothing was signed or sent."""

    def __init__(self, intent_id: str) -> None:
        super().__init__(f"signing intent {intent_id} was declined")
        self.intent_id = intent_id


class SignerError(TierflowError):
    """The signer could not sign: a key file or password, a PKCS#11 module, token, PIN or key
    label that is wrong, or a signature that does not recover to the signer's address."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: Invalid,
    415: Invalid,
    422: Invalid,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def problem_error(
    status: int,
    body: Any,
    *,
    retry_after: float | None = None,
    idempotency_key: str | None = None,
) -> ProblemError:
    """The exception for an error answer: by status, with the problem document's ``code`` and
    ``detail`` (an answer that is not problem+json gets ``code`` ``http_<status>``)."""
    document: dict[str, Any] = body if isinstance(body, dict) else {}
    code = document.get("code")
    detail = document.get("detail")
    if not isinstance(code, str) or not code:
        code = f"http_{status}"
    if not isinstance(detail, str):
        detail = str(body)[:500] if body not in (None, "", {}) else f"HTTP {status}"
    kind = _BY_STATUS.get(status)
    if kind is None:
        kind = ServerError if status >= 500 else ProblemError
    if issubclass(kind, _RetryAfter):
        if retry_after is None and isinstance(document.get("retry_after"), int | float):
            retry_after = float(document["retry_after"])
        return kind(
            status,
            code,
            detail,
            document,
            idempotency_key=idempotency_key,
            retry_after=retry_after,
        )
    return kind(status, code, detail, document, idempotency_key=idempotency_key)
