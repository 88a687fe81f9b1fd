"""what each semantic dedup run compared (record ids, text hashes, candidates), for incremental re-runs

Revision ID: 0019_dedup_searched
Revises: 0018_distributed_search
"""
from alembic import op
import sqlalchemy as sa


revision = "0019_dedup_searched"
down_revision = "0018_distributed_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No backfill: a run stored before has no record of what it compared, so the next search is a full one.
    op.create_table(
        "dedup_searched",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("dedup_run.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("searched", sa.Integer(), nullable=False),
        sa.Column("arrays", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dedup_searched")
