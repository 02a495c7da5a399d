"""The tracker: claims due runs, asks their providers, records what changed, and tells the notifier.

One tick claims a batch of due runs (a lease, so several replicas never poll the same run), polls
them concurrently with a bound per connection, and schedules each run's next poll. A provider that
does not answer never fails a run: the run stays as it was, "status unknown since …", and polling
backs off and goes on until the provider answers. An answer that does not name the run (``ProviderNoNews``)
is handled the same way, without counting against the connection's health.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.errors import ProviderError, ProviderNoNews
from bot.models import RunState, RunStatus
from bot.ops.logs import run_context
from bot.ops.metrics import Metrics
from bot.ops.ticks import TickGuard
from bot.service.clients import ClientPool
from bot.slack.text import human_duration
from bot.store.records import RunRecord, Transition
from bot.store.store import Store
from bot.tracking.intervals import PollIntervals

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
        lease: timedelta = timedelta(seconds=60),
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.pool = pool
        self.owner = owner
        self.now = now
        self.on_change = on_change
        self.on_unknown = on_unknown
        self.on_provider_error = on_provider_error
        self.on_provider_ok = on_provider_ok
        self.intervals = intervals or PollIntervals()
        self.batch = batch
        self.lease = lease
        self.metrics = metrics or Metrics()
        self.polls = 0
        self.errors = 0
        self.lag: list[float] = []  # seconds late, of the last tick's polls (for metrics)
        # one pipeline's changes are recorded one at a time: a change reads and updates the pipeline's open
        # alert, and failures of one pipeline landing in one tick must count into one alert, not race into several
        self._recording: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._ticks = TickGuard(lambda: self.store.release_run_leases(self.owner))

    async def tick(self) -> int:
        """Poll every due run once. Returns how many were polled. Ticks never overlap; each waits for every poll
        it started, even when some fail (``TickGuard``)."""
        return await self._ticks.run(self._tick)

    async def idle(self) -> None:
        await self._ticks.idle()

    async def _tick(self) -> int:
        now = self.now()
        due = await self.store.claim_due_runs(self.owner, now=now, limit=self.batch, lease=self.lease)
        if not due:
            return 0
        self.lag = sorted((now - r.next_poll_at).total_seconds() for r in due if r.next_poll_at)
        if self.lag:
            self.metrics.set("pipeline_bot_poll_lag_seconds", self.lag[-1], {"quantile": "1"})
            self.metrics.set("pipeline_bot_poll_lag_seconds", self.lag[len(self.lag) // 2], {"quantile": "0.5"})
        results = await asyncio.gather(*(self._poll(run) for run in due), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:  # the database went away mid-tick, most likely: the next tick hands their leases back
            self._ticks.failed_midway()
            log.error("%d of %d polls failed", len(failed), len(due), exc_info=failed[0])
        return len(due)

    async def _poll(self, run: RunRecord) -> None:
        with run_context(run.id, pipeline=run.pipeline, provider=run.provider, connection=run.connection):
            await self._poll_run(run)

    async def _poll_run(self, run: RunRecord) -> None:
        try:
            if run.provider_run_id is None:  # recovery resolves runs whose trigger never answered
                return
            status = await self._ask(run)
        except ProviderError as exc:
            self.errors += 1
            self.metrics.inc("pipeline_bot_provider_errors_total", {"connection": run.connection, "kind": exc.kind})
            now = self.now()
            wait = self.intervals.after_error(run.unknown_since, now)
            record = await self.store.record_poll_error(run.id, str(exc), now=now, next_poll_at=now + wait)
            log.warning("status of run %s unknown: %s", run.id, exc, extra={"run_id": run.id})
            await self.on_unknown(record)
            if isinstance(exc, ProviderNoNews):  # it answered, about other runs: no outage to report
                if self.on_provider_ok is not None:
                    await self.on_provider_ok(run.connection)
            elif self.on_provider_error is not None:
                await self.on_provider_error(run.connection, str(exc))
            return
        except Exception:
            log.exception("polling run %s failed", run.id, extra={"run_id": run.id})
            now = self.now()
            await self.store.record_poll_error(
                run.id, "internal error", now=now, next_poll_at=now + self.intervals.base
            )
            return
        if self.on_provider_ok is not None:
            await self.on_provider_ok(run.connection)
        async with self._recording[run.pipeline or run.connection]:
            await self._record(run, status)

    async def _ask(self, run: RunRecord) -> RunStatus:
        assert run.provider_run_id is not None
        client = self.pool.client(run.connection)
        job = self.pool.job(run.provider, run.job)
        async with self.pool.slot(run.connection):
            self.polls += 1
            self.metrics.inc("pipeline_bot_polls_total", {"connection": run.connection})
            return await client.get_status(job, run.provider_run_id)

    async def _unknown_since(self, run: RunRecord, status: RunStatus, now: datetime) -> datetime:
        """Since when the run has shown this status outside the model: the run's history has the moment it
        first did (a change of state or raw status is an event); ``now`` when this poll is the first."""
        if run.state != RunState.UNKNOWN.value or run.raw_status != status.raw_status[:64]:
            return now
        seen = [at for at, state, raw, _ in await self.store.events(run.id) if state == RunState.UNKNOWN.value]
        return seen[-1] if seen else now

    async def _record(self, run: RunRecord, status: RunStatus) -> None:
        now = self.now()
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
        if status.state is RunState.FAILED and run.cancel_requested_by:
            # Rivery's legacy API (among others) reports a canceled run as failed: it was asked for, not a failure
            status = replace(
                status, state=RunState.CANCELED,
                message=f"canceled at <@{run.cancel_requested_by}>'s request. {status.message}".strip(),
            )
        age = now - (run.started_at or run.created_at)
        change = await self.store.record_status(
            run.id, status, now=now, next_poll_at=now + self.intervals.next_after(age)
        )
        if change is not None:
            await self.on_change(change)
