"""The sales ranking of a lead's assessment (scoring.opportunity).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assessments") as table:
        table.add_column(sa.Column("opportunity", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assessments") as table:
        table.drop_column("opportunity")
