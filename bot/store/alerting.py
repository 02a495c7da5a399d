"""Queries for alerts and connection health (and passive watch: ``bot.store.watches``).

Alerts are grouped at flush time: pending alerts of a channel are claimed together (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL) and their message is written in the same transaction, so no alert is lost or
announced twice, whichever replica flushes.

A failure alert is resolved by a success of a run that *began* after the alert's latest counted failure
(a retry, a later run), never by a run that began before it and merely finished later. Resolving never
prevents the post: a pending alert keeps state ``pending`` with ``recovered_at`` set, and the flush posts
it (as resolved) like any other; an alert already posted is marked ``recovered`` and its message rewritten.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from bot.models import Json, RunState
from bot.store import keys
from bot.store.alert_events import EventKind, add_event
from bot.store.messages import write_message
from bot.store.paging import add_page, episode_of, triggered_in
from bot.store.tables import alerts, connection_health, runs
from bot.store.upsert import upsert_insert
from bot.store.watches import Watch, WatchRows

__all__ = ["Alert", "AlertKind", "AlertState", "AlertStore", "Health", "Watch", "alert_of_row", "repoint_alerts"]

MAX_RUNS_KEPT = 50
LOOKBACK = timedelta(days=2)  # how long before it was recorded a run may have begun (the watch lists a day back)


class AlertKind(enum.StrEnum):
    """What an alert is about (``alerts.kind``)."""

    FAILURE = "failure"  # a pipeline's run failed (its repeats folded in)
    UNREACHABLE = "unreachable"  # a connection does not answer


class AlertState(enum.StrEnum):
    """Where an alert is (``alerts.state``). Resolving one still pending keeps it ``pending`` (its post is owed)
    with ``recovered_at`` set."""

    PENDING = "pending"  # to announce, at the next flush of its channel
    OPEN = "open"  # announced (or told by the run's card, or muted), not resolved
    RECOVERED = "recovered"  # resolved, and its message says so


_UNRESOLVED = (AlertState.PENDING.value, AlertState.OPEN.value)
_FAILURE = AlertKind.FAILURE.value


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: AlertKind
    pipeline: str | None
    connection: str | None
    channel: str
    state: AlertState
    count: int
    runs: tuple[int, ...]
    last_run_id: int | None
    message: str
    muted: bool
    group_key: str | None
    first_at: datetime
    last_at: datetime
    recovered_at: datetime | None
    recovered_by_run: int | None


@dataclass(frozen=True, slots=True)
class Health:
    connection: str
    failing_since: datetime | None
    alert_id: int | None
    last_error: str
    #: when a replica last heard of it (a call failed, or answered): a connection nobody polls falls silent
    updated_at: datetime | None = None


Render = Callable[[str, list[Alert]], tuple[str, str, list[Json]]]
Split = Callable[[list[Alert]], list[list[Alert]]]  # one channel's alerts into the messages that list them


def _whole(group: list[Alert]) -> list[list[Alert]]:
    return [group]


class AlertStore(WatchRows):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._locks: dict[str, asyncio.Lock] = {}  # SQLite: per pipeline, see _serialized

    # -- failures ---------------------------------------------------------------------------

    async def record_failure(
        self,
        pipeline: str,
        *,
        channel: str,
        run_id: int,
        message: str,
        muted: bool,
        announced_by: str | None,
        suppress: timedelta,
        now: datetime,
        page: Json | None = None,
    ) -> tuple[Alert, bool]:
        """A pipeline failed. Returns its alert and whether it is new (False: an open alert was updated).

        ``announced_by``: the key of a message that already tells the channel (the run's own card), so
        the alert needs no post of its own. ``page``: the PagerDuty trigger, when the pipeline pages; recorded with
        the failure, for its alert's episode (once), unless the alert is muted or already resolved.
        """
        async with self._serialized(pipeline) as conn:
            alert, new = await self._record_failure(
                conn, pipeline, channel, run_id, message, muted, announced_by, suppress, now
            )
            if page is not None and not alert.muted and alert.recovered_at is None:
                episode = await episode_of(conn, alert.id)
                await add_page(conn, alert.id, "trigger", pipeline=pipeline, event=page, now=now, episode=episode)
            return alert, new

    async def _record_failure(
        self,
        conn: AsyncConnection,
        pipeline: str,
        channel: str,
        run_id: int,
        message: str,
        muted: bool,
        announced_by: str | None,
        suppress: timedelta,
        now: datetime,
    ) -> tuple[Alert, bool]:
        told = await _alert_counting(conn, pipeline, run_id)
        if told is not None:  # the same failure told twice (a retried notification): counted once
            return await _told_again(conn, told, run_id, message), False
        query = (
            select(alerts)
            .where(
                alerts.c.kind == _FAILURE,
                alerts.c.pipeline == pipeline,
                alerts.c.state.in_(_UNRESOLVED),
                alerts.c.recovered_at.is_(None),  # resolved (posted or not): a new failure is a new alert
                alerts.c.last_at >= now - suppress,
                alerts.c.muted.is_(muted),  # once unmuted, a failure is news again: not folded into a silent one
                alerts.c.channel == channel,  # routed elsewhere now (a new watch channel): a new alert there
                # a run's card that was the alert tells that run only: a repeat folded into it would show
                # nowhere, so it opens an alert of its own (a repeat whose card is the alert is one again)
                or_(alerts.c.group_key.is_(None), alerts.c.group_key.not_like(keys.RUN_CARDS_LIKE)),
            )
            .order_by(alerts.c.id.desc())
            .limit(1)
        )
        if self._postgres:
            query = query.with_for_update()
        row = (await conn.execute(query)).mappings().first()
        if row is not None:
            runs = [*row["runs"], run_id][-MAX_RUNS_KEPT:]
            await conn.execute(
                update(alerts)
                .where(alerts.c.id == row["id"])
                .values(
                    count=alerts.c.count + 1, runs=runs, last_run_id=run_id, message=message[:4000], last_at=now
                )
            )
            await add_event(conn, row["id"], EventKind.REPEATED, at=now, run_id=run_id)
            return await _alert(conn, row["id"]), False
        # the runs ended between two polls and a run begun after this one was handled first: its
        # success already resolves this failure, which is still announced (pending until the flush)
        resolver = await _later_success(conn, pipeline, run_id)
        if resolver is None and not muted:
            reopened = await _reopen(conn, pipeline, run_id, message, since=now - suppress, now=now)
            if reopened is not None:
                return reopened, False
        state = AlertState.OPEN if (muted or announced_by) else AlertState.PENDING
        if resolver is not None and state is AlertState.OPEN:
            state = AlertState.RECOVERED  # nothing of its own to post: the card (or nobody, muted) tells it
        result = await conn.execute(
            insert(alerts)
            .values(
                kind=_FAILURE,
                pipeline=pipeline,
                channel=channel,
                state=state.value,
                count=1,
                runs=[run_id],
                last_run_id=run_id,
                message=message[:4000],
                muted=muted,
                group_key=announced_by,
                first_at=now,
                last_at=now,
                recovered_at=now if resolver is not None else None,
                recovered_by_run=resolver,
            )
            .returning(alerts.c.id)
        )
        alert_id = result.scalar_one()
        await add_event(conn, alert_id, EventKind.FAILED, at=now, run_id=run_id)
        if resolver is not None:
            await add_event(conn, alert_id, EventKind.RESOLVED, at=now, run_id=resolver, detail="succeeded")
        return await _alert(conn, alert_id), True

    async def recover(self, pipeline: str, run_id: int, *, now: datetime, paged: bool = False) -> list[Alert]:
        """Run ``run_id`` of ``pipeline`` succeeded: the unresolved failure alerts whose every counted failure
        began before it are resolved. A posted one becomes ``recovered``; a pending one stays pending (its post
        is still owed) with ``recovered_at`` set. Returns the alerts resolved. ``paged``: the pipeline pages
        PagerDuty; the resolve of each alert whose episode was triggered is recorded with the resolution."""
        async with self._serialized(pipeline) as conn:
            success = await _began(conn, [run_id])
            if run_id not in success:
                return []
            query = select(alerts.c.id, alerts.c.runs).where(
                alerts.c.kind == _FAILURE,
                alerts.c.pipeline == pipeline,
                alerts.c.state.in_(_UNRESOLVED),
                alerts.c.recovered_at.is_(None),
            )
            if self._postgres:
                query = query.with_for_update()
            rows = list((await conn.execute(query)).mappings())
            # not the run itself: a start given up and alerted, then answered after all: its success answers it too
            failed = await _began(conn, [i for r in rows for i in (r["runs"] or []) if i != run_id])
            began = success[run_id]
            # every counted failure (those still stored) began before this run: its latest one included
            ids = [r["id"] for r in rows if all(failed[i].before(began) for i in (r["runs"] or []) if i in failed)]
            if not ids:
                return []
            await conn.execute(
                update(alerts)
                .where(alerts.c.id.in_(ids))
                .values(
                    state=case(
                        (alerts.c.state == AlertState.OPEN.value, AlertState.RECOVERED.value), else_=alerts.c.state
                    ),
                    recovered_at=now,
                    recovered_by_run=run_id,
                )
            )
            for alert_id in ids:
                await add_event(conn, alert_id, EventKind.RESOLVED, at=now, run_id=run_id, detail="succeeded")
                if not paged:
                    continue
                episode = await episode_of(conn, alert_id, upto=now)  # the episode this resolution ends
                if await triggered_in(conn, alert_id, episode):
                    by = {"run": f"#{run_id}"}
                    await add_page(conn, alert_id, "resolve", pipeline=pipeline, event=by, now=now, episode=episode)
            return [await _alert(conn, i) for i in ids]

    async def resolved_by(self, pipeline: str, run_id: int) -> list[Alert]:
        """The failure alerts of ``pipeline`` that run ``run_id``'s success resolved (at any earlier telling)."""
        by = (alerts.c.kind == _FAILURE, alerts.c.pipeline == pipeline, alerts.c.recovered_by_run == run_id)
        return await _alerts_where(self.engine, *by)

    async def flush(
        self, *, now: datetime, window: timedelta, render: Render, split: Split = _whole, held: Collection[int] = ()
    ) -> list[str]:
        """Announce pending alerts: per channel, all pending ones once the oldest waited ``window`` (so a burst
        becomes one message, or the few ``split`` makes of a storm too large for one). Returns the message
        keys written. Per channel ONE transaction over two families: the alerts claimed and marked, and their
        message's content written (``cards``), so an alert is never announced twice nor lost between them.
        ``held``: alerts left pending this time (another replica announces them: ``Alerter._left_to_others``)."""
        written = []
        pending = [alerts.c.state == AlertState.PENDING.value, *([alerts.c.id.not_in(list(held))] if held else [])]
        async with self.engine.begin() as conn:
            due = (
                select(alerts.c.channel)
                .where(*pending)
                .group_by(alerts.c.channel)
                .having(func.min(alerts.c.first_at) <= now - window)
            )
            channels = list((await conn.execute(due)).scalars())
        for channel in channels:
            async with self.engine.begin() as conn:
                query = select(alerts.c.id).where(*pending, alerts.c.channel == channel)
                if self._postgres:
                    query = query.with_for_update(skip_locked=True)
                ids = sorted((await conn.execute(query)).scalars())
                if not ids:
                    continue
                # one resolved while pending is posted all the same, showing what resolved it
                resolved = case(
                    (alerts.c.recovered_at.is_not(None), AlertState.RECOVERED.value), else_=AlertState.OPEN.value
                )
                await conn.execute(update(alerts).where(alerts.c.id.in_(ids)).values(state=resolved))
                batches = [[a.id for a in batch] for batch in split([await _alert(conn, i) for i in ids]) if batch]
                if sorted(i for batch in batches for i in batch) != ids:
                    raise AssertionError(f"alerts {ids} split into {batches}: each must be in one message")
                for batch in batches:
                    key = keys.alert_group(channel, batch[0])
                    await conn.execute(update(alerts).where(alerts.c.id.in_(batch)).values(group_key=key))
                    key, text, blocks = render(key, [await _alert(conn, i) for i in batch])
                    await write_message(conn, key, channel, text, blocks, now=now)
                    written.append(key)
        return written

    async def due(self, *, now: datetime, window: timedelta) -> list[Alert]:
        """The pending alerts ``flush`` would announce now: those of the channels whose oldest waited ``window``."""
        channels = (
            select(alerts.c.channel)
            .where(alerts.c.state == AlertState.PENDING.value)
            .group_by(alerts.c.channel)
            .having(func.min(alerts.c.first_at) <= now - window)
        )
        query = (
            select(alerts)
            .where(alerts.c.state == AlertState.PENDING.value, alerts.c.channel.in_(channels))
            .order_by(alerts.c.id)
        )
        async with self.engine.connect() as conn:
            return [_from(r) for r in (await conn.execute(query)).mappings()]

    async def group(self, key: str) -> list[Alert]:
        async with self.engine.connect() as conn:
            ids = list((await conn.execute(select(alerts.c.id).where(alerts.c.group_key == key))).scalars())
            return [await _alert(conn, i) for i in sorted(ids)]

    async def get(self, alert_id: int) -> Alert | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(alerts).where(alerts.c.id == alert_id))).mappings().first()
        return _from(row) if row else None

    async def counts_run(self, pipeline: str, run_id: int, *, since: datetime) -> bool:
        """Whether an alert of ``pipeline`` updated since ``since`` (the run's creation) counts run ``run_id``.
        ``runs`` is a JSON list, read here rather than searched in SQL, so SQLite and PostgreSQL agree."""
        query = select(alerts.c.runs).where(alerts.c.pipeline == pipeline, alerts.c.last_at >= since)
        async with self.engine.connect() as conn:
            return any(run_id in (found or []) for found in (await conn.execute(query)).scalars())

    async def open_alerts(self, limit: int = 100) -> list[Alert]:
        """Alerts not resolved yet (announced or about to be)."""
        query = (
            select(alerts)
            .where(alerts.c.state.in_(_UNRESOLVED), alerts.c.recovered_at.is_(None))
            .order_by(alerts.c.id.desc())
        )
        async with self.engine.connect() as conn:
            return [_from(r) for r in (await conn.execute(query.limit(limit))).mappings()]

    async def alerts_between(self, start: datetime, end: datetime) -> list[Alert]:
        query = select(alerts).where(alerts.c.first_at >= start, alerts.c.first_at < end).order_by(alerts.c.id)
        async with self.engine.connect() as conn:
            return [_from(r) for r in (await conn.execute(query)).mappings()]

    @asynccontextmanager
    async def _serialized(self, pipeline: str) -> AsyncIterator[AsyncConnection]:
        """A transaction that records a failure or a success of ``pipeline``'s alerts, one at a time: a failure
        and the success that resolves it, handled at once (two replicas, or the poller and the watcher of one
        process), each see the other. PostgreSQL: an advisory lock held to the commit. SQLite serves one
        process (several processes need PostgreSQL), so a lock of this process suffices; the transaction
        begins once it is held, so it reads what the other one committed."""
        if self._postgres:
            async with self.engine.begin() as conn:
                await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"alerts:{pipeline}"))))
                yield conn
            return
        async with self._locks.setdefault(pipeline, asyncio.Lock()), self.engine.begin() as conn:
            yield conn

    # -- connection health ------------------------------------------------------------------

    async def connection_failed(self, connection: str, error: str, *, now: datetime) -> Health:
        """The connection failed a call: failing since now, unless it was already. Its first failure ever is often
        seen by many polls at once (every run of the connection, both replicas): the row is inserted if missing, not
        read then inserted, which made all but one of them an ``IntegrityError`` out of the poll, "polls failed" at
        ERROR with a traceback."""
        async with self.engine.begin() as conn:
            if await _health_row(conn, connection) is None:
                dialect_insert = upsert_insert(conn)
                await conn.execute(
                    dialect_insert(connection_health)
                    .values(connection=connection, failing_since=now, last_error=error[:2000], updated_at=now)
                    .on_conflict_do_nothing(index_elements=["connection"])
                )
            await conn.execute(
                update(connection_health)
                .where(connection_health.c.connection == connection)
                .values(
                    failing_since=func.coalesce(connection_health.c.failing_since, now),
                    last_error=error[:2000],
                    updated_at=now,
                )
            )
            return _health(await _health_row(conn, connection))

    async def connection_ok(self, connection: str, *, now: datetime) -> Health | None:
        """The connection answered: its former state if it was failing (its alert closed with it, at once), or None.

        The row is locked before it is read: a poll failing at that moment (another task, another replica) may be
        claiming the connection's "cannot reach" alert. Read unlocked, the row showed no alert yet, the claim then
        committed, and this cleared the row over it: the alert was never closed, "cannot reach" was posted after
        the connection answered, and nothing ever said "answers again"."""
        async with self.engine.begin() as conn:
            # PostgreSQL: the row's lock; SQLite: the database's write lock (a SELECT alone takes none: Python's
            # sqlite3 begins the transaction at the first write). Either waits for a claim under way to commit. The
            # row whatever it says: locked only if failing, a row healthy at this statement could be failed and its
            # alert claimed between it and the read (each statement reads the latest commit on PostgreSQL)
            touched = await conn.execute(
                update(connection_health)
                .where(connection_health.c.connection == connection)
                .values(updated_at=now)
            )
            if touched.rowcount == 0:
                return None  # no row yet: it never failed before this answer
            row = await _health_row(conn, connection)
            if row is None or row["failing_since"] is None:
                return None
            before = _health(row)
            await conn.execute(
                update(connection_health)
                .where(connection_health.c.connection == connection)
                .values(failing_since=None, alert_id=None, updated_at=now)
            )
            if before.alert_id is not None and before.alert_id > 0:
                await _close(conn, before.alert_id, now=now)
            return before

    async def claim_unreachable_alert(
        self, connection: str, *, channel: str, message: str, now: datetime
    ) -> Alert | None:
        """Open the one "cannot reach" alert of a failing connection; None if it already has one."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(connection_health)
                .where(
                    connection_health.c.connection == connection,
                    connection_health.c.alert_id.is_(None),
                    connection_health.c.failing_since.is_not(None),
                )
                .values(alert_id=-1)
            )
            if result.rowcount != 1:
                return None
            inserted = await conn.execute(
                insert(alerts)
                .values(
                    kind=AlertKind.UNREACHABLE.value,
                    connection=connection,
                    channel=channel,
                    state=AlertState.OPEN.value,
                    count=1,
                    runs=[],
                    message=message[:4000],
                    muted=False,
                    group_key=keys.health_group(connection),
                    first_at=now,
                    last_at=now,
                )
                .returning(alerts.c.id)
            )
            alert_id = inserted.scalar_one()
            await conn.execute(
                update(connection_health).where(connection_health.c.connection == connection).values(alert_id=alert_id)
            )
            return await _alert(conn, alert_id)

    async def unreachable(self, *, since: datetime) -> list[Alert]:
        """The "cannot reach" alerts still open, and those closed since ``since``, oldest first."""
        open_or_lately = or_(alerts.c.recovered_at.is_(None), alerts.c.recovered_at >= since)
        return await _alerts_where(self.engine, alerts.c.kind == AlertKind.UNREACHABLE.value, open_or_lately)

    async def failing_connections(self) -> list[Health]:
        query = select(connection_health).where(connection_health.c.failing_since.is_not(None))
        async with self.engine.connect() as conn:
            return [_health(r) for r in (await conn.execute(query)).mappings()]


@dataclass(frozen=True, slots=True)
class Began:
    """What tells when a run of a pipeline began, to order it against another."""

    id: int
    connection: str
    recorded: datetime  # the bot's clock: when it recorded the run (just before triggering it) or first saw it
    started: datetime | None  # the provider's clock: when it says the run started

    def before(self, other: Began) -> bool:
        """Whether this run began before ``other``. Two clocks are never compared with each other (a provider's
        may be off, or its naive local times read as UTC):

        - both runs have a start time from the same connection: those, the provider's clock against itself.
          They are the only times that place a run the watch found after it began (its ``recorded`` is when
          it was seen, not when it began);
        - otherwise the bot's own clock: when it triggered each run or first saw it;
        - equal times: the run recorded first (the lower id).

        A provider that gives no start time has the bot's first sight of the run running stored instead: its
        runs compare on the bot's clock throughout, and only a provider giving it for some runs and not others
        can still mix two clocks.
        """
        if self.connection == other.connection and self.started is not None and other.started is not None:
            if self.started != other.started:
                return self.started < other.started
        elif self.recorded != other.recorded:
            return self.recorded < other.recorded
        return self.id < other.id


_BEGAN = (runs.c.id, runs.c.connection, runs.c.created_at, runs.c.started_at)


def _began_of(row: Row[int, str, datetime, datetime | None]) -> Began:
    return Began(id=row.id, connection=row.connection, recorded=row.created_at, started=row.started_at)


async def _began(conn: AsyncConnection, run_ids: list[int]) -> dict[int, Began]:
    if not run_ids:
        return {}
    query = select(*_BEGAN).where(runs.c.id.in_(set(run_ids)))
    return {row.id: _began_of(row) for row in await conn.execute(query)}


async def _later_success(conn: AsyncConnection, pipeline: str, run_id: int) -> int | None:
    """The first run of ``pipeline`` that began after ``run_id`` and already succeeded, if any."""
    failed = (await _began(conn, [run_id])).get(run_id)
    if failed is None:
        return None
    query = select(*_BEGAN).where(
        runs.c.pipeline == pipeline,
        runs.c.state == RunState.SUCCEEDED.value,
        # a run begun after the failed one was recorded after it began, which is at most the watch's
        # lookback before the failed run was recorded: no need to read the pipeline's whole history
        runs.c.created_at >= failed.recorded - LOOKBACK,
    )
    later = [b for b in map(_began_of, await conn.execute(query)) if failed.before(b)]
    return min(later, key=lambda b: b.id).id if later else None


async def repoint_alerts(conn: AsyncConnection, old: int, new: int) -> None:
    """Run ``old`` is being merged into run ``new`` (a watched copy of a run the bot triggered): the alerts
    that count it count ``new`` instead, so the failure, told again by ``new``, is counted once."""
    pipeline = select(runs.c.pipeline).where(runs.c.id == old).scalar_subquery()
    query = (
        select(alerts.c.id, alerts.c.runs, alerts.c.last_run_id, alerts.c.recovered_by_run)
        .where(alerts.c.kind == _FAILURE, alerts.c.pipeline == pipeline)
        .order_by(alerts.c.id.desc())
        .limit(20)  # the copy is minutes old: its alert is among the pipeline's last few
    )
    for row in (await conn.execute(query)).mappings():
        counted = list(row["runs"] or [])
        if old not in counted and old not in (row["last_run_id"], row["recovered_by_run"]):
            continue
        await conn.execute(
            update(alerts)
            .where(alerts.c.id == row["id"])
            .values(
                runs=list(dict.fromkeys(new if i == old else i for i in counted)),
                last_run_id=new if row["last_run_id"] == old else row["last_run_id"],
                recovered_by_run=new if row["recovered_by_run"] == old else row["recovered_by_run"],
            )
        )


async def _reopen(
    conn: AsyncConnection, pipeline: str, run_id: int, message: str, *, since: datetime, now: datetime
) -> Alert | None:
    """The pipeline's alert resolved within the suppression interval, reopened by failed run ``run_id``: its
    message (an alert of its own, not a run's card) tells the story on, instead of a new alert. None: none."""
    query = (
        select(alerts)
        .where(
            alerts.c.kind == _FAILURE,
            alerts.c.pipeline == pipeline,
            alerts.c.state == AlertState.RECOVERED.value,
            alerts.c.recovered_at >= since,
            alerts.c.group_key.like(keys.ALERT_GROUPS_LIKE),
        )
        .order_by(alerts.c.id.desc())
        .limit(1)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    await conn.execute(
        update(alerts)
        .where(alerts.c.id == row["id"], alerts.c.state == AlertState.RECOVERED.value)
        .values(
            state=AlertState.OPEN.value,
            count=alerts.c.count + 1,
            runs=[*row["runs"], run_id][-MAX_RUNS_KEPT:],
            last_run_id=run_id,
            message=message[:4000],
            last_at=now,
            recovered_at=None,
            recovered_by_run=None,
            escalations=0,  # a new incident: not acknowledged, its escalation starts over from now
            escalated_at=now,
        )
    )
    await add_event(conn, row["id"], EventKind.REOPENED, at=now, run_id=run_id)
    return await _alert(conn, row["id"])


async def _alerts_where(engine: AsyncEngine, *where: ColumnElement[bool]) -> list[Alert]:
    async with engine.connect() as conn:
        query = select(alerts).where(*where).order_by(alerts.c.id)
        return [_from(r) for r in (await conn.execute(query)).mappings()]


async def _told_again(conn: AsyncConnection, told: Alert, run_id: int, message: str) -> Alert:
    """A failure the alert ``told`` counts already, told again (a retried notification): unchanged, but for the
    run's real end after its start was given up and alerted ("unknown whether it started"), its trigger answered
    after all and the run failed: the alert says why now."""
    if told.last_run_id != run_id or told.recovered_at is not None or told.message == message[:4000]:
        return told
    await conn.execute(update(alerts).where(alerts.c.id == told.id).values(message=message[:4000]))
    return await _alert(conn, told.id)


async def _close(conn: AsyncConnection, alert_id: int, *, now: datetime) -> None:
    """A connection's "cannot reach" alert: it answers again (once: a second close keeps the first time)."""
    await conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id)
        .values(state=AlertState.RECOVERED.value, recovered_at=func.coalesce(alerts.c.recovered_at, now))
    )


