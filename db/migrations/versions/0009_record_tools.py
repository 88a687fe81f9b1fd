"""record tools: the function schemas of a tool-calling conversation, exported as TRL's `tools` column

Revision ID: 0009_record_tools
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa


revision = "0009_record_tools"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and not backfilled: records stored before keep their hashes, and a ShareGPT file imported
    # before kept its tools text in `extra` beside calls stored as plain text, which only a re-import fixes.
    with op.batch_alter_table("record") as batch:
        batch.add_column(sa.Column("tools", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("record") as batch:
        batch.drop_column("tools")
