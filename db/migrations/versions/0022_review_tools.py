"""tags, comments and undoable bulk actions

Revision ID: 0022_review_tools
Revises: 0021_assignments
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0022_review_tools"
down_revision = "0021_assignments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "record_tag",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("record_id", sa.Integer(), sa.ForeignKey("record.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tag", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("added_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("record_id", "tag", name="uq_record_tag"),
    )
    op.create_index("ix_record_tag_tag", "record_tag", ["tag", "record_id"])
    op.create_table(
        "record_comment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("record_id", sa.Integer(), sa.ForeignKey("record.id", ondelete="CASCADE"), nullable=False),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("record_comment.id", ondelete="CASCADE"), nullable=True),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("written_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_record_comment_record_id", "record_comment", ["record_id"])
    op.create_table(
        "bulk_action",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id", ondelete="CASCADE"), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("acted_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("acted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("undone_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("undone_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("undo_skipped", sa.Integer(), nullable=True),
    )
    op.create_index("ix_bulk_action_dataset_id", "bulk_action", ["dataset_id"])
    op.create_table(
        "bulk_action_item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bulk_action_id", sa.Integer(), sa.ForeignKey("bulk_action.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("record_id", sa.Integer(), sa.ForeignKey("record.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version_before", sa.Integer(), nullable=True),
        sa.Column("version_after", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
    )
    op.create_index("ix_bulk_action_item_action", "bulk_action_item", ["bulk_action_id", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_bulk_action_item_action", "bulk_action_item")
    op.drop_table("bulk_action_item")
    op.drop_index("ix_bulk_action_dataset_id", "bulk_action")
    op.drop_table("bulk_action")
    op.drop_index("ix_record_comment_record_id", "record_comment")
    op.drop_table("record_comment")
    op.drop_index("ix_record_tag_tag", "record_tag")
    op.drop_table("record_tag")
