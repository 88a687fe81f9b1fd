"""2-D maps computed in the background and cached with the vectors

Revision ID: 0023_maps
Revises: 0022_review_tools
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0023_maps"
down_revision = "0022_review_tools"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No backfill: a dataset's map is laid out the first time someone opens it after this.
    op.create_table(
        "record_map",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False),
        sa.Column("fields", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("projection", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("arrays", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("dataset_id", "fields", "fingerprint", name="uq_record_map"),
    )
    op.create_index("ix_record_map_dataset_id", "record_map", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_record_map_dataset_id", "record_map")
    op.drop_table("record_map")
