"""The poller's leases on runs: a due run is claimed by one poller (one replica) at a time, for as long as its
poll lasts (renewed), and handed back with the poll's answer, or at once when a tick fails midway. A dead replica's
leases expire and another one takes its runs (``bot.store.rows.claim_returning``)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.records import RunRecord, StoredState
from bot.store.rows import claim_returning, run_of_row, runs_by_ids
from bot.store.tables import runs

#: runs the poller has nothing to ask of: waiting their turn, or starting (no provider id until the trigger answers).
#: A start claimed by a poller (Refresh had made it due) was held by the poller's leases, which its poll never hands
#: back, and recovery, which gives up a start only once its lease expired, missed it for every lease the poller took
_NOT_POLLED = (StoredState.WAITING.value, StoredState.STARTING.value)

__all__ = ["RunLeases"]


class RunLeases:
    engine: AsyncEngine

    async def claim_due(
        self, owner: str, *, now: datetime, limit: int, lease: timedelta, skip: Collection[str] = ()
    ) -> list[RunRecord]:
        """Runs due for a poll, leased to ``owner`` (never a start: its trigger has not answered yet), but for those
        of the connections in ``skip`` (with polls enough waiting already: they stay due for a later tick)."""
        free = or_(runs.c.lease_expires_at.is_(None), runs.c.lease_expires_at < now)
        query = (
            select(runs.c.id)
            .where(runs.c.final.is_(False), runs.c.next_poll_at <= now, free, runs.c.state.not_in(_NOT_POLLED))
            .order_by(runs.c.next_poll_at)
            .limit(limit)
        )
        if skip:
            query = query.where(runs.c.connection.not_in(list(skip)))
        return await claim_returning(self.engine, runs, query, owner, now + lease, run_of_row, runs_by_ids)

    async def claim_soon(
        self, owner: str, connections: Collection[str], *, until: datetime, now: datetime, limit: int, lease: timedelta
    ) -> list[RunRecord]:
        """Runs of ``connections`` due before ``until`` that nobody holds, leased to ``owner``: a batched poll
        answers for them as well as for the due runs of their scope, so they are polled with them (early), and
        from then on fall due together."""
        if not connections:
            return []
        free = or_(runs.c.lease_expires_at.is_(None), runs.c.lease_expires_at < now)
        query = (
            select(runs.c.id)
            .where(
                runs.c.final.is_(False),
                runs.c.connection.in_(list(connections)),
                runs.c.next_poll_at <= until,
                free,
                runs.c.state.not_in(_NOT_POLLED),
            )
            .order_by(runs.c.next_poll_at)
            .limit(limit)
        )
        return await claim_returning(self.engine, runs, query, owner, now + lease, run_of_row, runs_by_ids)

    async def release(self, owner: str, run_ids: Collection[int]) -> None:
        """Hand back ``owner``'s leases of these runs, untouched (claimed early for a batch that did not come)."""
        if not run_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id.in_(list(run_ids)), runs.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def renew_leases(self, owner: str, run_ids: Collection[int], *, until: datetime) -> None:
        """Extend ``owner``'s leases of runs it is still polling (a slow provider): a lease outlived by its poll
        would let another tick or replica poll the run a second time meanwhile."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id.in_(list(run_ids)), runs.c.lease_owner == owner)
                .values(lease_expires_at=until)
            )

    async def release_leases(self, owner: str, *, keep: Collection[int] = ()) -> None:
        """Hand back the runs ``owner`` claimed in a poll tick that failed midway (the database went away):
        otherwise they would wait for their leases to expire before anyone polls them again. Not the runs it is
        starting: their triggers are still pending in this process, which is not gone. ``keep``: runs still being
        polled, whose leases stay."""
        query = update(runs).where(runs.c.lease_owner == owner, runs.c.state != StoredState.STARTING.value)
        if keep:
            query = query.where(runs.c.id.not_in(list(keep)))
        async with self.engine.begin() as conn:
            await conn.execute(query.values(lease_owner=None, lease_expires_at=None))
