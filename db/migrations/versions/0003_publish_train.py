"""publishing and training: dataset publications on the Hub and SFT jobs

Revision ID: 0003_publish_train
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0003_publish_train"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString
JOB_STATUS = sa.Enum("queued", "running", "completed", "failed", "cancelled", name="jobstatus")


def upgrade() -> None:
    op.create_table(
        "publication",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("repo_id", AutoString(length=200), nullable=False),
        sa.Column("endpoint", AutoString(length=300), nullable=False),
        sa.Column("commit_id", AutoString(length=64), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("configs", sa.JSON(), nullable=False),
        sa.Column("statuses", sa.JSON(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("split_counts", sa.JSON(), nullable=False),
        sa.Column("created_by", AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_publication_dataset_id", "publication", ["dataset_id"])
    op.create_index("ix_publication_repo_id", "publication", ["repo_id"])
    op.create_table(
        "training_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("publication_id", sa.Integer(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("launcher", AutoString(length=40), nullable=False),
        sa.Column("external_id", AutoString(length=200), nullable=True),
        sa.Column("status", JOB_STATUS, nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("dataset_repo", AutoString(length=200), nullable=True),
        sa.Column("dataset_revision", AutoString(length=64), nullable=True),
        sa.Column("model_repo", AutoString(length=200), nullable=True),
        sa.Column("model_revision", AutoString(length=64), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("work_dir", AutoString(), nullable=True),
        sa.Column("created_by", AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["publication_id"], ["publication.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_training_job_dataset_id", "training_job", ["dataset_id"])
    op.create_index("ix_training_job_status", "training_job", ["status"])


def downgrade() -> None:
    op.drop_table("training_job")
    op.drop_table("publication")
    JOB_STATUS.drop(op.get_bind(), checkfirst=True)
