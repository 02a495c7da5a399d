"""Providers' caps on starting runs, held across replicas: the runs table is the count.

A run the bot is about to trigger is already a row (``starting``, ``created_at`` = now); ``admit`` counts the
connection's other runs the bot started (not runs found by passive watch, not retries still waiting) inside the
window and, when a cap is reached, either drops the row (a person is told when to try again) or turns it back into
a waiting run that starts when the cap allows (the bot's own starts: schedules, retries, workflow steps).

Why replicas cannot overshoot: every start is a row before it is counted, and a start goes ahead only if fewer
than the cap's count of *other* rows are in the window, admitted or not yet decided. Of any cap + 1 starts that
went ahead, the one counted last saw all the others, so it could not have gone ahead. That needs no lock, and the
common case (well under the cap) takes none. Near the cap, undecided starts would refuse one another, so the
decision is retaken under a per-connection lock (a PostgreSQL advisory lock across replicas; an asyncio lock
within one process, which is all SQLite serves), where a refused start's row goes in the same transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.models import RunState, TriggerLimit
from bot.store.records import WAITING, RunOrigin
from bot.store.tables import runs

__all__ = ["Held", "TriggerLimits"]


@dataclass(frozen=True, slots=True)
class Held:
    """A start held back by ``limit`` until ``until`` (a whole minute, the first one at which it fits)."""

    limit: TriggerLimit
    until: datetime


class TriggerLimits:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._locks: dict[str, asyncio.Lock] = {}

    async def admit(
        self, run_id: int, connection: str, limits: Sequence[TriggerLimit], *, now: datetime, queue: bool
    ) -> Held | None:
        """None: run ``run_id`` of ``connection`` may be triggered now. Else the cap it would break and when it
        fits; the run was dropped (``queue`` False) or set waiting until then, with the reason in
        ``extra["waiting_for"]``."""
        if not limits:
            return None
        async with self.engine.connect() as conn:
            if await self._held(conn, run_id, connection, limits, now) is None:
                return None
        lock = self._locks.setdefault(connection, asyncio.Lock())
        async with lock, self.engine.begin() as conn:
            if self._postgres:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(connection)})
            held = await self._held(conn, run_id, connection, limits, now)
            if held is None:
                return None
            if queue:
                await _set_waiting(conn, run_id, until=held.until, reason=held.limit.reason, now=now)
            else:
                await conn.execute(delete(runs).where(runs.c.id == run_id, runs.c.final.is_(False)))
            return held

    async def wait_again(self, run_id: int, *, until: datetime, reason: str, now: datetime) -> int | None:
        """A start the provider was too busy to take (429, 503: it did not start) waits again until ``until``;
        ``extra["busy"]`` counts how often. The count, or None when the run had ended meanwhile (given up)."""
        async with self.engine.begin() as conn:
            return await _set_waiting(conn, run_id, until=until, reason=reason, now=now, count="busy")

    async def _held(
        self,
        conn: AsyncConnection,
        run_id: int,
        connection: str,
        limits: Sequence[TriggerLimit],
        now: datetime,
    ) -> Held | None:
        widest = max(limit.window for limit in limits)
        query = select(runs.c.job, runs.c.created_at).where(
            runs.c.connection == connection,
            runs.c.id != run_id,
            runs.c.origin != RunOrigin.WATCH.value,  # started outside the bot: not a trigger of this connection's token
            runs.c.state != WAITING,  # not triggered yet (a retry's backoff, a start held by a cap)
            # canceled while it waited (``StartStore.cancel_waiting``): never triggered either
            ~((runs.c.state == RunState.CANCELED.value) & runs.c.provider_run_id.is_(None)),
            runs.c.created_at > now - widest,
        )
        started = [(row.job, row.created_at) for row in await conn.execute(query)]
        held: Held | None = None
        for limit in limits:
            times = sorted(at for job, at in started if at > now - limit.window and limit.counts(job or {}))
            if len(times) < limit.count:
                continue
            # the oldest runs leave the window one by one: this one fits once all but count - 1 have left
            until = _next_minute(times[len(times) - limit.count] + limit.window)
            if held is None or until > held.until:
                held = Held(limit, until)
        return held


async def _set_waiting(
    conn: AsyncConnection, run_id: int, *, until: datetime, reason: str, now: datetime, count: str | None = None
) -> int | None:
    extra = dict((await conn.execute(select(runs.c.extra).where(runs.c.id == run_id))).scalar_one_or_none() or {})
    extra["waiting_for"] = reason  # what else it held stays
    if count is not None:
        extra[count] = int(extra.get(count, 0)) + 1
    # a start given up meanwhile (its process taken for gone) stays ended: it is not to be started
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.final.is_(False))
        .values(
            state=WAITING,
            next_poll_at=until,
            extra=extra,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return int(extra.get(count or "", 0)) if result.rowcount == 1 else None


def _next_minute(when: datetime) -> datetime:
    """People read "try again at 10:02": a time shown to the minute must not be a moment too early."""
    floor = when.replace(second=0, microsecond=0)
    return floor if floor == when else floor + timedelta(minutes=1)


def _lock_key(connection: str) -> int:
    """A stable signed 64-bit key per connection for ``pg_advisory_xact_lock``."""
    digest = hashlib.blake2b(f"trigger-limits:{connection}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
