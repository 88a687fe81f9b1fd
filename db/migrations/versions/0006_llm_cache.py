"""model replies cache: one row per distinct chat request (backend, base URL, model, messages, parameters)

Revision ID: 0006_llm_cache
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0006_llm_cache"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "llm_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", AutoString(length=64), nullable=False),
        sa.Column("backend", AutoString(length=20), nullable=False),
        sa.Column("base_url", AutoString(length=300), nullable=False),
        sa.Column("model", AutoString(length=300), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("finish_reasons", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("logprobs", sa.JSON(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_llm_reply_key"),
    )
    op.create_index("ix_llm_reply_model", "llm_reply", ["model"])


def downgrade() -> None:
    op.drop_index("ix_llm_reply_model", table_name="llm_reply")
    op.drop_table("llm_reply")
