"""Writing a living message's desired content: the one place that knows how a card row changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import Json, JsonValue
from bot.store.tables import cards
from bot.store.upsert import upsert_insert

__all__ = ["write_message"]


async def write_message(
    conn: AsyncConnection,
    key: str,
    channel: str,
    text: str,
    blocks: list[Json],
    *,
    now: datetime,
    run_id: int | None = None,
    ticket: int | None = None,
) -> bool:
    """Inside the caller's transaction. Returns False when the message already says exactly this, or when
    ``ticket`` (a drawing's, ``CardStore``'s tickets) is older than the one of a drawing that created the message
    since we looked."""
    row = await _current(conn, key)
    if row is None:
        dialect_insert = upsert_insert(conn)
        inserted = await conn.execute(
            dialect_insert(cards)
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
                **({} if ticket is None else {"drawn": ticket}),
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        if inserted.rowcount == 1:
            return True
        # another writer created it since we looked (a run's first poll and the command that started it, under
        # load): change what it wrote, as if we had come second, unless it drew later facts than ours (PostgreSQL:
        # it committed while our insert waited on its key; the update locks the row to our commit)
        if ticket is not None:
            kept = await conn.execute(
                update(cards).where(cards.c.key == key, cards.c.drawn <= ticket).values(drawn=ticket)
            )
            if kept.rowcount == 0:
                return False
        row = await _current(conn, key)
        if row is None:
            raise RuntimeError(f"the message {key} was created and deleted while being written")
    card_id, current_text, current_blocks = row
    if current_text == text and current_blocks == blocks:
        return False
    await conn.execute(
        update(cards)
        .where(cards.c.id == card_id)
        .values(text=text, blocks=blocks, version=cards.c.version + 1, updated_at=now)
    )
    return True


async def _current(conn: AsyncConnection, key: str) -> tuple[int, str, JsonValue] | None:
    """The message's id, text and blocks; None when it does not exist yet."""
    row = (await conn.execute(select(cards.c.id, cards.c.text, cards.c.blocks).where(cards.c.key == key))).first()
    return None if row is None else (row.id, row.text, row.blocks)
