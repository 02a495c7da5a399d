"""Passive watch's rows: which pipelines are watched, since when, and where their alerts go (a person's
``/pipeline watch X #channel`` or the catalog's ``watch: true``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.tables import watches
from bot.store.upsert import upsert_insert

__all__ = ["Watch", "WatchRows"]


@dataclass(frozen=True, slots=True)
class Watch:
    pipeline: str
    enabled: bool
    channel: str | None
    since: datetime
    updated_by: str | None


class WatchRows:
    engine: AsyncEngine

    async def set_watch(
        self, pipeline: str, *, enabled: bool, channel: str | None, user_id: str | None, now: datetime
    ) -> Watch:
        """Switch watching on or off. ``since`` restarts when watching is switched on, so runs that
        ended while nobody watched are not announced as news."""
        async with self.engine.begin() as conn:
            existing = (await conn.execute(select(watches).where(watches.c.pipeline == pipeline))).mappings().first()
            since = now if existing is None or (enabled and not existing["enabled"]) else existing["since"]
            kept = existing["channel"] if existing is not None and enabled else None
            values = {
                "enabled": enabled,
                "channel": channel or kept,
                "since": since,
                "updated_by": user_id,
                "updated_at": now,
            }
            statement = upsert_insert(conn)(watches).values(pipeline=pipeline, **values)
            # two first cycles (or a cycle and a command) at once: the later write wins, nobody fails
            await conn.execute(statement.on_conflict_do_update(index_elements=["pipeline"], set_=values))
            row = (await conn.execute(select(watches).where(watches.c.pipeline == pipeline))).mappings().one()
            return _watch(row)

    async def start_watching(self, pipeline: str, *, now: datetime) -> Watch:
        """The watch cycle's first sight of a pipeline the catalog watches: watching begins now, unless a row was
        written since the cycle read none (a person's ``/pipeline watch X #channel``, another replica's cycle): that
        one is kept. An upsert here replaced the person's channel with none, after they were told where alerts go."""
        values = {"enabled": True, "channel": None, "since": now, "updated_by": None, "updated_at": now}
        statement = upsert_insert(self.engine)(watches).values(pipeline=pipeline, **values)
        async with self.engine.begin() as conn:
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["pipeline"]))
            row = (await conn.execute(select(watches).where(watches.c.pipeline == pipeline))).mappings().one()
            return _watch(row)

    async def watches(self) -> dict[str, Watch]:
        async with self.engine.connect() as conn:
            return {r["pipeline"]: _watch(r) for r in (await conn.execute(select(watches))).mappings()}


def _watch(row: RowMapping) -> Watch:
    return Watch(
        pipeline=row["pipeline"],
        enabled=bool(row["enabled"]),
        channel=row["channel"],
        since=row["since"],
        updated_by=row["updated_by"],
    )
