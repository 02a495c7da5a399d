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
trip, milliseconds) and a minute's drift of that clock (slewed by NTP as the wall clock is: microseconds). The round
trip is kept short: each measure takes the quickest of a few queries, and keeps the last measure when none was
quick (a query stalled in flight, the event loop blocked or a packet sent again, put the clock half the stall off).
A first measure with no quick query is not kept either (it was, having no last one: a stall at start put the replica
half of it off for a minute): the local clock serves until a measure is quick, tried again every ``RETRY_FIRST``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["EVERY", "RETRY_FIRST", "DatabaseClock"]

Now = Callable[[], datetime]
log = logging.getLogger(__name__)
# queries per measure, the quickest kept: a stall while one is in flight (the event loop blocked, a packet lost and
# sent again) puts the time read up to half the stall off, and it would stay off until the next measure
SAMPLES = 3
MAX_ROUND_TRIP = 1.0  # seconds: no quicker query than this, and the last measure is kept
RETRY_FIRST = 5.0  # seconds: a first measure that stalled is tried again this soon, not a minute later
EVERY = 60.0  # seconds between measures once one was kept


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
        self._tried: float | None = None  # the steady clock at the last measure tried

    @property
    def measured(self) -> bool:
        """Whether a measure was kept: until then ``now`` is the local clock."""
        return self._base is not None

    def now(self) -> datetime:
        if self._base is None:  # not measured yet
            return self.local() + self.offset
        at, mark = self._base
        return at + timedelta(seconds=self.steady() - mark)

    async def tick(self) -> None:
        """The ``clock`` job (every ``RETRY_FIRST``): measure every ``EVERY``, or at once while none was kept."""
        if self._base is None or self._tried is None or self.steady() - self._tried >= EVERY - RETRY_FIRST / 2:
            await self.measure()

    async def measure(self) -> timedelta:
        """Measure again: a few queries, the quickest kept (the database's time taken as read halfway through its
        round trip, so its error is at most half of that); the offset from the local clock, for reading."""
        self._tried = self.steady()
        best: tuple[float, datetime, float, datetime] | None = None  # round trip, database's time, steady, local
        async with self.engine.connect() as conn:
            for _ in range(SAMPLES):
                sent, local_sent = self.steady(), self.local()
                database: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
                received, local_received = self.steady(), self.local()
                trip = received - sent
                if best is None or trip < best[0]:
                    best = (
                        trip,
                        database.astimezone(UTC),
                        sent + trip / 2,
                        local_sent + (local_received - local_sent) / 2,
                    )
        assert best is not None
        trip, at, mark, local = best
        if trip > MAX_ROUND_TRIP:
            # every query stalled (the event loop blocked, the network losing packets): the last measure is better;
            # before the first, the local clock (NTP-synchronised) is, and the next measure comes soon
            if self._base is None:
                log.warning("database clock not measured: the quickest query took %.1f s; the local clock is used "
                            "until a measure is quick (the next in %.0f s)", trip, RETRY_FIRST)
            else:
                log.warning("database clock not measured again: the quickest query took %.1f s", trip)
            return self.offset
        self._base = (at, mark)
        self.offset = at - local
        return self.offset
