"""mirror: indexer_status (the running indexer's heartbeat)

Revision ID: mirror_0003
Revises: mirror_0002
Create Date: 2026-12-06 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mirror_0003"
down_revision: str | None = "mirror_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indexer_status",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("heartbeat_ms", sa.BigInteger(), nullable=False),
        sa.Column("head_block", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_block", sa.BigInteger(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indexer_status")),
    )


def downgrade() -> None:
    op.drop_table("indexer_status")
