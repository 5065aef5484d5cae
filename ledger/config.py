"""The node's settings, read from ``TIERFLOW_*`` variables (SPEC §5).

==================================  =====================================================
``TIERFLOW_RPC_URL``                JSON-RPC endpoint (default ``http://127.0.0.1:8545``)
``TIERFLOW_DATA_DIR``               chain state, nonce files, SQLite (default ``./data``)
``TIERFLOW_DEPLOYER_PRIVATE_KEY``   deployer key; on the local chain (id 31337) anvil's
                                    first dev account is used when unset
``TIERFLOW_RELAYER_PRIVATE_KEY``    the relayer's key: it pays the gas of members' signed
                                    requests and submits them to the TierflowForwarder; on
                                    the local chain anvil's third dev account (index 2)
                                    when unset
``TIERFLOW_CHAIN_PORT``             JSON-RPC port of the local chain of ``tierflow run`` /
                                    ``chain`` (default: chain/anvil.json's, 8545)
``TIERFLOW_LOG_LEVEL``              debug, info (default), warning, error
``TIERFLOW_LOG_FORMAT``             json or console (default: console on a terminal, else json)
==================================  =====================================================

The MemberRegistry's default admin (role grants) is an ``AdminTimelock`` deployed with the
suite, never the operator: ``TIERFLOW_ADMIN_PROPOSERS`` (comma-separated accounts that schedule
grants; anvil's dev account 1 on the local chain when unset), ``TIERFLOW_ADMIN_EXECUTORS``
(default: the proposers) and ``TIERFLOW_ADMIN_TIMELOCK_DELAY_S`` (default 2 days; 0 on the
local chain). See docs/consent.md.

Every process that talks to the node (the indexer, the API, the command line) composes
these with its own (:class:`indexer.config.IndexerSettings`,
:class:`backend.config.ApiSettings`); command-line flags override them by passing keyword
arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.anvil import ANVIL_ANCHOR_KEY, ANVIL_CHAIN_ID, ANVIL_FIRST_KEY, ANVIL_RELAYER_KEY


class NodeSettings(BaseSettings):
    """How to reach the node and sign as the deployer; ``TIERFLOW_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TIERFLOW_", extra="ignore")

    rpc_url: str = Field(
        default="http://127.0.0.1:8545", description="JSON-RPC endpoint of the node"
    )
    data_dir: Path = Field(
        default=Path("data"),
        description="chain state, deployment record, nonces, SQLite database, logs",
    )
    deployer_private_key: SecretStr | None = Field(
        default=None,
        description="deployer and operator key; on the local chain anvil's first dev account "
        "when unset",
    )
    relayer_private_key: SecretStr | None = Field(
        default=None,
        description="relayer key: pays the gas of members' signed requests and submits them to "
        "the TierflowForwarder; on the local chain anvil's dev account 2 when unset",
    )
    anchor_private_key: SecretStr | None = Field(
        default=None,
        description="the account that anchors the audit log's head on chain (AuditAnchor's "
        "anchorer, granted at deployment); on the local chain anvil's dev account 9, "
        "elsewhere the operator when unset",
    )
    admin_proposers: str | None = Field(
        default=None,
        description="accounts (comma-separated) that schedule role grants on the AdminTimelock, "
        "the MemberRegistry's default admin (never the operator); required outside the local "
        "chain, where anvil's dev account 1 is used when unset",
    )
    admin_executors: str | None = Field(
        default=None,
        description="accounts (comma-separated) that execute scheduled role grants once the "
        "delay has passed (default: the proposers)",
    )
    admin_timelock_delay_s: int | None = Field(
        default=None,
        ge=0,
        description="seconds between scheduling a role grant and executing it (default 2 days; "
        "0 on the local chain)",
    )
    chain_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="JSON-RPC port of the local chain of `tierflow run` and `tierflow chain` "
        "(unset: chain/anvil.json's, 8545)",
    )
    log_level: str = Field(default="info", description="debug, info, warning or error")
    log_format: Literal["json", "console"] | None = Field(
        default=None,
        description="json (one JSON object a line) or console (readable); unset: console on "
        "a terminal, json otherwise",
    )

    @model_validator(mode="after")
    def _resolve_data_dir(self) -> NodeSettings:
        self.data_dir = self.data_dir.expanduser().resolve()
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
        """The deployer key: the configured one, else anvil's first dev key on chain 31337
        (never invented elsewhere)."""
        if self.deployer_private_key is not None:
            return self.deployer_private_key
        if chain_id == ANVIL_CHAIN_ID:
            return SecretStr(ANVIL_FIRST_KEY)
        return None

    def relayer_key(self, chain_id: int) -> SecretStr | None:
        """The relayer key: the configured one, else anvil's dev key index 2 on chain 31337
        (distinct from the deployer/operator, index 0; never invented elsewhere)."""
        if self.relayer_private_key is not None:
            return self.relayer_private_key
        if chain_id == ANVIL_CHAIN_ID:
            return SecretStr(ANVIL_RELAYER_KEY)
        return None

    def anchor_key(self, chain_id: int) -> SecretStr | None:
        """The audit anchoring key: the configured one, else anvil's dev key index 9 on chain
        31337 (its own account: anchors do not take the operator's nonces); None elsewhere
        (the operator anchors)."""
        if self.anchor_private_key is not None:
            return self.anchor_private_key
        if chain_id == ANVIL_CHAIN_ID:
            return SecretStr(ANVIL_ANCHOR_KEY)
        return None
