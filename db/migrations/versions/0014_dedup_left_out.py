"""dedup runs keep the sentences saying which shared prefix or suffix their comparison left out

Revision ID: 0014_dedup_left_out
Revises: 0002_dedup
"""
from alembic import op
import sqlalchemy as sa


revision = "0014_dedup_left_out"
down_revision = "0002_dedup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and not backfilled: what a search stored before left out depends on the records as they were
    # then, so it says nothing (None) until the next search stores its own sentences.
    with op.batch_alter_table("dedup_run") as batch:
        batch.add_column(sa.Column("left_out", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dedup_run") as batch:
        batch.drop_column("left_out")
