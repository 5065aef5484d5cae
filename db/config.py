"""The database's settings: ``TIERFLOW_DATABASE_URL`` (default SQLite in the data directory)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """``TIERFLOW_DATABASE_URL``; empty means ``<TIERFLOW_DATA_DIR>/tierflow.db`` (SQLite)."""

    model_config = SettingsConfigDict(env_prefix="TIERFLOW_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="chain state, deployment record, nonces, SQLite database, logs",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the mirror and the API's tables (unset: SQLite "
        "<data dir>/tierflow.db)",
    )

    @model_validator(mode="after")
    def _default_database(self) -> DatabaseSettings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'tierflow.db'}"
        return self
