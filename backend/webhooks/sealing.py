"""Endpoints' signing secrets at rest: AES-256-GCM under the webhook key (never beside the
database), a fresh 96-bit nonce each, the endpoint's id as associated data (a sealed secret
copied onto another endpoint does not open)."""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "whsec_"


def new_secret() -> str:
    """A signing secret to hand out once (``whsec_`` + 32 random bytes, base64url)."""
    return PREFIX + secrets.token_urlsafe(32)


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, secret: str, endpoint_id: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), endpoint_id.encode())
        return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, endpoint_id: str) -> str:
        version, _, body = sealed.partition(".")
        if version != "v1":
            raise ValueError("unknown sealed-secret version")
        raw = base64.urlsafe_b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], endpoint_id.encode()).decode()
        except InvalidTag as exc:
            raise ValueError(
                "a webhook secret does not open under this TIERFLOW_WEBHOOK_KEY"
            ) from exc
