"""Writing a living message's desired content: the one place that knows how a card row changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
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
    row = (await conn.execute(select(cards.c.id, cards.c.text, cards.c.blocks).where(cards.c.key == key))).first()
    if row is None:
        await conn.execute(
            insert(cards).values(
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
        )
        return True
    if row.text == text and row.blocks == blocks:
        return False
    await conn.execute(
        update(cards)
        .where(cards.c.id == row.id)
        .values(text=text, blocks=blocks, version=cards.c.version + 1, updated_at=now)
    )
    return True
