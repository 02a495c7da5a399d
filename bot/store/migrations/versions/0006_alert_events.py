"""An alert's timeline (``alert_events``) and each living message's permalink (``cards.permalink``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(32), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_alert_events_alert_id_alerts"),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id", "id"])
    op.create_index("ix_alert_events_run_id", "alert_events", ["run_id"])
    # existing rows: their messages were posted without a link; null until one is posted or fetched again
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("permalink", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("permalink")
    op.drop_index("ix_alert_events_run_id", table_name="alert_events")
    op.drop_index("ix_alert_events_alert_id", table_name="alert_events")
    op.drop_table("alert_events")
