"""Automatic retries by a pipeline's retry policy, and every other start that waits its turn.

A failed attempt with attempts left becomes a *waiting* run in the store (its start time is the backoff's
end), so a restart loses no retry; the poller's side job starts it when due. Starts held back by a provider's
cap on triggers (Rivery: 2 runs of a river a minute) wait the same way and are started here too. The
provider's own resume is used where it has one (DataKitchen resumes a failed order run instead of starting
over). The failure alert goes out only when the attempts are used up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.catalog.catalog import Catalog, connection_of
from bot.catalog.model import RetryPolicy
from bot.errors import InvalidRequest, ProviderError, ProviderUnavailable, TriggerOutcomeUnknown
from bot.models import JsonValue, RunState
from bot.ops.logs import run_context
from bot.providers.base import Capability
from bot.service.clients import ClientPool
from bot.service.events import Resumed, RetryScheduled
from bot.service.notify import Notifier, never_ran
from bot.service.outcomes import Outcomes
from bot.service.starting import BUSY_WAITS, StartLeases, busy_wait, record_answer
from bot.store.alert_events import CANCELED_RETRIES
from bot.store.records import NewRun, RunOrigin, RunRecord, StoredState, Transition
from bot.store.store import AlreadyRetried, Store

__all__ = ["Retrier", "WaitingStarts"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]
#: how long past its time a waiting run of a connection this replica lacks is left to a replica that has it (each
#: ticks every second or so): past this, none does, and this one ends it "did not start"
OTHERS_AFTER = timedelta(minutes=2)


class Retrier:
    """A pipeline's retry policy: whether an ended attempt gets another (scheduled as a waiting run)."""

    def __init__(self, store: Store, catalog: Catalog, notifier: Notifier, *, now: Now) -> None:
        self.store = store
        self.catalog = catalog
        self.notifier = notifier
        self.now = now

    def policy(self, run: RunRecord) -> RetryPolicy | None:
        return _policy(self.catalog, run)

    async def maybe_retry(self, run: RunRecord) -> bool:
        """Schedule the next attempt of a failed run when its policy allows; True when one is scheduled."""
        policy = self.policy(run)
        outcome = "failed" if run.run_state is RunState.FAILED else "unknown"
        if policy is None or not self._retried(run):
            return False
        if run.provider_run_id is None and outcome == "unknown":
            return False  # it may have started: retrying blindly could run it twice
        if run.stopped_by:
            return False  # a person ended it, its outcome unknown: maybe running still
        where = self._where(run)
        if where is None:
            return False  # nothing could start it: its connection left the catalog, its pipeline with it
        wait = policy.delay(run.attempt)
        try:
            retry = await self.store.runs.create(
                NewRun(
                    provider=run.provider,
                    connection=where[0],
                    job=where[1],
                    parameters=run.parameters,
                    origin=RunOrigin.RETRY,
                    pipeline=run.pipeline,
                    started_by=run.started_by,
                    channel=run.channel,
                    retry_of=run.id,
                    by_policy=True,
                    attempt=run.attempt + 1,
                    workflow_run_id=run.workflow_run_id,
                    step=run.step,
                    start_at=self.now() + wait,
                ),
                now=self.now(),
                next_poll_at=None,
            )
        except AlreadyRetried:  # someone clicked Retry first: that run is the next attempt
            return True
        if self.notifier.has_card(run):
            await self.notifier.refresh_card(run)
            await self.notifier.thread(
                run, "auto-retry", RetryScheduled(run.attempt, policy.attempts, outcome, wait, retry.id)
            )
        log.info(
            "run %s %s: attempt %s of %s in %s",
            run.id,
            outcome,
            retry.attempt,
            policy.attempts,
            wait,
            extra={"run_id": run.id},
        )
        return True

    def _where(self, run: RunRecord) -> tuple[str, Mapping[str, JsonValue]] | None:
        """The connection and job a policy's retry of ``run`` starts with: the run's own, or, its connection gone
        from the catalog (renamed by a deploy: the watch follows such a run at its pipeline's connection), its
        pipeline's as the catalog has it now, as a person's Retry would; None when neither is there on its
        provider."""
        if connection_of(self.catalog.connections, run.connection, run.provider) is not None:
            return run.connection, run.job
        pipeline = self.catalog.pipelines.get(run.pipeline or "")
        if pipeline is None or connection_of(self.catalog.connections, pipeline.connection, run.provider) is None:
            return None
        return pipeline.connection, pipeline.job.model_dump()

    def _retried(self, run: RunRecord) -> bool:
        """Whether the policy gives this ended attempt another one (so its failure is not alerted yet)."""
        policy = self.policy(run)
        outcome = "failed" if run.run_state is RunState.FAILED else "unknown"
        return (
            policy is not None
            and outcome in policy.on
            and run.attempt < policy.attempts
            and not run.cancel_requested_by
        )

    async def _held(self, failed: RunRecord) -> bool:
        """Whether the alert of ``failed``, retried, was held for its retry: the policy gives it another attempt;
        else it was alerted when it failed, unless no alert counts it: the policy that held it was changed since
        (removed, or fewer attempts, and the bot restarted with that catalog while the retry waited or ran)."""
        if self._retried(failed):
            return True
        if failed.cancel_requested_by or not failed.pipeline:  # the policy never retries a run asked to stop
            return False
        return not await self.store.alerting.counts_run(failed.pipeline, failed.id, since=failed.created_at)

    async def held_failure(self, run: RunRecord) -> RunRecord | None:
        """``run`` ended without an outcome of its own (unknown, never started, canceled) and no attempt follows
        it: the latest failed attempt before it, whose alert was held back for the attempts left, if any. The
        pipeline never recovered from that failure: it is announced now."""
        attempt = run
        while attempt.retry_of is not None:
            previous = await self.store.runs.get(attempt.retry_of)
            if previous is None:
                return None
            if previous.run_state is RunState.FAILED:
                return previous if await self._held(previous) else None
            attempt = previous  # an attempt that ended unknown and was retried: look further back
        return None


