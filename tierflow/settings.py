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
``TIERFLOW_METRICS_PORT``      Prometheus port of ``tierflow index`` (default 9108, 0: off)
``TIERFLOW_LOG_LEVEL``         debug, info (default), warning, error
=============================  ==========================================================

Command-line flags override them by passing keyword arguments to :class:`TierflowSettings`.
"""

from __future__ import annotations

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
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    log_level: str = "info"

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

    def deployer_key(self, chain_id: int) -> SecretStr | None:
        """The deployer key: the configured one, else anvil's first dev key on chain 31337."""
        if self.deployer_private_key is not None:
            return self.deployer_private_key
        if chain_id == ANVIL_CHAIN_ID:
            return SecretStr(ANVIL_FIRST_KEY)
        return None
