"""The runs family (``runs`` and ``run_events``): recording a run, what its provider says of it, and the poller's
leases on it. Before its trigger answers a run is the business of ``bot.store.starts``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.models import RunState, RunStatus
from bot.store.alert_events import EventKind, note_run
from bot.store.quiet import QuietPoll, sooner, write_quiet
from bot.store.records import (
    GONE_FROM_CATALOG,
    STOPPED_BY,
    STOPPED_WHY,
    NewRun,
    RunOrigin,
    RunRecord,
    StoredState,
    Transition,
)
from bot.store.rows import add_event, fetch_run, run_of_row, task_json
from bot.store.run_leases import RunLeases
from bot.store.run_reads import RunReads
from bot.store.tables import runs

__all__ = ["CANCEL_PENDING_LIMIT", "AlreadyRetried", "AlreadyTracked", "RunStore", "as_asked"]


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


class RunStore(RunLeases, RunReads):
    """Writing runs; the reads are ``RunReads``'."""

    # -- recording --------------------------------------------------------------------------

    async def create(
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
        gives up only starts whose owner is gone (``StartStore.orphaned``)."""
        if new.start_at:
            state = StoredState.WAITING
        else:
            state = StoredState.STARTING if new.provider_run_id is None else StoredState.QUEUED
        values: dict[str, object] = {
            "pipeline": new.pipeline,
            "provider": new.provider,
            "connection": new.connection,
            "job": dict(new.job),
            "parameters": dict(new.parameters),
            "provider_run_id": new.provider_run_id,
            "state": state.value,
            "raw_status": "",
            "message": "",
            "warning": "",
            "tasks": [],
            "extra": {},
            "final": False,
            "origin": str(new.origin),
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
        if owner is not None and state is StoredState.STARTING:
            values.update(lease_owner=owner, lease_expires_at=now + (lease or timedelta(seconds=60)))
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(insert(runs).values(**values).returning(runs.c.id))
                run_id = result.scalar_one()
                if new.retry_of is not None:  # the failure's alert tells who retried it, as which run
                    actor = None if new.by_policy else new.started_by
                    await note_run(conn, new.retry_of, EventKind.RETRIED, at=now, actor=actor, about=run_id)
                return await fetch_run(conn, run_id)
        except IntegrityError:
            if new.retry_of is not None:
                existing = await self.retry_of(new.retry_of)
                if existing is not None:
                    raise AlreadyRetried(existing) from None
            if new.provider_run_id is not None:
                found = await self.find(new.connection, new.provider_run_id)
                if found is None and new.origin == RunOrigin.WATCH and new.pipeline is not None:
                    # ``uq_runs_watched``: another replica recorded it under the connection's other name
                    found = await self.find_moved(new.pipeline, new.provider, [new.provider_run_id],
                                                  besides=new.connection)
                if found is not None:
                    raise AlreadyTracked(found) from None
            raise

    async def record_status(
        self, run_id: int, status: RunStatus, *, now: datetime, next_poll_at: datetime | None,
        read: RunRecord | None = None, tells: Callable[[Transition], bool] | None = None,
    ) -> Transition | None:
        """Store what the provider said; returns a Transition when anything a person sees changed.

        The poller and the watcher may record the same run at once: the write is conditional on the run
        not having changed since it was read (``polls`` counts the writes of a status, and every other writer
        that ends a run or moves it out of polling changes ``final`` or ``state``), so one change is reported once.
        ``read``: the run as its poll claimed it, written against without reading it again (one statement for a
        poll that changes nothing, the common case at scale); if it changed meanwhile, it is read again.
        ``tells``: whether a change has anything to tell (``Outcomes.tells``). A change that tells nobody (a watched
        run found running: no card, no alert) is marked notified in the same transaction and returned as None, so
        nobody need mark it in a second one; a change that tells someone is left unnotified until its card and
        alerts are written (``mark_notified``), so recovery (``unnotified``) still finds it after a crash in between.
        """
        read_next: datetime | None = None  # the run's next poll as first read (``sooner``)
        for attempt in range(5):
            async with self.engine.begin() as conn:
                if read is not None:
                    before, read = read, None
                else:
                    row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
                    if row is None:  # a watched copy absorbed by the run that started it
                        return None
                    before = run_of_row(row)
                if attempt == 0:
                    read_next = before.next_poll_at
                if before.final:  # an ended run stays ended, whatever a stale answer says
                    return None
                status = as_asked(before, status, now)
                values = _status_values(before, status, now, next_poll_at)
                visible = _visible(before, status, values)
                silent = visible and tells is not None and _silent(before, status, values, tells)
                if silent:  # nothing to tell: notified with the change itself, in its one transaction
                    values["notified_state"] = values["state"]
                elif status.final and before.notified_state == status.state.value:
                    # an end in the state already shown (unknown held too long): unnotified until its end is acted
                    # on, so recovery (``unnotified``) finds it after a crash in between
                    values["notified_state"] = None
                if values["next_poll_at"] is not None:  # a poll asked for meanwhile is kept
                    values["next_poll_at"] = sooner(read_next, values["next_poll_at"])
                result = await conn.execute(
                    update(runs)
                    .where(
                        runs.c.id == run_id,
                        runs.c.polls == before.polls,
                        runs.c.final.is_(False),
                        runs.c.state == before.state.value,
                        # a cancel asked (or answered) since the run was read decides its failure: read it again
                        runs.c.cancel_requested_by.is_not_distinct_from(before.cancel_requested_by),
                        runs.c.cancel_pending_since.is_not_distinct_from(before.cancel_pending_since),
                        runs.c.cancel_asks == before.cancel_asks,
                    )
                    .values(**values)
                )
                if result.rowcount != 1:
                    continue  # someone recorded this run meanwhile: read it again
                if before.state != status.state.value or before.raw_status != values["raw_status"] or status.final:
                    await add_event(conn, run_id, now, status.state.value, str(values["raw_status"]), status.message)
                if not visible or silent:  # nobody is told: the run need not be read back
                    return None
                after = await fetch_run(conn, run_id)
            return Transition(after, before.state, after.state, ended=after.final)
        raise RuntimeError(f"run {run_id} kept changing while its status was recorded")

    @staticmethod
    def quiet(
        before: RunRecord, status: RunStatus, *, now: datetime, next_poll_at: datetime | None
    ) -> QuietPoll | None:
        """The poll as a ``QuietPoll`` when recording ``status`` would change nothing but the poll's count, time and
        lease (``record_quiet`` may write it with others); None when it changes anything else."""
        if before.final or status.final or before.unknown_since is not None or before.last_error:
            return None
        values = _status_values(before, status, now, next_poll_at)
        same = (
            values["state"] == before.state.value
            and values["raw_status"] == before.raw_status
            and values["message"] == before.message
            and values["warning"] == before.warning
            and values["tasks"] == [task_json(t) for t in before.tasks]
            and values["extra"] == dict(before.extra)
            and values["started_at"] == before.started_at
            and values["ended_at"] == before.ended_at
        )
        if not same:
            return None
        return QuietPoll(before.id, before.polls, before.state.value, now, next_poll_at, before.next_poll_at)

    async def record_quiet(self, polls: Sequence[QuietPoll]) -> set[int]:
        """Write quiet polls in one transaction (``bot.store.quiet``); returns the ids of the runs that changed
        meanwhile and were not written: record their polls with ``record_status``, which reads them again."""
        return await write_quiet(self.engine, polls)

    async def record_poll_error(
        self, run_id: int, error: str, *, now: datetime, next_poll_at: datetime, read: RunRecord | None = None
    ) -> RunRecord:
        """The provider did not answer: the run stays as it was, marked unknown since the first miss. ``read``: the
        run as its poll claimed it: a poll asked for meanwhile (a refused cancel's, Refresh) is kept (``sooner``),
        not put off by the error's backoff."""
        after = sooner(read.next_poll_at, next_poll_at) if read is not None else next_poll_at
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                # an ended run stays as it ended (passive watch, or a replica whose claim followed an expired lease,
                # recorded its end meanwhile): it read "status unknown since" with the error and a next poll
                .where(runs.c.id == run_id, runs.c.final.is_(False))
                .values(
                    unknown_since=func.coalesce(runs.c.unknown_since, now),
                    last_error=error[:2000],
                    next_poll_at=after,
                    polls=runs.c.polls + 1,
                    updated_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return await fetch_run(conn, run_id)

    async def finish(self, run_id: int, state: RunState, message: str, *, now: datetime) -> RunRecord | None:
        """End a run on the bot's side (trigger failed, status unknown for too long); None when it had ended
        already (recovery gave its start up meanwhile): that end was told, and is kept, not told twice."""
        return await self._end_here(run_id, runs.c.final.is_(False), state, message, now=now)

    async def stop_following(
        self, run_id: int, user_id: str, connection: str, *, now: datetime, why: str | None = None
    ) -> RunRecord | None:
        """``user_id`` ends a run the bot cannot follow any more (its connection left the catalog, or is another
        provider's now: ``why``): final, ``unknown``, with who asked and why in ``extra`` (the card says so). Only a
        run at the provider that has not ended; None otherwise (it ended meanwhile, or is starting)."""
        why = why or GONE_FROM_CATALOG.format(connection=connection)
        live = runs.c.final.is_(False) & runs.c.provider_run_id.is_not(None)
        return await self._end_here(
            run_id, live, RunState.UNKNOWN, f"the bot stopped following it: {why}", now=now,
            stopped={STOPPED_BY: user_id, STOPPED_WHY: why},
        )

    async def _end_here(
        self, run_id: int, condition: ColumnElement[bool], state: RunState, message: str, *, now: datetime,
        stopped: Mapping[str, str] | None = None,
    ) -> RunRecord | None:
        async with self.engine.begin() as conn:
            values: dict[str, object] = {}
            if stopped is not None:
                # the row locked until the end is written: on PostgreSQL another replica's poll recorded between the
                # read and the write would lose its extra (SQLite's writes are serialized by BEGIN IMMEDIATE)
                read = select(runs.c.extra).where(runs.c.id == run_id).with_for_update()
                extra = (await conn.execute(read)).scalar_one_or_none() or {}
                values["extra"] = {**extra, **stopped}
            result = await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, condition)
                .values(
                    state=state.value,
                    message=message,
                    final=True,
                    ended_at=now,
                    next_poll_at=None,
                    updated_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    # an end in the state already shown (a status outside the model, unknown): unnotified until it
                    # is acted on, so recovery (``unnotified``) finds it after a crash in between
                    notified_state=case(
                        (runs.c.notified_state == state.value, None), else_=runs.c.notified_state
                    ),
                    **values,
                )
            )
            if result.rowcount != 1:
                return None
            await add_event(conn, run_id, now, state.value, "", message)
            return await fetch_run(conn, run_id)

    async def cancel_requested(self, run_id: int, user_id: str, *, now: datetime) -> bool:
        """``user_id`` asks to cancel the run, the provider not asked yet: a failure recorded from now on is that
        cancel (``as_asked``), for ``CANCEL_PENDING_LIMIT`` unless the provider takes it (``cancel_taken``). Every
        ask is counted until its answer (``cancel_asks``): a refusal withdraws the request only when no other cancel
        is on its way (two people clicking Cancel at once). A cancel taken before stays taken. A request older than
        ``CANCEL_PENDING_LIMIT`` counts for nothing any more: its asks are forgotten (one answered "unknown", or cut by
        a kill, is never answered: it would keep every later refused cancel from withdrawing its request). A later ask
        keeps the earliest unanswered one's time: a kill's ask then a refused one held the failure ten minutes past
        the second click; only an answer lost renews it (``cancel_unconfirmed``).

        Only while the run has not ended: False when it has (recorded since the click read it), nothing written. A
        request left on an ended run would change what it was: a failed attempt whose alert waits for the retry its
        policy made would read as asked to cancel (``Retrier.held_failure``), its failure then never announced."""
        taken = runs.c.cancel_requested_by.is_not(None) & runs.c.cancel_pending_since.is_(None)
        stale = runs.c.cancel_pending_since.is_not(None) & (runs.c.cancel_pending_since <= now - CANCEL_PENDING_LIMIT)
        fresh = runs.c.cancel_pending_since.is_not(None) & (runs.c.cancel_pending_since > now - CANCEL_PENDING_LIMIT)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.final.is_(False))
                .values(
                    cancel_asks=case((stale, 1), else_=runs.c.cancel_asks + 1),
                    cancel_unconfirmed=case((stale, False), else_=runs.c.cancel_unconfirmed),
                    cancel_requested_by=case((taken, runs.c.cancel_requested_by), else_=user_id),
                    cancel_pending_since=case((taken, None), (fresh, runs.c.cancel_pending_since), else_=now),
                )
            )
            return result.rowcount == 1

    async def cancel_taken(self, run_id: int, user_id: str) -> None:
        """The provider took ``user_id``'s cancel: the run's failures are that cancel from now on, for good (named
        after the first whose cancel was taken)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    cancel_asks=_one_answered(),
                    cancel_requested_by=case(
                        (runs.c.cancel_requested_by.is_(None) | runs.c.cancel_pending_since.is_not(None), user_id),
                        else_=runs.c.cancel_requested_by,
                    ),
                    cancel_pending_since=None,
                )
            )

    async def cancel_unconfirmed(self, run_id: int, *, now: datetime) -> None:
        """A cancel's call ended without saying whether the provider took it (its answer lost, a 5xx): the request
        stays for ``CANCEL_PENDING_LIMIT`` from ``now`` (it may have stopped the run just now), no longer on its way
        (a failure is now taken for it, not held)."""
        pending = case((runs.c.cancel_pending_since.is_not(None), now), else_=None)  # taken meanwhile: stays taken
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs).where(runs.c.id == run_id)
                .values(cancel_asks=_one_answered(), cancel_unconfirmed=True, cancel_pending_since=pending)
            )

    async def cancel_withdrawn(self, run_id: int) -> None:
        """The provider refused a cancel (or the bot stopped inside the call): unless another cancel is on its way,
        or one was taken or may have been (``cancel_unconfirmed``), the run's failures are its own again."""
        last = (
            runs.c.cancel_pending_since.is_not(None) & (runs.c.cancel_asks <= 1) & runs.c.cancel_unconfirmed.is_(False)
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    cancel_asks=_one_answered(),
                    cancel_requested_by=case((last, None), else_=runs.c.cancel_requested_by),
                    cancel_pending_since=case((last, None), else_=runs.c.cancel_pending_since),
                )
            )

    async def mark_notified(self, run_id: int, state: StoredState) -> None:
        """The card and alerts for ``state`` are written (intents in the store): nothing to redo after a crash."""
        async with self.engine.begin() as conn:
            await conn.execute(update(runs).where(runs.c.id == run_id).values(notified_state=str(state)))

    async def poll_now(self, run_id: int, *, now: datetime) -> None:
        """Refresh button: make a live run due at once. Not a run waiting its turn (its next poll is its start:
        Refresh started a retry before its backoff was over) nor one starting (nothing to poll yet)."""
        not_polled = (StoredState.WAITING.value, StoredState.STARTING.value)
        async with self.engine.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.final.is_(False), runs.c.state.not_in(not_polled))
                .values(next_poll_at=now)
            )

    async def acknowledge(self, run_id: int, user_id: str, *, now: datetime) -> tuple[RunRecord, bool]:
        """Mark a run as being handled. Returns the run and whether this call was the first."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.acknowledged_by.is_(None))
                .values(acknowledged_by=user_id, acknowledged_at=now, updated_at=now)
            )
            first = result.rowcount == 1
            if first:  # the alert's timeline, with the acknowledgement itself
                await note_run(conn, run_id, EventKind.ACKNOWLEDGED, at=now, actor=user_id)
            return await fetch_run(conn, run_id), first

    async def repoint(self, run_id: int, provider_run_id: str) -> None:
        """A provider reuses a run id on resume (DataKitchen's order): the old attempt keeps a precise one."""
        async with self.engine.begin() as conn:
            await conn.execute(update(runs).where(runs.c.id == run_id).values(provider_run_id=provider_run_id))

    # -- a workflow adopting a watched run ------------------------------------------------------

    async def adopt_watched(
        self, pipeline: str, *, since: datetime, until: datetime, workflow_run_id: int, step: str
    ) -> RunRecord | None:
        """The earliest run of ``pipeline`` that passive watch found (its provider id matching no run of the bot),
        begun between ``since`` and ``until``, still going or succeeded, and of no workflow yet: made ``step``'s of
        the workflow run (a conditional update, so two workflows never take the same run). None when there is none."""
        began = func.coalesce(runs.c.started_at, runs.c.created_at)
        query = (
            select(runs.c.id)
            .where(
                runs.c.pipeline == pipeline,
                runs.c.origin == RunOrigin.WATCH.value,
                runs.c.workflow_run_id.is_(None),
                or_(runs.c.final.is_(False), runs.c.state == RunState.SUCCEEDED.value),
                began >= since,
                began <= until,
            )
            .order_by(began, runs.c.id)
        )
        async with self.engine.begin() as conn:
            for run_id in (await conn.execute(query)).scalars().all():
                taken = await conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, runs.c.workflow_run_id.is_(None))
                    .values(workflow_run_id=workflow_run_id, step=step)
                )
                if taken.rowcount == 1:
                    return await fetch_run(conn, run_id)
        return None


