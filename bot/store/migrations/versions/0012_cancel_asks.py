"""Cancels on their way to the provider: ``runs.cancel_asks``, how many asked and not yet answered, and
``runs.cancel_unconfirmed``, whether one's answer was lost (the provider may have taken it).

Two people cancel the same run at once: one refused (the run was ending) must not withdraw the other's request while
the provider is still answering it, or the run's "failed" (a cancel, on Rivery's legacy API) is announced as a failure.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cancel_asks", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cancel_unconfirmed", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_unconfirmed")
        batch.drop_column("cancel_asks")
