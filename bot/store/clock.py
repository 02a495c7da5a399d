"""On PostgreSQL, every replica tells time by the database's clock.

Replicas compare times that other replicas wrote: the replay ledger's claims (a claim not renewed for
``TAKEOVER_AFTER``, 5 s, is taken over), start leases, the Rivery start window. With each replica's own clock, one
whose clock runs more than 5 s ahead of another's took that replica's live claim for stale, and processed a Slack
request a second time. The bot's clock on PostgreSQL is therefore the local clock corrected by its offset from the
database's (``SELECT clock_timestamp()``, measured at start and every minute): one query a minute for the whole
process, and no SQL of the ledger or the leases changes (their tests still drive time through ``now``). What is
left is the measuring error (half a round trip, milliseconds) and a local clock that jumps between two
measurements (at most a minute's drift or one step of ``ntpd``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DatabaseClock"]

Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DatabaseClock:
    """``now``: the local clock plus its last measured offset from the database's."""

    def __init__(self, engine: AsyncEngine, *, local: Now = _utcnow) -> None:
        self.engine = engine
        self.local = local
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self.local() + self.offset

    async def measure(self) -> timedelta:
        """Measure the offset again (the database's time taken as read halfway through the round trip)."""
        async with self.engine.connect() as conn:
            sent = self.local()
            database: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
            received = self.local()
        self.offset = database.astimezone(UTC) - (sent + (received - sent) / 2)
        return self.offset