#: how long a cancel request the provider did not confirm counts: past it, a failure is announced as one. Longer than
#: a cancel's call can take (a wait for the connection's slot, then the call and its read attempts)
CANCEL_PENDING_LIMIT = timedelta(minutes=10)


def _one_answered() -> ColumnElement[int]:
    """``cancel_asks`` less the one just answered (never below 0: a request recorded before the count existed)."""
    return case((runs.c.cancel_asks > 0, runs.c.cancel_asks - 1), else_=0)


def as_asked(run: RunRecord, status: RunStatus, now: datetime) -> RunStatus:
    """A failure of a run someone asked to cancel, as it is to be recorded: Rivery's legacy API reports a canceled run
    as failed. Never where the provider shows a cancel as such (``RunStatus.shows_cancels``): there a failure read
    after a cancel asked, taken or lost is the run's own, announced at once. Decided here, against the run as it is
    written to, not as a poll read it before a click:

    - the provider took the cancel: the failure is that cancel, for good;
    - a cancel call is on its way to the provider (``cancel_asks``): the failure is held, nothing recorded, until its
      answer (the run may have failed on its own just before the click: the provider's refusal, "not running any
      more", must leave that failure announced, never hidden as a cancel); the cancel's answer asks for a new poll;
    - the provider's answer was lost (``ProviderError.outcome_unknown``): it may have taken the cancel, and the
      failure is that cancel (the person asked for the run to end, and was told the cancel is unconfirmed);
    - past ``CANCEL_PENDING_LIMIT`` of a request not confirmed (the process stopped inside the call): the failure
      is the run's own, announced with its owners."""
    if (
        status.state is not RunState.FAILED
        or status.shows_cancels  # the provider would say "canceled" of a cancel: this failure is the run's own
        or not run.cancel_requested_by
        or run.run_state is None
    ):
        return status
    pending = run.cancel_pending_since
    if pending is not None and now - pending >= CANCEL_PENDING_LIMIT:
        return status
    if pending is not None and run.cancel_asks > 0:
        return held(run, status)
    return replace(
        status, state=RunState.CANCELED,
        message=f"canceled at <@{run.cancel_requested_by}>'s request. {status.message}".strip(),
    )


