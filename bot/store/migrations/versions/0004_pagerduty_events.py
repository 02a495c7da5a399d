"""PagerDuty events of alerts: trigger, acknowledge and resolve, each sent once (bot/delivery/paging.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pagerduty_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("key", name="uq_pagerduty_events_key"),
    )
    op.create_index("ix_pagerduty_events_alert_id", "pagerduty_events", ["alert_id"])
    op.create_index("ix_pagerduty_events_state_not_before", "pagerduty_events", ["state", "not_before"])


def downgrade() -> None:
    op.drop_index("ix_pagerduty_events_state_not_before", table_name="pagerduty_events")
    op.drop_index("ix_pagerduty_events_alert_id", table_name="pagerduty_events")
    op.drop_table("pagerduty_events")
