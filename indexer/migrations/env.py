"""Alembic environment of the mirror's tables (version table ``alembic_version_mirror``)."""

from __future__ import annotations

from db.migrate import run_env
from indexer.models import MIRROR_HISTORY, Base

run_env(Base.metadata, MIRROR_HISTORY.version_table)
