"""assignments of records and tasks to annotators, and their answers

Revision ID: 0021_assignments
Revises: 0020_guidelines
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0021_assignments"
down_revision = "0020_guidelines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_type", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("annotator", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("assigned_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("assigned_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("answered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("reconciled_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("reconciled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.UniqueConstraint("item_type", "item_id", "annotator", name="uq_assignment_item_annotator"),
    )
    op.create_index("ix_assignment_dataset_id", "assignment", ["dataset_id"])
    op.create_index("ix_assignment_item", "assignment", ["item_type", "item_id"])
    op.create_index("ix_assignment_annotator_status", "assignment", ["annotator", "status"])


def downgrade() -> None:
    op.drop_index("ix_assignment_annotator_status", "assignment")
    op.drop_index("ix_assignment_item", "assignment")
    op.drop_index("ix_assignment_dataset_id", "assignment")
    op.drop_table("assignment")
