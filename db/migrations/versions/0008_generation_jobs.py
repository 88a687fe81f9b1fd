"""generation jobs (Self-Instruct, Evol-Instruct, SNI expansion) and the job each generated record came from

Revision ID: 0008_generation_jobs
Revises: 0003_publish_train, 0007_provenance (it needs the job status type of the one and the record columns of
the other, so it merges the two)
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0008_generation_jobs"
down_revision = ("0003_publish_train", "0007_provenance")
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "generation_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("pipeline", AutoString(length=20), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.Enum("queued", "running", "completed", "failed", "cancelled", name="jobstatus",
                                    create_type=False), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("kept", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_by", AutoString(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("started_at", UTC(), nullable=True),
        sa.Column("heartbeat_at", UTC(), nullable=True),
        sa.Column("finished_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_generation_job_dataset_id", "generation_job", ["dataset_id"])
    op.create_index("ix_generation_job_status", "generation_job", ["status"])
    with op.batch_alter_table("record") as batch:
        batch.add_column(sa.Column("generation_job_id", sa.Integer(), nullable=True))
    op.create_index("ix_record_generation_job_id", "record", ["generation_job_id"])


def downgrade() -> None:
    op.drop_index("ix_record_generation_job_id", table_name="record")
    with op.batch_alter_table("record") as batch:
        batch.drop_column("generation_job_id")
    op.drop_index("ix_generation_job_status", table_name="generation_job")
    op.drop_index("ix_generation_job_dataset_id", table_name="generation_job")
    op.drop_table("generation_job")
