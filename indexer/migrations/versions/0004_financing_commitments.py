"""mirror: financings.min_advance (the applicant's committed least advance)

The applicant now commits on chain, when it applies, to the least advance it accepts and to
the recourse it accepts (FinancingApplied carries both); ``recourse`` was set at approval
before and is set at application now. A mirror built before this change must be rebuilt from
genesis (the contracts changed with it), so existing rows take 0.

Revision ID: mirror_0004
Revises: mirror_0003
Create Date: 2026-12-06 23:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.types import Amount

revision: str = "mirror_0004"
down_revision: str | None = "mirror_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("financings") as batch:
        batch.add_column(sa.Column("min_advance", Amount(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("financings") as batch:
        batch.drop_column("min_advance")
