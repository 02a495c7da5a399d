"""The only code that speaks SQL: named queries that take and return domain records.

Claims (due runs, cards and messages to send) set a lease: an owner and an expiry. On PostgreSQL the
rows are picked with ``FOR UPDATE SKIP LOCKED`` so several replicas never take the same row; a dead
replica's leases expire and another one takes over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

from bot.models import RunState, RunStatus, TaskStatus
from bot.store.alerting import AlertStore, repoint_alerts
from bot.store.limits import TriggerLimits
from bot.store.messages import write_message
from bot.store.records import STARTING, WAITING, AuditEntry, CardRecord, NewRun, OutboxItem, RunRecord, Transition
from bot.store.requests import Ledger, LocalRequestLedger, RequestLedger
from bot.store.tables import audit, cards, mutes, outbox, run_events, runs
from bot.store.workflow_runs import WorkflowStore

__all__ = ["AlreadyRetried", "AlreadyTracked", "Store"]

R = TypeVar("R")


class AlreadyRetried(Exception):
    """A run was retried already (double click, two people at once)."""

    def __init__(self, retry: RunRecord) -> None:
        super().__init__(f"run {retry.retry_of} was already retried as run {retry.id}")
        self.retry = retry


class AlreadyTracked(Exception):
    """A provider run is already recorded (another replica found it first)."""

    def __init__(self, run: RunRecord) -> None:
        super().__init__(f"provider run {run.provider_run_id} is already tracked as run {run.id}")
        self.run = run


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self.alerting = AlertStore(engine)
        self.workflows = WorkflowStore(engine)
        self.requests: Ledger = (
            RequestLedger(engine) if self._postgres else LocalRequestLedger(engine)
        )
        self.limits = TriggerLimits(engine)

    async def close(self) -> None:
        await self.requests.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    # -- runs -------------------------------------------------------------------------------

    async def create_run(
        self,
        new: NewRun,
        *,
        now: datetime,
        next_poll_at: datetime | None,
        owner: str | None = None,
        lease: timedelta | None = None,
    ) -> RunRecord:
        """Record a run before its trigger is sent (state ``starting``), or one found by the watcher.

        A run being started belongs to ``owner`` for ``lease`` (renewed while its trigger is pending): recovery
        gives up only starts whose owner is gone (``orphaned_starts``)."""
        values: dict[str, Any] = {
            "pipeline": new.pipeline,
            "provider": new.provider,
            "connection": new.connection,
            "job": dict(new.job),
            "parameters": dict(new.parameters),
            "provider_run_id": new.provider_run_id,
            "state": WAITING if new.start_at else (STARTING if new.provider_run_id is None else RunState.QUEUED.value),
            "raw_status": "",
            "message": "",
            "warning": "",
            "tasks": [],
            "extra": {},
            "final": False,
            "origin": new.origin,
            "started_by": new.started_by,
            "channel": new.channel,
            "retry_of": new.retry_of,
            "attempt": new.attempt,
            "workflow_run_id": new.workflow_run_id,
            "step": new.step,
            "created_at": now,
            "updated_at": now,
            "next_poll_at": new.start_at or next_poll_at,
            "polls": 0,
            "last_error": "",
        }
        if owner is not None and values["state"] == STARTING:
            values.update(lease_owner=owner, lease_expires_at=now + (lease or timedelta(seconds=60)))
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(insert(runs).values(**values).returning(runs.c.id))
                run_id = result.scalar_one()
                return await self._run(conn, run_id)
        except IntegrityError:
            if new.retry_of is not None:
                existing = await self.retry_of(new.retry_of)
                if existing is not None:
                    raise AlreadyRetried(existing) from None
            if new.provider_run_id is not None:
                found = await self.find_run(new.connection, new.provider_run_id)
                if found is not None:
                    raise AlreadyTracked(found) from None
            raise

    async def get_run(self, run_id: int) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
        return _run(row) if row else None

    async def retry_of(self, run_id: int) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.retry_of == run_id))).mappings().first()
        return _run(row) if row else None

    async def find_run(self, connection: str, provider_run_id: str) -> RunRecord | None:
        query = select(runs).where(runs.c.connection == connection, runs.c.provider_run_id == provider_run_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _run(row) if row else None

    async def runs_in_flight(self, limit: int = 200) -> list[RunRecord]:
        return await self._runs(select(runs).where(runs.c.final.is_(False)).order_by(runs.c.id).limit(limit))

    async def recent_runs(self, pipeline: str, limit: int = 10) -> list[RunRecord]:
        query = select(runs).where(runs.c.pipeline == pipeline).order_by(runs.c.id.desc()).limit(limit)
        return await self._runs(query)

    async def runs_between(self, start: datetime, end: datetime, pipeline: str | None = None) -> list[RunRecord]:
        query = select(runs).where(runs.c.created_at >= start, runs.c.created_at < end)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        return await self._runs(query.order_by(runs.c.id))

    async def events(self, run_id: int) -> list[tuple[datetime, str, str, str]]:
        query = (
            select(run_events.c.at, run_events.c.state, run_events.c.raw_status, run_events.c.message)
            .where(run_events.c.run_id == run_id)
            .order_by(run_events.c.id)
        )
        async with self.engine.connect() as conn:
            return [(r.at, r.state, r.raw_status, r.message) for r in await conn.execute(query)]

    async def record_triggered(
        self, run_id: int, provider_run_id: str, *, now: datetime, next_poll_at: datetime
    ) -> RunRecord:
        """The trigger answered: the run is queued at the provider under ``provider_run_id``."""
        run, _ = await self.trigger_answered(run_id, provider_run_id, now=now, next_poll_at=next_poll_at)
        return run

    async def trigger_answered(
        self, run_id: int, provider_run_id: str, *, now: datetime, next_poll_at: datetime
    ) -> tuple[RunRecord, bool]:
        """Record the trigger's answer. True with the run when it had been given up meanwhile (its owner was
        thought gone) and is tracked again: the answer is never lost."""
        # passive watch may record the new run between the look for its copy and the update: look again
        for attempt in range(3):
            try:
                return await self._record_triggered(run_id, provider_run_id, now=now, next_poll_at=next_poll_at)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _record_triggered(
        self, run_id: int, provider_run_id: str, *, now: datetime, next_poll_at: datetime
    ) -> tuple[RunRecord, bool]:
        queued = {
            "provider_run_id": provider_run_id,
            "state": RunState.QUEUED.value,
            "updated_at": now,
            "next_poll_at": next_poll_at,
            "lease_owner": None,  # the start's lease: from now on the poller follows it
            "lease_expires_at": None,
        }
        async with self.engine.begin() as conn:
            await self._absorb_watched_copy(conn, run_id, provider_run_id)
            result = await conn.execute(
                update(runs).where(runs.c.id == run_id, runs.c.final.is_(False)).values(**queued)
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
                await _event(conn, run_id, now, RunState.QUEUED.value, "", message)
            return await self._run(conn, run_id), resumed

    async def _absorb_watched_copy(self, conn: AsyncConnection, run_id: int, provider_run_id: str) -> None:
        """A slow trigger answer: passive watch may have listed the new run first and recorded it as a run
        started outside Slack. It is this one: its copy goes, its messages and alerts stay with this run."""
        connection = select(runs.c.connection).where(runs.c.id == run_id).scalar_subquery()
        query = select(runs.c.id).where(
            runs.c.connection == connection,
            runs.c.provider_run_id == provider_run_id,
            runs.c.origin == "watch",
            runs.c.id != run_id,
        )
        copy = (await conn.execute(query)).scalar()
        if copy is None:
            return
        await conn.execute(update(outbox).where(outbox.c.run_id == copy).values(run_id=run_id))
        await repoint_alerts(conn, copy, run_id)  # a failure alerted for the copy is this run's: counted once
        await conn.execute(run_events.delete().where(run_events.c.run_id == copy))
        await conn.execute(runs.delete().where(runs.c.id == copy))

    async def record_status(
        self, run_id: int, status: RunStatus, *, now: datetime, next_poll_at: datetime | None
    ) -> Transition | None:
        """Store what the provider said; returns a Transition when anything a person sees changed.

        The poller and the watcher may record the same run at once: the write is conditional on the run
        not having changed since it was read (``polls`` counts writes), so one change is reported once.
        """
        for _ in range(5):
            async with self.engine.begin() as conn:
                row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
                if row is None:  # a watched copy absorbed by the run that started it
                    return None
                before = _run(row)
                if before.final:  # an ended run stays ended, whatever a stale answer says
                    return None
                values = _status_values(before, status, now, next_poll_at)
                result = await conn.execute(
                    update(runs).where(runs.c.id == run_id, runs.c.polls == before.polls).values(**values)
                )
                if result.rowcount != 1:
                    continue  # someone recorded this run meanwhile: read it again
                tasks = values["tasks"]
                visible = (
                    before.state != status.state.value
                    or before.raw_status != values["raw_status"]
                    or before.message != status.message
                    or [_task_json(t) for t in before.tasks] != tasks
                    or before.final != status.final
                    or before.unknown_since is not None
                )
                if before.state != status.state.value or before.raw_status != values["raw_status"]:
                    await _event(conn, run_id, now, status.state.value, values["raw_status"], status.message)
                after = await self._run(conn, run_id)
            return Transition(after, before.state, after.state) if visible else None
        raise RuntimeError(f"run {run_id} kept changing while its status was recorded")

    async def record_poll_error(self, run_id: int, error: str, *, now: datetime, next_poll_at: datetime) -> RunRecord:
        """The provider did not answer: the run stays as it was, marked unknown since the first miss."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    unknown_since=func.coalesce(runs.c.unknown_since, now),
                    last_error=error[:2000],
                    next_poll_at=next_poll_at,
                    polls=runs.c.polls + 1,
                    updated_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return await self._run(conn, run_id)

    async def finish_run(self, run_id: int, state: RunState, message: str, *, now: datetime) -> RunRecord:
        """End a run on the bot's side (trigger failed, status unknown for too long)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    state=state.value,
                    message=message,
                    final=True,
                    ended_at=now,
                    next_poll_at=None,
                    updated_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            await _event(conn, run_id, now, state.value, "", message)
            return await self._run(conn, run_id)

    async def renew_start_leases(self, owner: str, run_ids: Sequence[int], *, until: datetime) -> set[int]:
        """Extend ``owner``'s leases on runs it is starting, in one statement; returns the ids renewed. A run
        missing is no longer its start (the trigger answered, or recovery gave it up)."""
        if not run_ids:
            return set()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.id.in_(run_ids), runs.c.lease_owner == owner, runs.c.state == STARTING)
                .where(runs.c.final.is_(False))
                .values(lease_expires_at=until)
                .returning(runs.c.id)
            )
            return set(result.scalars())

    async def orphaned_starts(self, *, now: datetime, unleased_before: datetime, limit: int = 1000) -> list[RunRecord]:
        """Runs left ``starting`` by an owner that is gone: its lease expired. A start without a lease (its owner
        released it at shutdown, or it comes from a version without start leases) counts once it was created
        before ``unleased_before``."""
        return await self._runs(
            select(runs).where(_orphaned_start(now, unleased_before)).order_by(runs.c.id).limit(limit)
        )

    async def give_up_start(
        self, run_id: int, message: str, *, now: datetime, unleased_before: datetime
    ) -> RunRecord | None:
        """End an orphaned start as unknown, unless its owner renewed its lease or its trigger answered since it
        was found (None then). Checked in the update itself: two replicas never both decide."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, _orphaned_start(now, unleased_before))
                .values(
                    state=RunState.UNKNOWN.value,
                    message=message,
                    final=True,
                    ended_at=now,
                    next_poll_at=None,
                    updated_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            if result.rowcount != 1:
                return None
            await _event(conn, run_id, now, RunState.UNKNOWN.value, "", message)
            return await self._run(conn, run_id)

    async def cancel_requested(self, run_id: int, user_id: str, *, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs).where(runs.c.id == run_id).values(cancel_requested_by=user_id, next_poll_at=now)
            )

    async def mark_notified(self, run_id: int, state: str) -> None:
        """The card and alerts for ``state`` are written (intents in the store): nothing to redo after a crash."""
        async with self.engine.begin() as conn:
            await conn.execute(update(runs).where(runs.c.id == run_id).values(notified_state=state))

    async def unnotified_runs(self, *, older_than: datetime, limit: int = 200) -> list[RunRecord]:
        """Runs whose last change was recorded but whose card and alerts may not have been written (the
        process died in between), that change being older than ``older_than`` (a live process may be writing
        them right now). Not ``updated_at``: every poll moves it, and a run still polled would never qualify."""
        changed_lately = (
            select(run_events.c.id).where(run_events.c.run_id == runs.c.id, run_events.c.at >= older_than).exists()
        )
        query = (
            select(runs)
            .where(
                runs.c.state.not_in((STARTING, WAITING)),
                or_(runs.c.notified_state.is_(None), runs.c.notified_state != runs.c.state),
                runs.c.created_at < older_than,
                ~changed_lately,
            )
            .order_by(runs.c.id)
            .limit(limit)
        )
        return await self._runs(query)

    async def poll_now(self, run_id: int, *, now: datetime) -> None:
        """Refresh button: make a live run due at once."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs).where(runs.c.id == run_id, runs.c.final.is_(False)).values(next_poll_at=now)
            )

    async def acknowledge(self, run_id: int, user_id: str, *, now: datetime) -> tuple[RunRecord, bool]:
        """Mark a run as being handled. Returns the run and whether this call was the first."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.acknowledged_by.is_(None))
                .values(acknowledged_by=user_id, acknowledged_at=now, updated_at=now)
            )
            return await self._run(conn, run_id), result.rowcount == 1

    async def claim_due_runs(self, owner: str, *, now: datetime, limit: int, lease: timedelta) -> list[RunRecord]:
        free = or_(runs.c.lease_expires_at.is_(None), runs.c.lease_expires_at < now)
        query = (
            select(runs.c.id)
            .where(runs.c.final.is_(False), runs.c.next_poll_at <= now, free, runs.c.state != WAITING)
            .order_by(runs.c.next_poll_at)
            .limit(limit)
        )
        return await self._claim(runs, query, owner, now + lease, self._runs_by_ids)

    async def claim_waiting_runs(self, owner: str, *, now: datetime, limit: int, lease: timedelta) -> list[RunRecord]:
        """Retries whose backoff is over, each set to ``starting`` for one owner to trigger."""
        free = or_(runs.c.lease_expires_at.is_(None), runs.c.lease_expires_at < now)
        query = (
            select(runs.c.id)
            .where(runs.c.state == WAITING, runs.c.next_poll_at <= now, free)
            .order_by(runs.c.next_poll_at)
            .limit(limit)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            await conn.execute(
                update(runs)
                .where(runs.c.id.in_(ids))
                .values(
                    state=STARTING, next_poll_at=None, created_at=now, lease_owner=owner, lease_expires_at=now + lease
                )
            )
            return await self._runs_by_ids(conn, ids)

    async def repoint_run(self, run_id: int, provider_run_id: str) -> None:
        """A provider reuses a run id on resume (DataKitchen's order): the old attempt keeps a precise one."""
        async with self.engine.begin() as conn:
            await conn.execute(update(runs).where(runs.c.id == run_id).values(provider_run_id=provider_run_id))

    async def runs_of_workflow(self, workflow_run_id: int) -> list[RunRecord]:
        query = select(runs).where(runs.c.workflow_run_id == workflow_run_id).order_by(runs.c.id)
        return await self._runs(query)

    async def release_leases(self, owner: str | None = None) -> None:
        """Hand back leases: one owner's at shutdown; everyone's at start on SQLite, where only one
        process can run, so any lease found there belongs to a process that died."""
        async with self.engine.begin() as conn:
            for table in (runs, cards, outbox):
                query = update(table).values(lease_owner=None, lease_expires_at=None)
                if owner is not None:
                    query = query.where(table.c.lease_owner == owner)
                await conn.execute(query)

    async def release_run_leases(self, owner: str, *, keep: Collection[int] = ()) -> None:
        """Hand back the runs ``owner`` claimed in a poll tick that failed midway (the database went away):
        otherwise they would wait for their leases to expire before anyone polls them again. Not the runs it is
        starting: their triggers are still pending in this process, which is not gone. ``keep``: runs still being
        polled, whose leases stay."""
        query = update(runs).where(runs.c.lease_owner == owner, runs.c.state != STARTING)
        if keep:
            query = query.where(runs.c.id.not_in(list(keep)))
        async with self.engine.begin() as conn:
            await conn.execute(query.values(lease_owner=None, lease_expires_at=None))

    async def renew_run_leases(self, owner: str, run_ids: Collection[int], *, until: datetime) -> None:
        """Extend ``owner``'s leases of runs it is still polling (a slow provider): a lease outlived by its poll
        would let another tick or replica poll the run a second time meanwhile."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id.in_(list(run_ids)), runs.c.lease_owner == owner)
                .values(lease_expires_at=until)
            )

    async def release_delivery_leases(self, owner: str) -> None:
        """Hand back the cards and messages ``owner`` claimed in a delivery tick that failed midway."""
        async with self.engine.begin() as conn:
            for table in (cards, outbox):
                await conn.execute(
                    update(table).where(table.c.lease_owner == owner).values(lease_owner=None, lease_expires_at=None)
                )

    @property
    def single_process(self) -> bool:
        return not self._postgres

    # -- cards ------------------------------------------------------------------------------

    async def set_card(
        self, run_id: int, channel: str, text: str, blocks: list[dict[str, Any]], *, now: datetime
    ) -> bool:
        """What the run's card should show. Returns False when it already shows exactly that."""
        return await self.set_message(f"run:{run_id}", channel, text, blocks, now=now, run_id=run_id)

    async def set_message(
        self,
        key: str,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        now: datetime,
        run_id: int | None = None,
    ) -> bool:
        """What a living message (card, alert) should show; False when it already shows exactly that."""
        async with self.engine.begin() as conn:
            return await write_message(conn, key, channel, text, blocks, now=now, run_id=run_id)

    async def message_ts(self, key: str) -> tuple[str, str] | None:
        """(channel, ts) of a living message once Slack has it."""
        query = select(cards.c.channel, cards.c.ts).where(cards.c.key == key)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row.channel, row.ts) if row and row.ts else None

    async def card_of(self, run_id: int) -> CardRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(cards).where(cards.c.run_id == run_id))).mappings().first()
        return _card(row) if row else None

    async def run_of_message(self, channel: str, ts: str) -> RunRecord | None:
        query = (
            select(runs).join(cards, cards.c.run_id == runs.c.id).where(cards.c.channel == channel, cards.c.ts == ts)
        )
        found = await self._runs(query)
        return found[0] if found else None

    async def claim_cards(self, owner: str, *, now: datetime, limit: int, lease: timedelta) -> list[CardRecord]:
        free = or_(cards.c.lease_expires_at.is_(None), cards.c.lease_expires_at < now)
        ready = or_(cards.c.not_before.is_(None), cards.c.not_before <= now)
        query = (
            select(cards.c.id)
            .where(cards.c.version > cards.c.sent_version, free, ready)
            .order_by(cards.c.id)
            .limit(limit)
        )
        return await self._claim(cards, query, owner, now + lease, self._cards_by_ids)

    async def card_attempt(self, card_id: int, *, now: datetime) -> None:
        """Before posting: if we die before hearing back, the next try knows a post may exist."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards).where(cards.c.id == card_id).values(attempting_since=now, attempts=cards.c.attempts + 1)
            )

    async def card_sent(
        self,
        card_id: int,
        version: int,
        ts: str | None,
        *,
        channel: str | None = None,
        next_edit_at: datetime | None = None,
    ) -> None:
        """Slack shows ``version``. A newer version waits until ``next_edit_at`` (edits of one message paced)."""
        values: dict[str, Any] = {
            "sent_version": func.max(cards.c.sent_version, version)
            if not self._postgres
            else func.greatest(cards.c.sent_version, version),
            "attempting_since": None,
            "attempts": 0,
            "not_before": next_edit_at,
            "last_error": "",
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if ts is not None:
            values["ts"] = ts
        if channel is not None:  # Slack answers with the channel id: updates need it, not #name
            values["channel"] = channel
        async with self.engine.begin() as conn:
            await conn.execute(update(cards).where(cards.c.id == card_id).values(**values))

    async def card_move(self, card_id: int, channel: str) -> None:
        """Its channel refused it: post it in ``channel`` instead."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards)
                .where(cards.c.id == card_id)
                .values(
                    channel=channel,
                    ts=None,
                    sent_version=0,
                    attempting_since=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    async def outbox_move(self, item_id: int, channel: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(channel=channel, attempting_since=None, lease_owner=None, lease_expires_at=None)
            )

    async def card_posted(
        self, card_id: int, version: int, ts: str, *, channel: str, next_edit_at: datetime | None = None
    ) -> bool:
        """Record a card's first post. False when another process recorded one first: ours is a duplicate."""
        sent_version = func.greatest if self._postgres else func.max
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(cards)
                .where(cards.c.id == card_id, cards.c.ts.is_(None))
                .values(
                    ts=ts, channel=channel, sent_version=sent_version(cards.c.sent_version, version),
                    attempting_since=None, attempts=0, not_before=next_edit_at, last_error="", lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return bool(result.rowcount == 1)

    async def card_lost(self, card_id: int) -> None:
        """The message was deleted in Slack: post the card again."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards)
                .where(cards.c.id == card_id)
                .values(ts=None, sent_version=0, attempting_since=None, lease_owner=None, lease_expires_at=None)
            )

    async def card_given_up(self, card_id: int, version: int, error: str) -> None:
        """Slack refuses this card for good (channel gone…): stop trying, keep the reason."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards)
                .where(cards.c.id == card_id)
                .values(
                    sent_version=version,
                    last_error=error[:2000],
                    attempting_since=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    async def card_retry_later(self, card_id: int, *, not_before: datetime, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards)
                .where(cards.c.id == card_id)
                .values(not_before=not_before, last_error=error[:2000], lease_owner=None, lease_expires_at=None)
            )

    # -- outbox -----------------------------------------------------------------------------

    async def enqueue(
        self,
        key: str,
        *,
        kind: str,
        text: str,
        now: datetime,
        blocks: list[dict[str, Any]] | None = None,
        run_id: int | None = None,
        channel: str | None = None,
        card_key: str | None = None,
    ) -> bool:
        """Record a message to send. The same key twice is one message: returns False the second time.

        A ``thread`` reply goes under the living message ``card_key`` (a run's card by default)."""
        if kind == "thread" and card_key is None:
            card_key = f"run:{run_id}"
        values = {
            "card_key": card_key,
            "key": key[:200],
            "run_id": run_id,
            "kind": kind,
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "state": "pending",
            "attempts": 0,
            "last_error": "",
            "created_at": now,
        }
        dialect_insert = pg_insert if self._postgres else sqlite_insert
        statement = dialect_insert(outbox).values(**values).on_conflict_do_nothing(index_elements=["key"])
        async with self.engine.begin() as conn:
            result = await conn.execute(statement)
            return bool(result.rowcount)

    async def claim_outbox(self, owner: str, *, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
        free = or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at < now)
        ready = or_(outbox.c.not_before.is_(None), outbox.c.not_before <= now)
        # a thread reply waits for its card to be posted
        card_posted = or_(
            outbox.c.kind != "thread",
            select(cards.c.id).where(cards.c.key == outbox.c.card_key, cards.c.ts.is_not(None)).exists(),
        )
        query = (
            select(outbox.c.id)
            .where(outbox.c.state == "pending", free, ready, card_posted)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return await self._claim(outbox, query, owner, now + lease, self._outbox_by_ids)

    async def outbox_attempt(self, item_id: int, *, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(attempting_since=now, attempts=outbox.c.attempts + 1)
            )

    async def outbox_sent(self, item_id: int, ts: str | None, *, now: datetime) -> bool:
        """Mark a message sent. False when another process marked it first: ours is a duplicate."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id, outbox.c.state == "pending")
                .values(
                    state="sent", ts=ts, sent_at=now, attempting_since=None, lease_owner=None, lease_expires_at=None
                )
            )
            return bool(result.rowcount == 1)

    async def outbox_retry_later(self, item_id: int, *, not_before: datetime, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(not_before=not_before, last_error=error[:2000], lease_owner=None, lease_expires_at=None)
            )

    async def outbox_dead(self, item_id: int, error: str) -> None:
        """Slack refused it for good (e.g. channel archived): kept, visible, not retried."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(state="dead", last_error=error[:2000], lease_owner=None, lease_expires_at=None)
            )

    async def count_by_state(self) -> dict[tuple[str, bool], int]:
        """(state, final) → number of runs, for metrics."""
        query = select(runs.c.state, runs.c.final, func.count()).group_by(runs.c.state, runs.c.final)
        async with self.engine.connect() as conn:
            return {(r[0], bool(r[1])): int(r[2]) for r in await conn.execute(query)}

    async def outbox_pending(self) -> int:
        async with self.engine.connect() as conn:
            result = await conn.execute(select(func.count()).select_from(outbox).where(outbox.c.state == "pending"))
            pending = int(result.scalar_one())
            result = await conn.execute(
                select(func.count()).select_from(cards).where(cards.c.version > cards.c.sent_version)
            )
            return pending + int(result.scalar_one())

    async def sent_messages(self, run_id: int) -> list[OutboxItem]:
        query = select(outbox.c.id).where(outbox.c.run_id == run_id).order_by(outbox.c.id)
        async with self.engine.connect() as conn:
            ids = list((await conn.execute(query)).scalars())
            return await self._outbox_by_ids(conn, ids)

    # -- mutes ------------------------------------------------------------------------------

    async def mute(self, pipeline: str, *, until: datetime, user_id: str | None, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(mutes.delete().where(mutes.c.pipeline == pipeline))
            await conn.execute(insert(mutes).values(pipeline=pipeline, until=until, muted_by=user_id, muted_at=now))

    async def unmute(self, pipeline: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(mutes.delete().where(mutes.c.pipeline == pipeline))
            return bool(result.rowcount)

    async def muted(self, *, now: datetime) -> dict[str, tuple[datetime, str | None]]:
        """Pipelines muted at ``now``: name → (until, who). Expired mutes simply stop counting."""
        query = select(mutes).where(mutes.c.until > now)
        async with self.engine.connect() as conn:
            return {r["pipeline"]: (r["until"], r["muted_by"]) for r in (await conn.execute(query)).mappings()}

    # -- audit ------------------------------------------------------------------------------

    async def audit(
        self, *, user_id: str | None, action: str, target: str, outcome: str, now: datetime, detail: str = ""
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(audit).values(
                    at=now, user_id=user_id, action=action, target=target[:200], outcome=outcome, detail=detail
                )
            )

    async def audit_log(self, *, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        query = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(audit.c.action == action)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                user_id=r["user_id"],
                action=r["action"],
                target=r["target"],
                outcome=r["outcome"],
                detail=r["detail"],
            )
            for r in rows
        ]

    # -- helpers ----------------------------------------------------------------------------

    async def _claim(
        self,
        table: Any,
        query: Select[Any],
        owner: str,
        until: datetime,
        fetch: Callable[[AsyncConnection, Sequence[int]], Awaitable[list[R]]],
    ) -> list[R]:
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            await conn.execute(
                update(table).where(table.c.id.in_(ids)).values(lease_owner=owner, lease_expires_at=until)
            )
            return await fetch(conn, ids)

    async def _run(self, conn: AsyncConnection, run_id: int) -> RunRecord:
        row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().one()
        return _run(row)

    async def _runs(self, query: Select[Any]) -> list[RunRecord]:
        async with self.engine.connect() as conn:
            return [_run(r) for r in (await conn.execute(query)).mappings()]

    async def _runs_by_ids(self, conn: AsyncConnection, ids: Sequence[int]) -> list[RunRecord]:
        rows = (await conn.execute(select(runs).where(runs.c.id.in_(ids)).order_by(runs.c.id))).mappings()
        return [_run(r) for r in rows]

    async def _cards_by_ids(self, conn: AsyncConnection, ids: Sequence[int]) -> list[CardRecord]:
        rows = (await conn.execute(select(cards).where(cards.c.id.in_(ids)).order_by(cards.c.id))).mappings()
        return [_card(r) for r in rows]

    async def _outbox_by_ids(self, conn: AsyncConnection, ids: Sequence[int]) -> list[OutboxItem]:
        query = (
            select(outbox, cards.c.channel.label("card_channel"), cards.c.ts.label("card_ts"))
            .select_from(outbox.outerjoin(cards, and_(cards.c.key == outbox.c.card_key)))
            .where(outbox.c.id.in_(ids))
            .order_by(outbox.c.id)
        )
        return [
            OutboxItem(
                id=r["id"],
                key=r["key"],
                run_id=r["run_id"],
                kind=r["kind"],
                channel=r["channel"],
                text=r["text"],
                blocks=r["blocks"],
                attempts=r["attempts"],
                attempting_since=r["attempting_since"],
                created_at=r["created_at"],
                thread_channel=r["card_channel"],
                thread_ts=r["card_ts"],
            )
            for r in (await conn.execute(query)).mappings()
        ]


async def _event(conn: AsyncConnection, run_id: int, at: datetime, state: str, raw: str, message: str) -> None:
    await conn.execute(
        insert(run_events).values(run_id=run_id, at=at, state=state, raw_status=raw, message=message[:4000])
    )


def _orphaned_start(now: datetime, unleased_before: datetime) -> Any:
    """A run being started whose owner is gone: its lease expired (or it has none, and is old)."""
    return and_(
        runs.c.state == STARTING,
        runs.c.final.is_(False),
        or_(
            runs.c.lease_expires_at < now,
            and_(runs.c.lease_expires_at.is_(None), runs.c.created_at < unleased_before),
        ),
    )


def _status_values(
    before: RunRecord, status: RunStatus, now: datetime, next_poll_at: datetime | None
) -> dict[str, Any]:
    started = status.started_at or before.started_at
    if started is None and status.state is not RunState.QUEUED:
        started = now
    ended = status.ended_at or (now if status.final and before.ended_at is None else before.ended_at)
    return {
        "state": status.state.value,
        "raw_status": status.raw_status[:64],
        "message": status.message,
        "warning": status.warning,
        "tasks": [_task_json(t) for t in status.tasks],
        "extra": dict(status.extra),
        "final": status.final,
        "started_at": started,
        "ended_at": ended if status.final else None,
        "polls": before.polls + 1,
        "unknown_since": None,
        "last_error": "",
        "next_poll_at": None if status.final else next_poll_at,
        "updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }


def _task_json(task: TaskStatus) -> dict[str, str]:
    return {"name": task.name, "state": task.state.value, "raw_status": task.raw_status, "message": task.message}


def _run(row: RowMapping) -> RunRecord:
    return RunRecord(
        id=row["id"],
        pipeline=row["pipeline"],
        provider=row["provider"],
        connection=row["connection"],
        job=row["job"] or {},
        parameters=row["parameters"] or {},
        provider_run_id=row["provider_run_id"],
        state=row["state"],
        raw_status=row["raw_status"],
        message=row["message"],
        warning=row["warning"],
        tasks=tuple(
            TaskStatus(name=t["name"], state=RunState(t["state"]), raw_status=t["raw_status"], message=t["message"])
            for t in row["tasks"] or []
        ),
        extra=row["extra"] or {},
        final=bool(row["final"]),
        origin=row["origin"],
        started_by=row["started_by"],
        channel=row["channel"],
        retry_of=row["retry_of"],
        attempt=row["attempt"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        next_poll_at=row["next_poll_at"],
        polls=row["polls"],
        unknown_since=row["unknown_since"],
        last_error=row["last_error"],
        acknowledged_by=row["acknowledged_by"],
        acknowledged_at=row["acknowledged_at"],
        cancel_requested_by=row["cancel_requested_by"],
        notified_state=row["notified_state"],
        workflow_run_id=row["workflow_run_id"],
        step=row["step"],
    )


def _card(row: RowMapping) -> CardRecord:
    return CardRecord(
        id=row["id"],
        key=row["key"],
        run_id=row["run_id"],
        channel=row["channel"],
        ts=row["ts"],
        text=row["text"],
        blocks=row["blocks"],
        version=row["version"],
        sent_version=row["sent_version"],
        attempting_since=row["attempting_since"],
        attempts=row["attempts"],
    )
