"""Slack requests already taken: a replayed or redelivered request does nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_requests",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_slack_requests"),
    )
    op.create_index("ix_slack_requests_expires_at", "slack_requests", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_requests_expires_at", table_name="slack_requests")
    op.drop_table("slack_requests")
