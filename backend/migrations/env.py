"""Alembic environment of the API's own tables (version table ``alembic_version_api``)."""

from __future__ import annotations

from backend.models import API_HISTORY, Base
from db.migrate import run_env

run_env(Base.metadata, API_HISTORY.version_table)