class WaitingStarts:
    """Starts the runs that wait their turn (a retry's backoff, a provider's cap on starts) once it came."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        pool: ClientPool,
        notifier: Notifier,
        outcomes: Outcomes,
        *,
        now: Now,
        owner: str,
        lease: timedelta = timedelta(seconds=60),
        first_poll: timedelta = timedelta(seconds=2),
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.pool = pool
        self.notifier = notifier
        self.outcomes = outcomes
        self.now = now
        self.owner = owner
        self.lease = lease
        self.first_poll = first_poll
        self.starts = StartLeases(store, owner=owner, lease=lease, now=now)
        self._stopping = False

    def stop(self) -> None:
        """The bot is stopping: no trigger is sent from now on but the one under way; the runs due wait their turn
        for the next process or another replica (sent on through the grace period, the start cut off there was
        given up as unknown whether it started)."""
        self._stopping = True

    async def tick(self) -> int:
        """Start the runs whose turn came (a retry's backoff over, a cap's wait), one after another: each claimed
        when its trigger is about to be sent. Claimed 50 at once and sent in turn (each trigger taking up to its
        connection's timeout), the runs not sent yet when the process stopped were left "starting", and recovery gave
        each up as "unknown whether it started" (a schedule's owners alerted that the pipeline failed, a retry's
        attempt lost) though none had been sent; another replica could not start them meanwhile either."""
        started = 0
        while started < 50 and not self._stopping:  # a stop sends no more: the rest wait for the next process
            # a run of a connection this replica's catalog lacks is left to a replica that has it (a rolling deploy):
            # taken here, it ended "did not start" (a retry lost, a failure told) though the other could start it.
            # Still waiting once ``OTHERS_AFTER`` overdue, no replica has it: it ends here, saying so. A SQLite file
            # has one process: no other replica to leave it to
            mine = None if self.store.single_process else self.pool.connections
            due = await self.store.starts.claim_waiting(
                self.owner, now=self.now(), limit=1, lease=self.lease, connections=mine, others_after=OTHERS_AFTER
            )
            if not due:
                break
            run = due[0]
            started += 1
            with run_context(run.id, pipeline=run.pipeline, provider=run.provider, connection=run.connection):
                try:
                    await self._start(run)
                except Exception:  # one start that failed (a catalog changed under it) keeps none from theirs
                    log.exception("retry run %s could not be started", run.id, extra={"run_id": run.id})
        return started

    async def _start(self, run: RunRecord) -> None:
        # claimed with a lease (``claim_waiting_runs``): held until the answer is recorded, however long it takes
        async with self.starts.holding(run.id):
            answered = await self._trigger(run)
        if answered is None:
            return
        record, resumed, provider_run_id = answered
        if resumed and self.notifier.has_card(record):
            await self.notifier.thread(record, "resumed", Resumed(provider_run_id))
        await self.notifier.refresh_card(record)
        await self.store.runs.mark_notified(record.id, record.state)

    async def _trigger(self, run: RunRecord) -> tuple[RunRecord, bool, str] | None:
        """Trigger (or resume) the attempt and record the answer: the run, whether it had been given up meanwhile,
        and its provider id. None when it did not start (the run ended, and shown so)."""
        previous = await self._ran_before(run)
        policy = _policy(self.catalog, run)
        try:
            client = self.pool.client(run.connection, run.provider)
        except InvalidRequest as exc:  # its connection left the catalog while it waited (a deploy): nothing was sent
            # (raised, the run stayed "starting" and recovery said the bot had stopped, unknown whether it started)
            await self._not_started(run, exc)
            return None
        job = self.pool.job(run.provider, run.job)
        limits = client.trigger_limits(job)
        if await self.store.limits.admit(run.id, run.connection, limits, now=self.now(), queue=True):
            # the provider's cap on starts is reached: the run waits again, its card says until when
            waiting = await self.store.runs.get(run.id)
            if waiting is not None:
                await self.notifier.refresh_card(waiting)
            return None
        if run.id not in await self.store.starts.renew_leases(self.owner, [run.id], until=self.now() + self.lease):
            # given up while it waited its turn (this process was thought gone): it was not sent, and is not now
            log.warning("run %s was given up before its trigger was sent: not started", run.id,
                        extra={"run_id": run.id})
            return None
        resume = (
            policy is not None
            and policy.resume
            and client.can(Capability.RESUME)
            and previous is not None
            and previous.provider_run_id is not None
            # a run canceled has no failed step, one no longer followed maybe runs still: its Retry runs it again
            # (DataKitchen resumes only a failed order run, and refused, the retry ended "did not start")
            and not previous.ended_without_outcome
        )
        try:
            async with self.pool.slot(run.connection):
                if resume:
                    assert previous is not None
                    assert previous.provider_run_id is not None
                    triggered = await client.resume(job, previous.provider_run_id, run.parameters)
                else:
                    triggered = await client.trigger(job, run.parameters)
        except ProviderUnavailable as exc:
            if not await self._wait_again(run, exc, policy):
                await self._not_started(run, exc)
            return None
        except (TriggerOutcomeUnknown, ProviderError) as exc:
            await self._not_started(run, exc)
            return None
        if previous is not None and triggered.run_id == previous.provider_run_id:
            # the provider resumed under the same id (DataKitchen's order): the old attempt keeps a precise one
            serving = previous.extra.get("serving_hid") or f"attempt-{previous.attempt}"
            await self.store.runs.repoint(previous.id, f"{previous.provider_run_id}/{serving}")
        record, resumed = await record_answer(
            self.store, run.id, triggered.run_id, now=self.now, first_poll=self.first_poll
        )
        return record, resumed, triggered.run_id

    async def _ran_before(self, run: RunRecord) -> RunRecord | None:
        """The attempt ``run`` follows that reached the provider: past the retries canceled before they started
        (a Retry or Resume of a failure whose retry was canceled retries that retry, ``Notifier.retried``), which
        have nothing to resume: taken for the attempt, a Resume sent once its wait was over started a new order."""
        previous = await self.store.runs.get(run.retry_of) if run.retry_of else None
        for _ in range(CANCELED_RETRIES):
            if previous is None or previous.retry_of is None or not never_ran(previous):
                break
            previous = await self.store.runs.get(previous.retry_of)
        return previous

    async def _not_started(self, run: RunRecord, exc: ProviderError | InvalidRequest) -> None:
        what = "the retry" if run.retry_of else "the run"
        ended = await self.store.runs.finish(run.id, RunState.UNKNOWN, f"{what} did not start: {exc}", now=self.now())
        if ended is not None:  # else given up meanwhile (recovery): that end was told
            await self.outcomes.on_change(Transition(ended, StoredState.STARTING, ended.state))

    async def _wait_again(self, run: RunRecord, exc: ProviderUnavailable, policy: RetryPolicy | None) -> bool:
        """The provider was too busy to take the start (429, 503: nothing started): it waits its turn again, as a
        start held by a provider's cap does, for the provider's Retry-After (else the policy's backoff, else a
        minute), at most ``BUSY_WAITS`` times; then the attempt ends "did not start". False when it does not wait."""
        wait = busy_wait(exc, policy, run.attempt)
        if wait is None or int(run.extra.get("busy", 0)) >= BUSY_WAITS:
            return False
        busy = await self.store.limits.wait_again(run.id, until=self.now() + wait, reason=str(exc), now=self.now())
        if busy is None:  # given up meanwhile: it stays ended, as announced
            return True
        log.warning("run %s: the provider was too busy to start it (%s of %s); tries again in %s", run.id, busy,
                    BUSY_WAITS, wait, extra={"run_id": run.id})
        waiting = await self.store.runs.get(run.id)
        if waiting is not None:
            await self.notifier.refresh_card(waiting)
        return True


def _policy(catalog: Catalog, run: RunRecord) -> RetryPolicy | None:
    pipeline = catalog.pipelines.get(run.pipeline or "")
    return pipeline.retry if pipeline else None
