"""evaluations of trained models and the answers each one scored

Revision ID: 0016_evaluations
Revises: 0003_publish_train (it needs the training_job table and the job status type)
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0016_evaluations"
down_revision = "0003_publish_train"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("training_job_id", sa.Integer(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("model", AutoString(length=500), nullable=False),
        sa.Column("model_revision", AutoString(length=64), nullable=True),
        sa.Column("base_model", AutoString(length=500), nullable=True),
        sa.Column("dataset_repo", AutoString(length=200), nullable=True),
        sa.Column("dataset_revision", AutoString(length=64), nullable=True),
        sa.Column("dataset_config", AutoString(length=200), nullable=True),
        sa.Column("selection_recipe", sa.JSON(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("launcher", AutoString(length=40), nullable=False),
        sa.Column("external_id", AutoString(length=500), nullable=True),
        sa.Column("work_dir", AutoString(), nullable=True),
        sa.Column("status", sa.Enum("queued", "running", "completed", "failed", "cancelled", name="jobstatus",
                                    create_type=False), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("created_by", AutoString(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("started_at", UTC(), nullable=True),
        sa.Column("finished_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["training_job_id"], ["training_job.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evaluation_training_job_id", "evaluation", ["training_job_id"])
    op.create_index("ix_evaluation_dataset_id", "evaluation", ["dataset_id"])
    op.create_index("ix_evaluation_status", "evaluation", ["status"])
    op.create_table(
        "evaluation_answer",
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("tuned_answer", sa.Text(), nullable=True),
        sa.Column("base_answer", sa.Text(), nullable=True),
        sa.Column("rouge_l_tuned", sa.Float(), nullable=True),
        sa.Column("rouge_l_base", sa.Float(), nullable=True),
        sa.Column("exact_match_tuned", sa.Boolean(), nullable=True),
        sa.Column("exact_match_base", sa.Boolean(), nullable=True),
        sa.Column("vs_base_a_first", AutoString(length=20), nullable=True),
        sa.Column("vs_base_b_first", AutoString(length=20), nullable=True),
        sa.Column("vs_base_preference", sa.Float(), nullable=True),
        sa.Column("vs_reference_a_first", AutoString(length=20), nullable=True),
        sa.Column("vs_reference_b_first", AutoString(length=20), nullable=True),
        sa.Column("vs_reference_preference", sa.Float(), nullable=True),
        sa.Column("judge_replies", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("evaluation_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("evaluation_answer")
    op.drop_index("ix_evaluation_status", table_name="evaluation")
    op.drop_index("ix_evaluation_dataset_id", table_name="evaluation")
    op.drop_index("ix_evaluation_training_job_id", table_name="evaluation")
    op.drop_table("evaluation")
