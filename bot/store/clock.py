"""On PostgreSQL, every replica tells time by the database's clock.

Replicas compare times that other replicas wrote: the replay ledger's claims (a claim not renewed for
``TAKEOVER_AFTER``, 5 s, is taken over), start leases, the Rivery start window. With each replica's own clock, one
whose clock runs more than 5 s ahead of another's took that replica's live claim for stale, and processed a Slack
request a second time. The bot's clock on PostgreSQL is therefore the local clock corrected by its offset from the
database's (``SELECT clock_timestamp()``, measured at start and every minute): one query a minute for the whole
process, and no SQL of the ledger or the leases changes (their tests still drive time through ``now``).

Between two measures, time is counted on a clock that never steps (``CLOCK_BOOTTIME``, which also counts a
suspended machine's sleep; elsewhere the monotonic clock), never on the wall clock: a wall clock stepped forward
(``ntpd``/``chrony`` stepping it, ``date -s``) put the replica that far ahead until the next measure, and for up
to a minute it took other replicas' live claims for stale. What is left is the measuring error (half a round
trip, milliseconds) and a minute's drift of that clock (slewed by NTP as the wall clock is: microseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DatabaseClock"]

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _steady() -> float:
    """Seconds on a clock that never steps: boot time where there is one (Linux), else the monotonic clock."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


class DatabaseClock:
    """``now``: the database's time at the last measure plus the time elapsed since, counted on a steady clock."""

    def __init__(self, engine: AsyncEngine, *, local: Now = _utcnow, steady: Callable[[], float] = _steady) -> None:
        self.engine = engine
        self.local = local
        self.steady = steady
        self.offset = timedelta(0)  # the database's clock less the local one, at the last measure (for reading)
        self._base: tuple[datetime, float] | None = None  # the database's time, and the steady clock's, then

    def now(self) -> datetime:
        if self._base is None:  # not measured yet
            return self.local() + self.offset
        at, mark = self._base
        return at + timedelta(seconds=self.steady() - mark)

    async def measure(self) -> timedelta:
        """Measure again (the database's time taken as read halfway through the round trip); the offset from the
        local clock, for reading."""
        async with self.engine.connect() as conn:
            sent, local_sent = self.steady(), self.local()
            database: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
            received, local_received = self.steady(), self.local()
        self._base = (database.astimezone(UTC), sent + (received - sent) / 2)
        self.offset = database.astimezone(UTC) - (local_sent + (local_received - local_sent) / 2)
        return self.offset
