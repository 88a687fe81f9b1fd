"""distributed near-duplicate searches: the job handed to an engine and the dedup run it produced

Revision ID: 0018_distributed_search
Revises: 0017_dedup_mode, 0003_publish_train (it needs the job status type)
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0018_distributed_search"
down_revision = ("0017_dedup_mode", "0003_publish_train")
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "distributed_search",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("fields", AutoString(length=40), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("floor", sa.Float(), nullable=False),
        sa.Column("executor", AutoString(length=20), nullable=False),
        sa.Column("tasks", sa.Integer(), nullable=False),
        sa.Column("work_dir", AutoString(), nullable=False),
        sa.Column("status", sa.Enum("queued", "running", "completed", "failed", "cancelled", name="jobstatus",
                                    create_type=False), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("created_by", AutoString(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("finished_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["dedup_run.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_distributed_search_dataset_id", "distributed_search", ["dataset_id"])
    op.create_index("ix_distributed_search_status", "distributed_search", ["status"])


def downgrade() -> None:
    op.drop_index("ix_distributed_search_status", table_name="distributed_search")
    op.drop_index("ix_distributed_search_dataset_id", table_name="distributed_search")
    op.drop_table("distributed_search")