def held(run: RunRecord, status: RunStatus) -> RunStatus:
    """What the run already shows, as this poll's answer: nothing is recorded but the poll itself."""
    assert run.run_state is not None
    return RunStatus(
        run_id=status.run_id, state=run.run_state, raw_status=run.raw_status, message=run.message, tasks=run.tasks,
        started_at=run.started_at, ended_at=run.ended_at, warning=run.warning, final=run.final, extra=run.extra,
    )


def _visible(before: RunRecord, status: RunStatus, values: Mapping[str, object]) -> bool:
    """Whether writing ``values`` changes anything a person sees (else nobody is told: no Transition)."""
    return (
        before.state != status.state.value
        or before.raw_status != values["raw_status"]
        or before.message != status.message
        or [task_json(t) for t in before.tasks] != values["tasks"]
        or before.final != status.final
        or before.unknown_since is not None
    )


def _silent(
    before: RunRecord, status: RunStatus, values: Mapping[str, object], tells: Callable[[Transition], bool]
) -> bool:
    """Whether the change ``values`` writes tells nobody, whether it is handled now (from ``before.state``) or by
    recovery after a crash (from the state last notified, as ``Recovery.recover_unnotified`` hands it): only then
    may it be marked notified with itself. An earlier change still unnotified that tells someone is never hidden."""
    after = replace(
        before,
        state=StoredState(status.state.value),
        raw_status=str(values["raw_status"]),
        message=status.message,
        warning=status.warning,
        tasks=tuple(status.tasks),
        extra=dict(status.extra),
        final=status.final,
        started_at=cast(datetime | None, values["started_at"]),
        ended_at=cast(datetime | None, values["ended_at"]),
        polls=before.polls + 1,
        unknown_since=None,
        last_error="",
        next_poll_at=cast(datetime | None, values["next_poll_at"]),
        updated_at=cast(datetime, values["updated_at"]),
    )
    if tells(Transition(after, before.state, after.state, ended=after.final)):
        return False
    notified = before.notified_state or StoredState.QUEUED
    return notified == before.state or not tells(Transition(after, notified, after.state, ended=after.final))


def _status_values(
    before: RunRecord, status: RunStatus, now: datetime, next_poll_at: datetime | None
) -> dict[str, object]:
    started = status.started_at or before.started_at
    if started is None and status.state is not RunState.QUEUED:
        started = now
    ended = status.ended_at or (now if status.final and before.ended_at is None else before.ended_at)
    return {
        "state": status.state.value,
        "raw_status": status.raw_status[:64],
        "message": status.message,
        "warning": status.warning,
        "tasks": [task_json(t) for t in status.tasks],
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
