"""prompt templates: PromptSource and FLAN imports and user-written ones, versioned (history in revision)

Revision ID: 0010_templates
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0010_templates"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "prompt_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection", AutoString(length=200), nullable=False),
        sa.Column("name", AutoString(length=300), nullable=False),
        sa.Column("source", AutoString(length=20), nullable=False),
        sa.Column("external_id", AutoString(length=100), nullable=True),
        sa.Column("jinja", sa.Text(), nullable=False),
        sa.Column("answer_choices", sa.Text(), nullable=True),
        sa.Column("original_task", sa.Boolean(), nullable=True),
        sa.Column("choices_in_prompt", sa.Boolean(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", AutoString(), nullable=True),
        sa.Column("updated_by", AutoString(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collection", "name", name="uq_prompt_template_name"),
    )
    op.create_index("ix_prompt_template_collection", "prompt_template", ["collection"])


def downgrade() -> None:
    op.drop_index("ix_prompt_template_collection", table_name="prompt_template")
    op.drop_table("prompt_template")
