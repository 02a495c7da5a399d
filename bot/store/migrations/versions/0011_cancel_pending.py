"""A cancel's request on its way to the provider: ``runs.cancel_pending_since``, cleared once the provider took it.

A request recorded before the provider is asked (so that a poll landing meanwhile records a cancel, not a failure)
and never confirmed (the bot stopped inside the call) turns the run's failures into cancels only for a while.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cancel_pending_since", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_pending_since")
