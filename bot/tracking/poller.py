"""The tracker: claims due runs, asks their providers, records what changed, and tells the notifier.

One tick claims a batch of due runs (a lease, so several replicas never poll the same run), polls
them concurrently with a bound per connection, and schedules each run's next poll. A provider that
does not answer never fails a run: the run stays as it was, "status unknown since …", and polling
backs off and goes on until the provider answers. An answer that does not name the run (``ProviderNoNews``)
is handled the same way, without counting against the connection's health.

A tick waits for its polls ``tick_wait`` seconds at most: a slow provider (each call can take its connection's
``timeout_seconds``, times the read attempts) must not hold back the polls of every other connection. The slow
polls go on as tasks of their own; each tick renews their leases and claims nothing they hold, so a run is never
polled twice at once, here or by another replica.

Batched polls: on a connection whose provider answers for many runs in one call (``Capability.STATUSES``: a
DataKitchen kitchen, a Tailer configuration, a Rivery v1 river), a tick groups its runs by the call's scope and
makes one batched call per scope (``bot/tracking/batches.py``). It also claims the connection's runs falling due
within the base interval, which the same call answers for: polled early once, they fall due together from then on,
so each scope costs about one call (and its pages) per interval whatever its number of runs. A run the batch does
not show (too old for its pages, missing, unreadable, or finished: the details of an end take a call of their own)
is asked on its own, so nothing is lost; a batch that fails is each of its runs' failure, as a status call's is.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.errors import InvalidRequest, ProviderError, ProviderNoNews
from bot.models import RunState, RunStatus
from bot.ops.logs import run_context
from bot.ops.metrics import POLL_DELAY, POLL_LAG, POLLS, PROVIDER_ERRORS, Metrics
from bot.ops.text import human_duration
from bot.ops.ticks import TickGuard
from bot.service.clients import ClientPool
from bot.store.away import database_away
from bot.store.quiet import QuietPoll
from bot.store.records import RunRecord, Transition
from bot.store.runs import as_asked
from bot.store.store import Store
from bot.tracking.batches import Batch, batchable, plan_batches
from bot.tracking.intervals import PollIntervals
from bot.tracking.quiet import QuietWrites

__all__ = ["Poller"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]


class Poller:
    def __init__(
        self,
        store: Store,
        pool: ClientPool,
        *,
        owner: str,
        now: Now,
        on_change: Callable[[Transition], Awaitable[None]],
        on_unknown: Callable[[RunRecord], Awaitable[object]],
        on_provider_error: Callable[[str, str], Awaitable[None]] | None = None,
        on_provider_ok: Callable[[str], Awaitable[None]] | None = None,
        intervals: PollIntervals | None = None,
        batch: int = 500,
        rounds: int = 8,
        lease: timedelta = timedelta(seconds=60),
        metrics: Metrics | None = None,
        tick_wait: float = 1.0,
        in_flight: int = 256,
        tells: Callable[[Transition], bool] | None = None,
        early: int = 4000,
    ) -> None:
        self.store = store
        self.pool = pool
        self.owner = owner
        self.now = now
        self.on_change = on_change
        #: whether a change has anything to tell (``Outcomes.tells``): one that tells nobody is recorded notified in
        #: its own transaction and never handed to ``on_change`` (None: every change is handed over)
        self.tells = tells
        self.on_unknown = on_unknown
        self.on_provider_error = on_provider_error
        self.on_provider_ok = on_provider_ok
        self.intervals = intervals or PollIntervals()
        self.batch = batch
        self.rounds = rounds  # claims a tick may make (``batch`` runs each)
        #: runs a claim may take early for the batched calls of its due runs' scopes: enough for a scope's whole
        #: interval, so that a scope is asked once an interval. Capped at ``batch``, 500 runs due together across
        #: the batched connections were cut into several batches an interval, each asking for fewer runs than the
        #: scope holds (Tailer's list then missed runs, each polled on its own: 0.62 calls per run at 20,000 runs)
        self.early = early
        self.lease = lease
        self.metrics = metrics or Metrics()
        self.polls = 0
        self.errors = 0
        self.lag: list[float] = []  # seconds late, of the last tick's polls (for metrics)
        # one pipeline's changes are recorded one at a time: a change reads and updates the pipeline's open
        # alert, and failures of one pipeline landing in one tick must count into one alert, not race into several
        self._recording: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.tick_wait = tick_wait
        #: polls under way, by run id, some started by earlier ticks; each holds its run's lease
        self._polling: dict[int, asyncio.Task[None]] = {}
        self._failed: list[BaseException] = []  # polls that raised since the last tick said so
        # polls under way per connection, and how many a connection may have before a tick claims none of its runs:
        # a poll waiting for one of its connection's slots is a task (~15 KB); thousands waited when the bot was behind
        self._in_flight: Counter[str] = Counter()
        self.in_flight = in_flight
        self.quiet = QuietWrites(store.runs)  # the polls that change nothing, written together
        self._ticks = TickGuard(lambda: self.store.runs.release_leases(self.owner, keep=tuple(self._polling)))

    async def tick(self) -> int:
        """Poll every due run once. Returns how many were claimed. Ticks never overlap (``TickGuard``); each waits
        ``tick_wait`` seconds at most for the polls it started, the rest finish on their own."""
        return await self._ticks.run(self._tick)

    async def idle(self) -> None:
        """Return when no tick and no poll is under way (at shutdown). Cancelled, it leaves the polls be: a poll
        cut in the middle of a write would keep the database locked."""
        await self._ticks.idle()
        while self._polling:  # a batch's task starts tasks of its own (its changes, its runs asked on their own)
            await asyncio.wait(set(self._polling.values()))

    async def _tick(self) -> int:
        now = self.now()
        renewed: datetime | None = None
        due: list[RunRecord] = []
        lags: list[float] = []  # each claim's runs, late as of that claim
        started: list[asyncio.Task[None]] = []
        # claims of ``batch`` runs until fewer are due: one claim a tick would cap the process at ``batch`` polls a
        # second whatever its speed (500/s: 15,000 runs due every 30 s). A connection with polls enough under way is
        # skipped, so what a tick claims stays bounded by the connections' room (``in_flight`` each), plus a claim
        for _ in range(self.rounds):
            # each round on its own clock: on a loaded process (thousands of runs found at start-up) a tick's rounds
            # can take minutes, and a lease taken from the tick's start would expire before its poll began: another
            # replica would poll the run too. The polls under way keep their runs (renewed as the tick goes on)
            now = self.now()
            if self._polling and (renewed is None or now - renewed >= self.lease / 4):
                await self.store.runs.renew_leases(self.owner, tuple(self._polling), until=now + self.lease)
                renewed = now
            full = [c for c, n in self._in_flight.items() if n >= self.in_flight]
            more = await self.store.runs.claim_due(self.owner, now=now, limit=self.batch, lease=self.lease, skip=full)
            if more:
                due += more
                lags += [(now - r.next_poll_at).total_seconds() for r in more if r.next_poll_at]
                started += await self._start_all(more, now)
            if len(more) < self.batch:
                break
        if due:
            self.lag = sorted(lags)
            if self.lag:
                self.metrics.set(POLL_LAG, self.lag[-1], {"quantile": "1"})
                self.metrics.set(POLL_LAG, self.lag[len(self.lag) // 2], {"quantile": "0.5"})
                for lag in self.lag:
                    self.metrics.observe(POLL_DELAY, lag)
            await asyncio.wait(started, timeout=self.tick_wait)
        if self._failed:  # the database went away mid-poll, most likely: the next tick hands their leases back
            failed, self._failed = self._failed, []
            self._ticks.failed_midway()
            if all(database_away(f) for f in failed):  # one line, no traceback: the next ticks say it once more
                log.warning("%d polls failed: the database is away (%s); they are tried again", len(failed),
                            type(failed[0]).__name__)
            else:
                log.error("%d polls failed", len(failed), exc_info=failed[0])
        return len(due)

    async def _start_all(self, due: list[RunRecord], now: datetime) -> list[asyncio.Task[None]]:
        """Start the polls of the due runs: batched per scope where the provider allows, with the runs of the
        same connections claimed early for those batches (see the module's docstring)."""
        connections = {r.connection for r in due if batchable(self.pool, r.connection)}
        early: list[RunRecord] = []
        # in claims of ``batch`` runs, as the due ones: one claim of a scope's 2,500 runs held all its rows, as read
        # and as records, at once; the RSS that burst took (each interval) stayed: 15.9 MB against 9.4 in pages
        while connections and len(early) < self.early:
            page = min(self.batch, self.early - len(early))
            more = await self.store.runs.claim_soon(
                self.owner, connections, until=now + self.intervals.base, now=now, limit=page, lease=self.lease
            )
            early += more
            if len(more) < page:
                break
        plan = plan_batches(self.pool, due, early, busy=self._polling.keys())
        if plan.unused:  # claimed early for a scope none of whose runs is due: left for its own time
            await self.store.runs.release(self.owner, [r.id for r in plan.unused])
        started = [self._start(run) for run in plan.single]
        for batch in plan.batches:
            task = asyncio.create_task(self._poll_batch(batch), name=f"batch poll {batch.connection}")
            for run in batch.runs:
                self._polling[run.id] = task
            task.add_done_callback(functools.partial(self._batch_finished, batch.runs))
            started.append(task)
        return started

    async def _poll_batch(self, batch: Batch) -> None:
        """One batched call and what it says of each of its runs, recorded by this one task: the quiet polls written
        together, the changes by a task per pipeline (one at a time each, as its lock has them), the runs the answer
        does not show asked on their own. A task per run waiting for the one answer (its frames, log context and
        waiters, about 3 KB, and the run read) was thousands at once when a scope's runs were claimed together; the
        RSS of those bursts stayed. A batch that fails is each of its runs' failure, recorded by the run's own poll."""
        answer: asyncio.Future[dict[str, RunStatus]] = asyncio.get_running_loop().create_future()
        try:
            answer.set_result(await self._ask_batch(batch))
        except Exception as exc:  # each run's own poll records it, as a status call's failure
            answer.set_exception(exc)
        if answer.exception() is not None:
            await self._wait_for([self._hand_over(run, answer) for run in batch.runs])
            return
        listed = answer.result()
        mine = asyncio.current_task()
        own: list[asyncio.Task[None]] = []
        quiet: list[tuple[RunRecord, RunStatus, QuietPoll]] = []
        changes: defaultdict[str, list[tuple[RunRecord, RunStatus]]] = defaultdict(list)
        if self.on_provider_ok is not None and any(r.provider_run_id in listed for r in batch.runs):
            await self.on_provider_ok(batch.connection)
        now = self.now()
        for run in batch.runs:
            status = listed.get(run.provider_run_id or "")
            if status is None:  # not in the answer (too old for its pages, missing, finished): asked on its own
                own.append(self._hand_over(run, answer))
                continue
            try:
                with run_context(run.id, pipeline=run.pipeline, provider=run.provider, connection=run.connection):
                    adjusted = await self._adjusted(run, status, now)
            except Exception as exc:  # the database away: the next tick hands its lease back
                self._failed.append(exc)
                self._done(run, mine)
                continue
            poll = self.store.runs.quiet(run, adjusted, now=now, next_poll_at=self._next(run, now))
            if poll is None:
                changes[run.pipeline or run.connection].append((run, status))
            else:
                quiet.append((run, status, poll))
        if quiet:
            written = await self.quiet.write_many([poll for _, _, poll in quiet])
            for (run, status, _), done in zip(quiet, written, strict=True):
                if isinstance(done, asyncio.CancelledError):  # the writer was cancelled: the bot is stopping
                    raise done
                if isinstance(done, BaseException):
                    self._failed.append(done)
                    self._done(run, mine)
                elif done:
                    self._done(run, mine)
                else:  # the run changed meanwhile: recorded as a change, which reads it again
                    changes[run.pipeline or run.connection].append((run, status))
        for key, recorded in changes.items():
            task = asyncio.create_task(self._record_all(recorded), name=f"batch changes {key}")
            for run, _ in recorded:
                self._polling[run.id] = task
            task.add_done_callback(functools.partial(self._batch_finished, [r for r, _ in recorded]))
            own.append(task)
        await self._wait_for(own)

    async def _record_all(self, recorded: list[tuple[RunRecord, RunStatus]]) -> None:
        """One pipeline's changes found by a batch, one after the other (its lock would have them so anyway)."""
        mine = asyncio.current_task()
        for run, status in recorded:
            try:
                with run_context(run.id, pipeline=run.pipeline, provider=run.provider, connection=run.connection):
                    await self._record(run, status)
            except Exception as exc:  # the database away, mostly: the next tick hands its lease back
                self._failed.append(exc)
            self._done(run, mine)

    def _hand_over(self, run: RunRecord, answer: asyncio.Future[dict[str, RunStatus]]) -> asyncio.Task[None]:
        """The run's own poll, given the batch's answer (or failure)."""
        task = asyncio.create_task(self._poll(run, None, answer), name=f"poll run {run.id}")
        self._polling[run.id] = task
        task.add_done_callback(lambda done: self._finished(run, done, False))
        return task

    @staticmethod
    async def _wait_for(tasks: list[asyncio.Task[None]]) -> None:
        if tasks:  # their failures are theirs (``_finished``): only waited for, as a tick waits for its polls
            await asyncio.wait(tasks)

    def _done(self, run: RunRecord, task: asyncio.Task[None] | None) -> None:
        if self._polling.get(run.id) is task:
            del self._polling[run.id]

    def _batch_finished(self, runs: list[RunRecord], task: asyncio.Task[None]) -> None:
        for run in runs:
            self._done(run, task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._failed.append(exc)

    async def _ask_batch(self, batch: Batch) -> dict[str, RunStatus]:
        client = self.pool.client(batch.connection)
        async with self.pool.slot(batch.connection):
            self.polls += 1
            self.metrics.inc(POLLS, {"connection": batch.connection})
            # the pages of a batched answer beyond the first take more of the connection's slots (DataKitchen)
            return await client.statuses(batch.items, since=batch.since, slots=self.pool.slot(batch.connection))

    def _start(self, run: RunRecord) -> asyncio.Task[None]:
        # a run claimed again while its last poll records what it found (the lease is handed back there) waits for it
        before = self._polling.get(run.id)
        task = asyncio.create_task(self._poll(run, before), name=f"poll run {run.id}")
        self._polling[run.id] = task
        # counted against its connection's ``in_flight``; a batch's runs are not (they wait for no slot of their own:
        # counted, a scope of 1,000 runs answered together kept the connection's other scopes from being claimed)
        self._in_flight[run.connection] += 1
        task.add_done_callback(lambda done: self._finished(run, done, True))
        return task

    def _finished(self, run: RunRecord, task: asyncio.Task[None], counted: bool) -> None:
        run_id = run.id
        if counted:
            self._in_flight[run.connection] -= 1
            if not self._in_flight[run.connection]:
                del self._in_flight[run.connection]
        if self._polling.get(run_id) is task:
            del self._polling[run_id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._failed.append(exc)

    async def _poll(
        self,
        run: RunRecord,
        before: asyncio.Task[None] | None,
        batch: asyncio.Future[dict[str, RunStatus]] | None = None,
    ) -> None:
        if before is not None:
            await asyncio.wait([before])
        with run_context(run.id, pipeline=run.pipeline, provider=run.provider, connection=run.connection):
            await self._poll_run(run, batch)

    async def _status_unknown(self, run: RunRecord, exc: Exception) -> None:
        """The run's status could not be read: recorded unknown, polled again after the error's backoff."""
        now = self.now()
        wait = self.intervals.after_error(run.unknown_since, now)
        record = await self.store.runs.record_poll_error(run.id, str(exc), now=now, next_poll_at=now + wait, read=run)
        log.warning("status of run %s unknown: %s", run.id, exc, extra={"run_id": run.id})
        await self.on_unknown(record)

    async def _poll_run(self, run: RunRecord, batch: asyncio.Future[dict[str, RunStatus]] | None = None) -> None:
        try:
            if run.provider_run_id is None:  # recovery resolves runs whose trigger never answered
                return
            listed = (await batch).get(run.provider_run_id) if batch is not None else None
            status = listed if listed is not None else await self._ask(run)
        except ProviderError as exc:
            self.errors += 1
            self.metrics.inc(PROVIDER_ERRORS, {"connection": run.connection, "kind": exc.kind})
            await self._status_unknown(run, exc)
            if isinstance(exc, ProviderNoNews):  # it answered, about other runs: no outage to report
                if self.on_provider_ok is not None:
                    await self.on_provider_ok(run.connection)
            elif self.on_provider_error is not None:
                await self.on_provider_error(run.connection, str(exc))
            return
        except InvalidRequest as exc:
            # its connection is not in this replica's catalog (a deploy renamed or removed it): the card says so once
            # its status is unknown, polled as a failing provider is (another replica may have it still). It was
            # "polling run failed" at ERROR with a traceback at every poll (5 s), the card "running" for ever; no
            # "cannot reach" alert: nothing was called
            await self._status_unknown(run, exc)
            return
        except Exception:
            log.exception("polling run %s failed", run.id, extra={"run_id": run.id})
            now = self.now()
            await self.store.runs.record_poll_error(
                run.id, "internal error", now=now, next_poll_at=now + self.intervals.base, read=run
            )
            return
        if self.on_provider_ok is not None:
            await self.on_provider_ok(run.connection)
        now = self.now()
        adjusted = await self._adjusted(run, status, now)
        quiet = self.store.runs.quiet(run, adjusted, now=now, next_poll_at=self._next(run, now))
        if quiet is not None and await self.quiet.write(quiet):  # no alert touched: no need of the pipeline's lock
            return
        await self._record(run, status)

    async def _record(self, run: RunRecord, status: RunStatus) -> None:
        """A poll that changes something (or whose quiet write found the run changed): under the pipeline's lock."""
        async with self._recording[run.pipeline or run.connection]:
            now = self.now()  # read under the lock: one pipeline's changes are recorded in the order of their times
            adjusted = await self._adjusted(run, status, now)
            change = await self.store.runs.record_status(run.id, adjusted, now=now, next_poll_at=self._next(run, now),
                                                         read=run, tells=self.tells)
            if change is not None:
                await self.on_change(change)

    async def _ask(self, run: RunRecord) -> RunStatus:
        assert run.provider_run_id is not None
        client = self.pool.client(run.connection, run.provider)
        job = self.pool.job(run.provider, run.job)
        async with self.pool.slot(run.connection):
            self.polls += 1
            self.metrics.inc(POLLS, {"connection": run.connection})
            return await client.get_status(job, run.provider_run_id)

    async def _unknown_since(self, run: RunRecord, status: RunStatus, now: datetime) -> datetime:
        """Since when the run has shown this status outside the model: the run's history has the moment it
        first did (a change of state or raw status is an event); ``now`` when this poll is the first."""
        if run.state != RunState.UNKNOWN.value or run.raw_status != status.raw_status[:64]:
            return now
        seen = [at for at, state, raw, _ in await self.store.runs.events(run.id) if state == RunState.UNKNOWN.value]
        return seen[-1] if seen else now

    def _next(self, run: RunRecord, now: datetime) -> datetime:
        return now + self.intervals.next_after(now - (run.started_at or run.created_at))

    async def _adjusted(self, run: RunRecord, status: RunStatus, now: datetime) -> RunStatus:
        """The status as recorded: an unknown status held too long ends the run; a failure asked for is a cancel."""
        if (
            status.state is RunState.UNKNOWN
            and not status.final
            and now - await self._unknown_since(run, status, now) >= self.intervals.unknown_limit
        ):
            status = RunStatus(
                run_id=status.run_id,
                state=RunState.UNKNOWN,
                raw_status=status.raw_status,
                message=f"{status.message} (status {status.raw_status!r} did not change for "
                f"{human_duration(self.intervals.unknown_limit)}; the bot stopped following this run)".strip(),
                final=True,
            )
        # a failure asked for is a cancel: decided by ``RunStore.record_status`` against the run as it is then (a
        # cancel may be clicked while this poll waits for its answer), ``as_asked`` here for the quiet check
        return as_asked(run, status, now)
