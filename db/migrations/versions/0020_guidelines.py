"""annotation guidelines per dataset, versioned

Revision ID: 0020_guidelines
Revises: 0019_dedup_searched
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0020_guidelines"
down_revision = "0019_dedup_searched"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guidelines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("written_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("written_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("dataset_id", "version", name="uq_guidelines_version"),
    )
    op.create_index("ix_guidelines_dataset_id", "guidelines", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_guidelines_dataset_id", "guidelines")
    op.drop_table("guidelines")
