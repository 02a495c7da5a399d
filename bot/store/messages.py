"""Writing a living message's desired content: the one place that knows how a card row changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.tables import cards

__all__ = ["write_message"]


async def write_message(
    conn: AsyncConnection,
    key: str,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]],
    *,
    now: datetime,
    run_id: int | None = None,
) -> bool:
    """Inside the caller's transaction. Returns False when the message already says exactly this."""
    query = select(cards.c.id, cards.c.text, cards.c.blocks).where(cards.c.key == key)
    row = (await conn.execute(query)).first()
    if row is None:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        created = await conn.execute(
            insert(cards)
            .values(
                key=key,
                run_id=run_id,
                channel=channel,
                text=text,
                blocks=blocks,
                version=1,
                sent_version=0,
                attempts=0,
                last_error="",
                updated_at=now,
            )
            # two writers of a new message at once (a poll and the trigger's answer): the second one updates it
            .on_conflict_do_nothing(index_elements=[cards.c.key])
        )
        if created.rowcount == 1:
            return True
        row = (await conn.execute(query)).first()
        assert row is not None  # the other writer's row: committed before our insert could go on
    if row.text == text and row.blocks == blocks:
        return False
    await conn.execute(
        update(cards)
        .where(cards.c.id == row.id)
        .values(text=text, blocks=blocks, version=cards.c.version + 1, updated_at=now)
    )
    return True
