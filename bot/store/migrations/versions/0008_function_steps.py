"""Workflow Builder's "Run a pipeline" steps (``function_steps``): each function execution and the run it started.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "function_steps",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("wait", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_function_steps_run_id", "function_steps", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_function_steps_run_id", table_name="function_steps")
    op.drop_table("function_steps")
