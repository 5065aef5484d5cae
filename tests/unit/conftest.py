"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.models import migrate
from db.engine import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The platform's tables, the mirror's and the API's, in the SQLite file
    ``tmp_path / "tierflow.db"`` (a module may define its own ``engine`` instead)."""
    made = create_engine(f"sqlite:///{tmp_path / 'tierflow.db'}", lock_wait_s=5.0)
    await migrate(made)
    try:
        yield made
    finally:
        await made.dispose()
