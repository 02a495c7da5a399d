"""The slots family (``singletons``): work done once across every process sharing the database, one slot at a
time (a schedule's occurrence, a day's digest, the passive watch's turn)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.tables import singletons

__all__ = ["SlotStore"]


class SlotStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def last(self, name: str) -> str | None:
        """The last slot claimed under ``name``, if any."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(singletons.c.slot).where(singletons.c.name == name))).first()
        return str(row[0]) if row else None

    async def claim(self, name: str, slot: str, owner: str, *, now: datetime) -> bool:
        """True for exactly one caller per (name, slot) across every process sharing the database.

        Slots compare as text: use sortable ones (``2026-11-22T09:00``, zero-padded numbers)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(singletons)
                .where(singletons.c.name == name, singletons.c.slot < slot)
                .values(slot=slot, owner=owner, at=now)
            )
            if result.rowcount == 1:
                return True
            exists = (await conn.execute(select(singletons.c.name).where(singletons.c.name == name))).first()
            if exists is not None:
                return False
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(singletons).values(name=name, slot=slot, owner=owner, at=now))
            except IntegrityError:  # another process inserted it first
                return False
            return True
