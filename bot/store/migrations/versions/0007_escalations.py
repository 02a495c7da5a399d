"""An alert's escalation (issue 14, item 7): ``alerts.escalations`` and ``alerts.escalated_at``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # existing alerts: none escalated yet; an open one starts its wait from first_at, as a new one does
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("escalations", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("escalated_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("escalated_at")
        batch.drop_column("escalations")