async def _alert_counting(conn: AsyncConnection, pipeline: str, run_id: int) -> Alert | None:
    """The alert (of the last few of ``pipeline``, resolved or not) that already counts failed run ``run_id``."""
    query = (
        select(alerts)
        .where(alerts.c.kind == _FAILURE, alerts.c.pipeline == pipeline)
        .order_by(alerts.c.id.desc())
        .limit(5)
    )
    for row in (await conn.execute(query)).mappings():
        if run_id in (row["runs"] or []):
            return _from(row)
    return None


async def _alert(conn: AsyncConnection, alert_id: int) -> Alert:
    row = (await conn.execute(select(alerts).where(alerts.c.id == alert_id))).mappings().one()
    return _from(row)


def alert_of_row(row: RowMapping) -> Alert:
    """An ``alerts`` row as the record (for the families that read alerts beside their own tables)."""
    return _from(row)


def _from(row: RowMapping) -> Alert:
    return Alert(
        id=row["id"],
        kind=AlertKind(row["kind"]),
        pipeline=row["pipeline"],
        connection=row["connection"],
        channel=row["channel"],
        state=AlertState(row["state"]),
        count=row["count"],
        runs=tuple(row["runs"] or ()),
        last_run_id=row["last_run_id"],
        message=row["message"],
        muted=bool(row["muted"]),
        group_key=row["group_key"],
        first_at=row["first_at"],
        last_at=row["last_at"],
        recovered_at=row["recovered_at"],
        recovered_by_run=row["recovered_by_run"],
    )


async def _health_row(conn: AsyncConnection, connection: str) -> RowMapping | None:
    query = select(connection_health).where(connection_health.c.connection == connection)
    return (await conn.execute(query)).mappings().first()


def _health(row: RowMapping | None) -> Health:
    assert row is not None
    return Health(
        connection=row["connection"],
        failing_since=row["failing_since"],
        alert_id=row["alert_id"],
        last_error=row["last_error"],
        updated_at=row["updated_at"],
    )
