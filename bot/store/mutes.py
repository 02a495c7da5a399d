"""The mutes family: pipelines whose failures are recorded but not announced, until a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.alert_events import EventKind, note_pipeline
from bot.store.tables import mutes

__all__ = ["MuteStore"]


class MuteStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def mute(self, pipeline: str, *, until: datetime, user_id: str | None, now: datetime) -> list[int]:
        """Mute ``pipeline`` until ``until``, replacing any mute it had. Returns the ids of its open alerts, whose
        timelines say so."""
        async with self.engine.begin() as conn:
            await conn.execute(mutes.delete().where(mutes.c.pipeline == pipeline))
            await conn.execute(insert(mutes).values(pipeline=pipeline, until=until, muted_by=user_id, muted_at=now))
            return await note_pipeline(conn, pipeline, EventKind.MUTED, at=now, actor=user_id, detail=until.isoformat())

    async def unmute(self, pipeline: str, *, now: datetime, user_id: str | None = None) -> list[int] | None:
        """End the mute now. None when it was not muted; else the ids of the pipeline's open alerts, whose timelines
        say so (their headers said "muted until"). The row stays, ended: escalation counts its wait from the end of
        the mute (``bot.store.escalations``)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(mutes).where(mutes.c.pipeline == pipeline, mutes.c.until > now).values(until=now)
            )
            if not result.rowcount:
                return None
            return await note_pipeline(conn, pipeline, EventKind.UNMUTED, at=now, actor=user_id)

    async def active(self, *, now: datetime) -> dict[str, tuple[datetime, str | None]]:
        """Pipelines muted at ``now``: name → (until, who). Expired mutes simply stop counting."""
        query = select(mutes).where(mutes.c.until > now)
        async with self.engine.connect() as conn:
            return {r["pipeline"]: (r["until"], r["muted_by"]) for r in (await conn.execute(query)).mappings()}
