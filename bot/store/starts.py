"""Runs being started (the ``runs`` rows in state ``starting`` or ``waiting``): the owner's lease on a start
while its trigger is pending, the retries whose backoff is over, the starts whose owner is gone, and the
trigger's answer that makes a start a run the poller follows."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from bot.models import RunState
from bot.store.alerting import repoint_alerts
from bot.store.records import RunOrigin, RunRecord, StoredState
from bot.store.rows import add_event, fetch_run, is_postgres, runs_by_ids, select_runs
from bot.store.tables import outbox, run_events, runs

__all__ = ["StartStore"]

_STARTING = StoredState.STARTING.value
_WAITING = StoredState.WAITING.value


class StartStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record_triggered(
        self, run_id: int, provider_run_id: str, *, now: datetime, next_poll_at: datetime
    ) -> RunRecord:
        """The trigger answered: the run is queued at the provider under ``provider_run_id``."""
        run, _ = await self.answered(run_id, provider_run_id, now=now, next_poll_at=next_poll_at)
        return run

    async def answered(
        self, run_id: int, provider_run_id: str, *, now: datetime, next_poll_at: datetime
    ) -> tuple[RunRecord, bool]:
        """Record the trigger's answer. True with the run when it had been given up meanwhile (its owner was
        thought gone) and is tracked again: the answer is never lost."""
        # passive watch may record the new run between the look for its copy and the update: look again
        for attempt in range(3):
            try:
                return await self._answered(run_id, provider_run_id, now=now, next_poll_at=next_poll_at)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _answered(
        self, run_id: int, provider_run_id: str, *, now: datetime, next_poll_at: datetime
    ) -> tuple[RunRecord, bool]:
        """One transaction over three families: the watched copy's messages (``outbox``) and alerts move to this
        run, the copy goes, and this run is queued; so the copy's card and alerts are never seen half moved."""
        queued = {
            "provider_run_id": provider_run_id,
            "state": StoredState.QUEUED.value,
            "updated_at": now,
            "next_poll_at": next_poll_at,
            "lease_owner": None,  # the start's lease: from now on the poller follows it
            "lease_expires_at": None,
        }
        async with self.engine.begin() as conn:
            await self._absorb_watched_copy(conn, run_id, provider_run_id)
            # still a start: an answer recorded again (``record_answer`` after a commit whose acknowledgement was
            # lost) moved a run polled since back to "queued" and cleared the poller's lease (polled twice at once)
            result = await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.final.is_(False), runs.c.state == _STARTING)
                .values(**queued)
            )
            resumed = False
            if result.rowcount != 1:
                # given up while its trigger was pending (recovery thought its owner gone): it did start after
                # all, so it is followed again to its real end. Only a run that never had an answer reopens.
                result = await conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.final.is_(True), runs.c.provider_run_id.is_(None))
                    .values(**queued, final=False, ended_at=None, message="", unknown_since=None, last_error="")
                )
                resumed = result.rowcount == 1
            if result.rowcount == 1:
                message = "the trigger answered after the run was given up: tracking resumed" if resumed else ""
                await add_event(conn, run_id, now, StoredState.QUEUED.value, "", message)
            return await fetch_run(conn, run_id), resumed

    async def _absorb_watched_copy(self, conn: AsyncConnection, run_id: int, provider_run_id: str) -> None:
        """A slow trigger answer: passive watch may have listed the new run first and recorded it as a run
        started outside Slack. It is this one: its copy goes, its messages and alerts stay with this run.
        Inside the caller's transaction (``_answered``). The copy may be under the connection's other name (a
        replica whose catalog renamed it watches the pipeline): the same pipeline and provider run, as
        ``RunReads.find_moved`` takes it."""
        mine = (await conn.execute(select(runs.c.connection, runs.c.pipeline, runs.c.provider)
                                   .where(runs.c.id == run_id))).first()
        if mine is None:
            return
        same = runs.c.connection == mine.connection
        if mine.pipeline is not None:
            same = or_(same, and_(runs.c.pipeline == mine.pipeline, runs.c.provider == mine.provider))
        query = select(runs.c.id).where(
            runs.c.provider_run_id == provider_run_id,
            runs.c.origin == RunOrigin.WATCH.value,
            runs.c.id != run_id,
            same,
        )
        for copy in (await conn.execute(query.order_by(runs.c.id))).scalars().all():
            await conn.execute(update(outbox).where(outbox.c.run_id == copy).values(run_id=run_id))
            await repoint_alerts(conn, copy, run_id)  # a failure alerted for the copy is this run's: counted once
            await conn.execute(run_events.delete().where(run_events.c.run_id == copy))
            await conn.execute(runs.delete().where(runs.c.id == copy))

    async def renew_leases(self, owner: str, run_ids: Sequence[int], *, until: datetime) -> set[int]:
        """Extend ``owner``'s leases on runs it is starting, in one statement; returns the ids renewed. A run
        missing is no longer its start (the trigger answered, or recovery gave it up)."""
        if not run_ids:
            return set()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.id.in_(run_ids), runs.c.lease_owner == owner, runs.c.state == _STARTING)
                .where(runs.c.final.is_(False))
                .values(lease_expires_at=until)
                .returning(runs.c.id)
            )
            return set(result.scalars())

    async def orphaned(self, *, now: datetime, unleased_before: datetime, limit: int = 1000) -> list[RunRecord]:
        """Runs left ``starting`` by an owner that is gone: its lease expired. A start without a lease (its owner
        released it at shutdown, or it comes from a version without start leases) counts once it was created
        before ``unleased_before``."""
        query = select(runs).where(_orphaned_start(now, unleased_before)).order_by(runs.c.id).limit(limit)
        return await select_runs(self.engine, query)

    async def give_up(
        self, run_id: int, message: str, *, now: datetime, unleased_before: datetime
    ) -> RunRecord | None:
        """End an orphaned start as unknown, unless its owner renewed its lease or its trigger answered since it
        was found (None then). Checked in the update itself: two replicas never both decide."""
        return await self._end(run_id, _orphaned_start(now, unleased_before), RunState.UNKNOWN, message, now=now)

    async def cancel_waiting(self, run_id: int, user_id: str, *, now: datetime) -> RunRecord | None:
        """``user_id`` cancels a run still waiting its turn (a retry's backoff, a provider's cap): nothing is at the
        provider, so it ends canceled here and never starts. None when it is not waiting any more (a starter claimed
        it meanwhile: its trigger is on its way, and the provider's cancel is the way). Checked in the update itself,
        so a start and a cancel never both go ahead."""
        message = f"canceled at <@{user_id}>'s request before it started"
        waiting = (runs.c.state == _WAITING) & runs.c.final.is_(False)
        return await self._end(run_id, waiting, RunState.CANCELED, message, now=now, cancel_requested_by=user_id)

    async def _end(
        self, run_id: int, condition: ColumnElement[bool], state: RunState, message: str, *, now: datetime,
        **more: object,
    ) -> RunRecord | None:
        """End a run that never started (``state``, ``message``) if ``condition`` still holds; None if not."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, condition)
                .values(state=state.value, message=message, final=True, ended_at=now, next_poll_at=None,
                        updated_at=now, lease_owner=None, lease_expires_at=None, **more)
            )
            if result.rowcount != 1:
                return None
            await add_event(conn, run_id, now, state.value, "", message)
            return await fetch_run(conn, run_id)

    async def claim_waiting(
        self,
        owner: str,
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        connections: Collection[str] | None = None,
        others_after: timedelta = timedelta(0),
    ) -> list[RunRecord]:
        """Retries whose backoff is over, each set to ``starting`` for one owner to trigger. ``connections``: the
        owner's (None: any); a run of another connection only once ``others_after`` overdue (no replica that has
        its connection is about to start it)."""
        free = or_(runs.c.lease_expires_at.is_(None), runs.c.lease_expires_at < now)
        mine = (
            or_(runs.c.connection.in_(list(connections)), runs.c.next_poll_at <= now - others_after)
            if connections is not None
            else true()
        )
        query = (
            select(runs.c.id)
            .where(runs.c.state == _WAITING, runs.c.next_poll_at <= now, free, mine)
            .order_by(runs.c.next_poll_at)
            .limit(limit)
        )
        if is_postgres(self.engine):
            query = query.with_for_update(skip_locked=True)
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            # still waiting: on SQLite the SELECT above takes no lock (Python's sqlite3 begins the transaction at
            # the UPDATE), so a cancel (``cancel_waiting``) committed in between must not be turned back into a
            # start (it was: state "starting" on a run ended canceled, its card and status showing it starting)
            result = await conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids), runs.c.state == _WAITING, runs.c.final.is_(False))
                .values(
                    state=_STARTING, next_poll_at=None, created_at=now, lease_owner=owner, lease_expires_at=now + lease
                )
                .returning(runs.c.id)
            )
            claimed = list(result.scalars())
            return await runs_by_ids(conn, claimed) if claimed else []


def _orphaned_start(now: datetime, unleased_before: datetime) -> ColumnElement[bool]:
    """A run being started whose owner is gone: its lease expired (or it has none, and is old)."""
    return and_(
        runs.c.state == _STARTING,
        runs.c.final.is_(False),
        or_(
            runs.c.lease_expires_at < now,
            and_(runs.c.lease_expires_at.is_(None), runs.c.created_at < unleased_before),
        ),
    )
