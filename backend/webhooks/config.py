"""The webhooks' settings, read from ``TIERFLOW_*`` variables.

======================================  =================================================
``TIERFLOW_WEBHOOK_KEY``                 the key sealing endpoints' signing secrets (AES-GCM):
                                         32 bytes, base64url; required outside the local chain
``TIERFLOW_WEBHOOKS_ALLOW_LOOPBACK``     allow loopback, private and link-local targets
                                         (default: on for the local chain only)
``TIERFLOW_WEBHOOKS_METRICS_PORT``       the dispatcher's Prometheus port (default 9465;
                                         0: none)
``TIERFLOW_WEBHOOKS_POLL_S``             how often the dispatcher looks at the outbox
                                         (default 0.05)
``TIERFLOW_WEBHOOKS_RETRY_FOR_S``        how long a delivery is retried before its endpoint
                                         is marked failing (default 90000: 25 hours)
``TIERFLOW_WEBHOOKS_TIMEOUT_S``          one attempt's timeout (default 10)
``TIERFLOW_WEBHOOKS_CONCURRENCY``        attempts in flight per dispatcher (default 64)
``TIERFLOW_WEBHOOKS_RETAIN_DAYS``        how long the outbox, finished deliveries and their
                                         attempts are kept (default 30; longer than the
                                         retries)
======================================  =================================================

On the local chain (id 31337), when ``TIERFLOW_WEBHOOK_KEY`` is unset, a random key is
generated once into ``<data_dir>/webhook.key`` (mode 0600), as the keystore password is.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from db.config import DatabaseSettings
from ledger.anvil import ANVIL_CHAIN_ID


class WebhookSettings(DatabaseSettings):
    """``TIERFLOW_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TIERFLOW_", extra="ignore")

    webhook_key: SecretStr | None = Field(
        default=None,
        description="the key sealing webhooks' signing secrets (AES-GCM; 32 bytes, base64url); "
        "required outside the local chain, where one is made in the data directory",
    )
    webhooks_allow_loopback: bool | None = Field(
        default=None,
        description="allow loopback, private and link-local webhook targets "
        "(unset: on for the local chain only)",
    )
    webhooks_metrics_port: int = Field(
        default=9465,
        ge=0,
        le=65535,
        description="the webhook dispatcher's Prometheus port (0: none)",
    )
    webhooks_poll_s: float = Field(
        default=0.05, gt=0, le=60, description="how often the dispatcher looks at the outbox"
    )
    webhooks_retry_for_s: float = Field(
        default=90_000.0,
        gt=0,
        description="how long a delivery is retried before its endpoint is marked failing",
    )
    webhooks_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="one delivery attempt's timeout"
    )
    webhooks_concurrency: int = Field(
        default=64, ge=1, le=1024, description="delivery attempts in flight per dispatcher"
    )
    webhooks_backoff_s: float = Field(
        default=5.0,
        gt=0,
        description="a failed delivery's first retry delay; each further one doubles (jittered)",
    )
    webhooks_max_backoff_s: float = Field(
        default=3600.0, gt=0, description="the longest delay between two delivery attempts"
    )
    webhooks_retain_days: float = Field(
        default=30.0,
        gt=0,
        description="days the webhook outbox, finished deliveries and their attempts are kept; "
        "longer than the retries",
    )

    @model_validator(mode="after")
    def _retention_outlasts_retries(self) -> WebhookSettings:
        if self.webhooks_retain_days * 86_400 <= self.webhooks_retry_for_s:
            raise ValueError(
                "TIERFLOW_WEBHOOKS_RETAIN_DAYS must be longer than TIERFLOW_WEBHOOKS_RETRY_FOR_S "
                f"({self.webhooks_retry_for_s:g} s): a delivery still retried must be kept"
            )
        return self

    @property
    def key_file(self) -> Path:
        return self.data_dir / "webhook.key"

    def allow_loopback(self, chain_id: int) -> bool:
        if self.webhooks_allow_loopback is not None:
            return self.webhooks_allow_loopback
        return chain_id == ANVIL_CHAIN_ID

    def sealing_key(self, chain_id: int) -> bytes:
        """The 32-byte key sealing secrets (see the module docstring); refuses to invent one
        outside the local chain."""
        if self.webhook_key is not None:
            return decode_key(self.webhook_key.get_secret_value())
        if chain_id != ANVIL_CHAIN_ID:
            raise ValueError(
                "TIERFLOW_WEBHOOK_KEY is required outside the local chain: it seals the "
                "webhooks' signing secrets (32 random bytes, base64url)"
            )
        path = self.key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
            try:
                os.link(tmp, path)  # atomic, and never replaces one another process made
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return decode_key(path.read_text().strip())


def decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ValueError("TIERFLOW_WEBHOOK_KEY is not base64url") from exc
    if len(key) != 32:
        raise ValueError("TIERFLOW_WEBHOOK_KEY must be 32 bytes (base64url)")
    return key


class WebhookRuntime:
    """What the API and the dispatcher need of the settings at run time: the sealer (its key
    read once) and whether loopback targets are allowed."""

    def __init__(self, settings: WebhookSettings, chain_id: int) -> None:
        from backend.webhooks.sealing import Sealer

        self.settings = settings
        self.chain_id = chain_id
        self.sealer = Sealer(settings.sealing_key(chain_id))
        self.allow_loopback = settings.allow_loopback(chain_id)
