"""near-duplicates: embedding cache, dedup runs and pairs, curator decisions

Revision ID: 0002_dedup
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0002_dedup"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "embedding_vector",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", AutoString(length=200), nullable=False),
        sa.Column("precision", AutoString(length=16), nullable=False),
        sa.Column("text_hash", AutoString(length=64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model", "precision", "text_hash", name="uq_embedding_key"),
    )
    op.create_table(
        "dedup_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("method", AutoString(length=20), nullable=False),
        sa.Column("fields", AutoString(length=40), nullable=False),
        sa.Column("model", AutoString(length=200), nullable=True),
        sa.Column("precision", AutoString(length=16), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("floor", sa.Float(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("pair_count", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_by", AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dedup_run_dataset_id", "dedup_run", ["dataset_id"])
    op.create_table(
        "duplicate_pair",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("record_a", sa.Integer(), nullable=False),
        sa.Column("record_b", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["dedup_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_duplicate_pair_run_score", "duplicate_pair", ["run_id", "score"])
    op.create_table(
        "duplicate_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("kind", AutoString(length=20), nullable=False),
        sa.Column("record_ids", sa.JSON(), nullable=False),
        sa.Column("keep_id", sa.Integer(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", AutoString(), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("undone_by", AutoString(), nullable=True),
        sa.Column("undone_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["dataset.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_duplicate_decision_dataset_id", "duplicate_decision", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_duplicate_decision_dataset_id", table_name="duplicate_decision")
    op.drop_table("duplicate_decision")
    op.drop_index("ix_duplicate_pair_run_score", table_name="duplicate_pair")
    op.drop_table("duplicate_pair")
    op.drop_index("ix_dedup_run_dataset_id", table_name="dedup_run")
    op.drop_table("dedup_run")
    op.drop_table("embedding_vector")
