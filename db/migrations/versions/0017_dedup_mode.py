"""dedup runs say how a semantic search found its pairs (reference, cascade, distributed)

Revision ID: 0017_dedup_mode
Revises: 0014_dedup_left_out
"""
from alembic import op
import sqlalchemy as sa


revision = "0017_dedup_mode"
down_revision = "0014_dedup_left_out"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, not backfilled: every search stored before ran the reference path, but a lexical run has no mode.
    with op.batch_alter_table("dedup_run") as batch:
        batch.add_column(sa.Column("mode", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dedup_run") as batch:
        batch.drop_column("mode")
