"""Verifying the webhook deliveries a member receives (SPEC §4).

Each delivery carries ``Tierflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>``. :func:`verify_webhook` recomputes the HMAC over the raw body exactly as
received (before any JSON parsing), compares in constant time, accepts any of several ``v1``
values (the platform signs with both secrets while one is rotated), and refuses a timestamp
outside ``tolerance_s`` of now, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from client.errors import TierflowError

__all__ = ["SIGNATURE_HEADER", "WebhookVerificationError", "sign_webhook", "verify_webhook"]

#: The header that carries the signature.
SIGNATURE_HEADER = "Tierflow-Signature"


class WebhookVerificationError(TierflowError):
    """A delivery whose signature is missing, malformed, wrong or outside the time window."""


def _mac(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_webhook(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``Tierflow-Signature`` header value for ``body`` (what the platform sends; for
    tests of a receiver)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_webhook(
    secret: str | bytes | list[str | bytes],
    header: str | None,
    body: bytes | str,
    tolerance_s: int = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's ``Tierflow-Signature`` ``header`` against its raw ``body`` and answer
    the event (the parsed body). ``secret`` may be a list (a receiver that rotates its own
    secrets). Raises :class:`WebhookVerificationError` otherwise."""
    if not header:
        raise WebhookVerificationError(f"no {SIGNATURE_HEADER} header")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookVerificationError(f"malformed {SIGNATURE_HEADER} header")
        if name == "t":
            if timestamp is not None or not value.isdigit():
                raise WebhookVerificationError("the signature's timestamp is not one number")
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value.lower())
        # Other schemes (v0, a future v2) are ignored: only v1 is trusted.
    if timestamp is None:
        raise WebhookVerificationError("the signature has no timestamp")
    if not candidates:
        raise WebhookVerificationError("the signature has no v1 value")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError(
            f"the signature's timestamp is {int(current - timestamp)} s from now, more than "
            f"{tolerance_s} s: a replay, or a clock far off"
        )
    secrets = secret if isinstance(secret, list) else [secret]
    expected = [_mac(s, timestamp, raw) for s in secrets]
    matched = False
    for want in expected:
        for got in candidates:
            # Every pair is compared, so the time taken says nothing about which matched.
            matched |= hmac.compare_digest(want, got)
    if not matched:
        raise WebhookVerificationError("no v1 signature matches the body and the secret")
    try:
        event: dict[str, Any] = json.loads(raw)
    except ValueError as exc:
        raise WebhookVerificationError("the signed body is not JSON") from exc
    return event
