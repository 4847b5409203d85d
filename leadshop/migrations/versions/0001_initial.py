"""Leads and their assessments.

Revision ID: 0001
Revises:
Create Date: 2025-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in leadshop.db: a migration must not change when the models do.
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
STATUSES = "'pending', 'in_progress', 'completed', 'partial', 'failed'"


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("website", sa.Text(), nullable=False),
        sa.Column("website_key", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("website_key", name=op.f("uq_leads_website_key")),
    )
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pagespeed_data", JSON, nullable=True),
        sa.Column("pagespeed_score", sa.Integer(), nullable=True),
        sa.Column("security_headers", JSON, nullable=True),
        sa.Column("security_score", sa.Integer(), nullable=True),
        sa.Column("gbp_data", JSON, nullable=True),
        sa.Column("semrush_data", JSON, nullable=True),
        sa.Column("visual_analysis", JSON, nullable=True),
        sa.Column("llm_insights", JSON, nullable=True),
        sa.Column("extra_results", JSON, nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("overall_score", sa.Integer(), nullable=True),
        sa.Column("overall_grade", sa.String(length=4), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_assessments_status")),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_assessments_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
        sa.UniqueConstraint("batch_id", "lead_id", name=op.f("uq_assessments_batch_id_lead_id")),
    )
    op.create_index(op.f("ix_assessments_lead_id"), "assessments", ["lead_id"])


def downgrade() -> None:
    op.drop_table("assessments")
    op.drop_table("leads")
