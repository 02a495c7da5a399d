"""The audit log records the right that let an action through (owner, starter, allow_change…).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: the entries already there were written before rights were recorded
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("right_used", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("right_used")
