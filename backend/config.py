"""The API's settings, read from ``TIERFLOW_*`` variables (SPEC §5).

==================================  =====================================================
``TIERFLOW_API_HOST``               address the API listens on (default 127.0.0.1)
``TIERFLOW_API_PORT``               HTTP API port (default 8000)
``TIERFLOW_API_WORKERS``            uvicorn worker processes of ``tierflow serve`` (default 1)
``TIERFLOW_API_WORKER_PING_S``     with several workers, how long a worker may leave
                                    uvicorn's liveness ping unanswered before it is killed
                                    and replaced (default 60; uvicorn's own 5 s kills a
                                    worker still booting on a loaded host, again and again)
``TIERFLOW_API_RATE_LIMIT``         requests per minute per member, all its keys (default 1200)
``TIERFLOW_API_KEYLESS_LIMIT``      write attempts per minute per client address without a
                                    valid API key (default 120)
``TIERFLOW_API_MAX_BODY``           largest request body in bytes (default 65536)
``TIERFLOW_API_MIRROR_WAIT_S``      how long a write waits for the mirror to show it
                                    (default 15)
``TIERFLOW_API_CALLER_CACHE_S``     how long a worker answers reads from a key it checked
                                    without looking it up again (default 2; 0: never). A key
                                    revoked or a member changed through another worker, or on
                                    chain, shows in this worker's reads within it
``TIERFLOW_API_NODE_TIMEOUT_S``     how long one request to the node may take before the API
                                    answers 503 ``chain_unavailable`` (default 5)
``TIERFLOW_API_NODE_UNAVAILABLE_S``  how long a write keeps retrying a node it cannot reach
                                    before it answers 503 (default 10)
``TIERFLOW_API_RECEIPT_TIMEOUT_S``  how long a write waits to be mined before it answers
                                    503 ``transaction_pending`` (default 30)
``TIERFLOW_API_AUDIT_SWEEP_AFTER_S``  how old an ``audit_pending`` row (a request that
                                    broadcast and never answered) gets before it is recorded
                                    as ``request_interrupted`` (default 120)
``TIERFLOW_API_ANCHOR_INTERVAL_S``    how often the audit log's head is anchored on
                                    chain when it changed (default 30, at most 60: SPEC AP-3)
``TIERFLOW_API_INDEXER_STALE_S``    an indexer heartbeat older than this makes /health
                                    ``degraded`` (default 10)
``TIERFLOW_API_MAX_LAG_BLOCKS``     a mirror further behind makes /health ``degraded``
                                    (default 10)
``TIERFLOW_API_IDEMPOTENCY_LEASE_S``  how long a claimed Idempotency-Key belongs to a worker
                                    that stopped renewing it (it died) before a retry takes
                                    it over (default 30)
``TIERFLOW_OPERATOR_API_KEY``       the operator's API key when set at first start
``TIERFLOW_CONSOLE_SESSION_TTL_S``  how long a console sign-in lasts, in seconds (default
                                    28800: a working day); then the browser signs in again
``TIERFLOW_INTENT_TTL_S``           chain seconds a ``self`` member's intent stays signable
                                    (default 900)
``TIERFLOW_KEYSTORE_SECRET``        secret the hosted members' keys are encrypted under
                                    (``TIERFLOW_KEYSTORE_PASSWORD``: its older name)
==================================  =====================================================

plus the node's (:class:`ledger.config.NodeSettings`) and the database's
(:class:`db.config.DatabaseSettings`).

The keystore secret has no default outside the local chain: the API refuses to start without
``TIERFLOW_KEYSTORE_SECRET`` there (the hosted keys are in the database, so their secret must
never sit beside it). On the local chain (id 31337), when it is unset, a random one is
generated once into ``<data_dir>/keystore.password`` (mode 0600).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from db.config import DatabaseSettings
from ledger.anvil import ANVIL_CHAIN_ID
from ledger.config import NodeSettings


class ApiSettings(NodeSettings, DatabaseSettings):
    """The API process's settings; ``TIERFLOW_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TIERFLOW_", extra="ignore")

    api_host: str = Field(default="127.0.0.1", description="address the API listens on")
    api_port: int = Field(default=8000, ge=1, le=65535, description="HTTP API port")
    api_workers: int = Field(
        default=1, ge=1, description="uvicorn worker processes of `tierflow serve`"
    )
    api_worker_ping_s: int = Field(
        default=60,
        ge=1,
        description="seconds a worker may leave uvicorn's liveness ping unanswered before it "
        "is replaced (several workers only)",
    )
    api_rate_limit: int = Field(default=1200, ge=1, description="requests per minute per member")
    api_keyless_limit: int = Field(
        default=120,
        ge=1,
        description="keyless write attempts per minute per client address",
    )
    api_max_body: int = Field(default=65_536, ge=1024, description="largest request body in bytes")
    api_mirror_wait_s: float = Field(
        default=15.0, ge=0, description="seconds a write waits for the mirror to show it"
    )
    api_caller_cache_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="seconds a worker answers reads from an API key it checked without looking "
        "it up again (0: never); a key revoked through another worker or a role changed on "
        "chain shows in its reads within this",
    )
    api_idempotency_lease_s: float = Field(
        default=30.0,
        ge=0.5,
        le=3600,
        description="seconds before a retry takes over an Idempotency-Key whose worker "
        "stopped renewing it",
    )
    api_database_lock_wait_s: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="seconds one statement waits for SQLite's write lock (held by the indexer "
        "or another worker) before the request answers 503 database_unavailable; a paused "
        "process holding it then costs a prompt 503, not a request that hangs",
    )
    api_node_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="seconds one request to the node may take before the API answers 503",
    )
    api_node_unavailable_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="seconds a write keeps retrying a node it cannot reach before it answers 503",
    )
    api_receipt_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="seconds a write waits to be mined before it answers 503 transaction_pending",
    )
    api_audit_sweep_after_s: float = Field(
        default=120.0,
        ge=1,
        le=86_400,
        description="age of an audit_pending row (a request that broadcast and never "
        "answered) before it is recorded as request_interrupted",
    )
    api_anchor_interval_s: float = Field(
        default=30.0,
        ge=0.2,
        le=60,
        description="seconds between anchorings of the audit log's head on chain (AuditAnchor), "
        "when it changed; one API worker at a time anchors (SPEC AP-3: at least every minute)",
    )
    api_indexer_stale_s: float = Field(
        default=10.0, gt=0, description="an older indexer heartbeat makes /health degraded"
    )
    api_max_lag_blocks: int = Field(
        default=10, ge=0, description="a mirror further behind makes /health degraded"
    )
    operator_api_key: SecretStr | None = Field(
        default=None,
        description="the operator's API key when set at first start (unset: `tierflow run` "
        "issues one and shows it once)",
    )
    console_session_ttl_s: int = Field(
        default=28_800,
        ge=60,
        le=30 * 86_400,
        description="seconds a console sign-in lasts",
    )
    intent_ttl_s: int = Field(
        default=900,
        ge=30,
        le=86_400,
        description="seconds of chain time a self member's intent can be signed and relayed",
    )
    keystore_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "TIERFLOW_KEYSTORE_SECRET", "TIERFLOW_KEYSTORE_PASSWORD", "keystore_secret"
        ),
        description="secret the hosted members' keys are encrypted under (older name "
        "TIERFLOW_KEYSTORE_PASSWORD); required outside the local chain, never stored beside "
        "the database",
    )

    @property
    def base_url(self) -> str:
        """Where the API answers (``http://<api_host>:<api_port>``)."""
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def keystore_password_file(self) -> Path:
        return self.data_dir / "keystore.password"

    def hosted_keys_secret(self, chain_id: int) -> SecretStr:
        """The members' keystore password (see the module docstring); refuses to invent one
        outside the local chain."""
        if self.keystore_secret is not None:
            if len(self.keystore_secret.get_secret_value()) < 12:
                raise ValueError("TIERFLOW_KEYSTORE_SECRET must be at least 12 characters")
            return self.keystore_secret
        if chain_id != ANVIL_CHAIN_ID:
            raise ValueError(
                "TIERFLOW_KEYSTORE_SECRET is required outside the local chain: it encrypts "
                "the hosted members' chain keys"
            )
        path = self.keystore_password_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
            try:
                os.link(tmp, path)  # atomic, and never replaces one another worker made
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return SecretStr(path.read_text().strip())
