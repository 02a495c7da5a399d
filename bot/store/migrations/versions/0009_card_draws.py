"""Card drawing tickets: of two drawings of one run's card made at once, the one started later is kept.

``runs.card_draws`` hands out the tickets; ``cards.drawn`` holds the ticket of the drawing a card shows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("card_draws", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("drawn", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("drawn")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("card_draws")
