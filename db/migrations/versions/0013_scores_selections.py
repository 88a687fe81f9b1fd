"""scores per record, each dataset's judge rubric, and named selections with their records

Revision ID: 0013_scores_selections
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0013_scores_selections"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "record_score",
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("name", AutoString(length=40), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("basis", AutoString(length=120), nullable=False),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("record_id", "name"),
    )
    op.create_index("ix_record_score_name_record", "record_score", ["name", "record_id"])
    op.create_table(
        "score_rubric",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_by", AutoString(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id"),
    )
    op.create_table(
        "selection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("name", AutoString(length=200), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("revision", AutoString(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_by", AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "name", name="uq_selection_dataset_name"),
    )
    op.create_index("ix_selection_dataset_id", "selection", ["dataset_id"])
    op.create_table(
        "selection_record",
        sa.Column("selection_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["selection_id"], ["selection.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("selection_id", "record_id"),
    )


def downgrade() -> None:
    op.drop_table("selection_record")
    op.drop_index("ix_selection_dataset_id", table_name="selection")
    op.drop_table("selection")
    op.drop_table("score_rubric")
    op.drop_index("ix_record_score_name_record", table_name="record_score")
    op.drop_table("record_score")
