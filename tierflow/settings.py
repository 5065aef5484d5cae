"""Tierflow's settings, read from ``TIERFLOW_*`` environment variables (SPEC §5).

=============================  ==========================================================
``TIERFLOW_RPC_URL``           JSON-RPC endpoint (default ``http://127.0.0.1:8545``)
``TIERFLOW_DATA_DIR``          chain state, keystore, nonce files, SQLite (default ``./data``)
``TIERFLOW_DATABASE_URL``      SQLAlchemy URL (default SQLite ``<data_dir>/tierflow.db``)
``TIERFLOW_API_PORT``          HTTP API port (default 8000)
``TIERFLOW_OPERATOR_API_KEY``  the operator's API key when set at first start
``TIERFLOW_KEYSTORE_PASSWORD`` password of the members' keystore
``TIERFLOW_DEPLOYER_PRIVATE_KEY``  deployer key; on the local chain (id 31337) anvil's
                               first dev account is used when unset
``TIERFLOW_CONFIRMATIONS``     blocks the indexer stays behind the head (default 0)
``TIERFLOW_REORG_WINDOW``      deepest reorganisation the indexer rolls back (default 128)
``TIERFLOW_INDEXER_POLL_S``    seconds between the indexer's polls of the head once caught
                               up (default 0.1: a write through the API answers once the
                               mirror shows it, so this is latency every write pays)
``TIERFLOW_METRICS_PORT``      Prometheus port of ``tierflow index`` (default 9108, 0: off)
``TIERFLOW_LOG_LEVEL``         debug, info (default), warning, error
``TIERFLOW_API_HOST``          address the API listens on (default 127.0.0.1)
``TIERFLOW_API_RATE_LIMIT``    requests per minute per API key (default 1200)
``TIERFLOW_API_MAX_BODY``      largest request body in bytes (default 65536)
``TIERFLOW_API_MIRROR_WAIT_S`` how long a write waits for the mirror to show it (default 15)
``TIERFLOW_API_IDEMPOTENCY_LEASE_S``  how long a claimed Idempotency-Key belongs to a worker
                               that stopped renewing it (it died) before a retry takes it
                               over (default 30)
``TIERFLOW_API_WORKERS``       uvicorn worker processes of ``tierflow serve`` (default 1)
``TIERFLOW_CHAIN_PORT``        JSON-RPC port of the local chain of ``tierflow run`` / ``chain``
                               (default: chain/anvil.json's, 8545)
=============================  ==========================================================

The keystore password has no default outside the local chain: ``tierflow serve`` refuses to
start without ``TIERFLOW_KEYSTORE_PASSWORD`` there. On the local chain (id 31337), when it is
unset, a random one is generated once into ``<data_dir>/keystore.password`` (mode 0600).

Command-line flags override them by passing keyword arguments to :class:`TierflowSettings`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.anvil import ANVIL_CHAIN_ID, ANVIL_FIRST_KEY


class TierflowSettings(BaseSettings):
    """All of Tierflow's settings; ``TIERFLOW_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="TIERFLOW_", extra="ignore")

    rpc_url: str = "http://127.0.0.1:8545"
    data_dir: Path = Path("data")
    database_url: str = ""
    api_port: int = 8000
    operator_api_key: SecretStr | None = None
    keystore_password: SecretStr | None = None
    deployer_private_key: SecretStr | None = None
    confirmations: int = Field(default=0, ge=0)
    reorg_window: int = Field(default=128, ge=2)
    indexer_poll_s: float = Field(default=0.1, gt=0, le=60)
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    log_level: str = "info"
    api_host: str = "127.0.0.1"
    api_rate_limit: int = Field(default=1200, ge=1)
    api_max_body: int = Field(default=65_536, ge=1024)
    api_mirror_wait_s: float = Field(default=15.0, ge=0)
    api_idempotency_lease_s: float = Field(default=30.0, ge=0.5, le=3600)
    api_workers: int = Field(default=1, ge=1)
    chain_port: int | None = Field(default=None, ge=1, le=65535)

    @model_validator(mode="after")
    def _defaults(self) -> TierflowSettings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'tierflow.db'}"
        return self

    @property
    def chain_dir(self) -> Path:
        """Where the local chain keeps its state (``<data_dir>/chain``)."""
        return self.data_dir / "chain"

    @property
    def nonce_dir(self) -> Path:
        """Where the file nonce store lives (``<data_dir>/nonces``)."""
        return self.data_dir / "nonces"

    @property
    def keystore_password_file(self) -> Path:
        return self.data_dir / "keystore.password"

    def keystore_secret(self, chain_id: int) -> SecretStr:
        """The members' keystore password (see the module docstring); refuses to invent one
        outside the local chain."""
        if self.keystore_password is not None:
            if len(self.keystore_password.get_secret_value()) < 12:
                raise ValueError("TIERFLOW_KEYSTORE_PASSWORD must be at least 12 characters")
            return self.keystore_password
        if chain_id != ANVIL_CHAIN_ID:
            raise ValueError(
                "TIERFLOW_KEYSTORE_PASSWORD is required outside the local chain: it encrypts "
                "the members' chain keys"
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

    def deployer_key(self, chain_id: int) -> SecretStr | None:
        """The deployer key: the configured one, else anvil's first dev key on chain 31337."""
        if self.deployer_private_key is not None:
            return self.deployer_private_key
        if chain_id == ANVIL_CHAIN_ID:
            return SecretStr(ANVIL_FIRST_KEY)
        return None
