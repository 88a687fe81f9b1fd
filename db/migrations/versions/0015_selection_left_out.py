"""the records DEITA's rule left out of a selection, each with the taken record it was too close to

Revision ID: 0015_selection_left_out
Revises: 0013_scores_selections
"""
from alembic import op
import sqlalchemy as sa


revision = "0015_selection_left_out"
down_revision = "0013_scores_selections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "selection_left_out",
        sa.Column("selection_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("too_close_to", sa.Integer(), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["selection_id"], ["selection.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("selection_id", "record_id"),
    )


def downgrade() -> None:
    op.drop_table("selection_left_out")
