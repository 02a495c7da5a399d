"""What follows a run's change: its card is updated; at its end, a retry, the workflow's next step, the failure's
alert and details, or the alert's recovery.

The poller, the watch, the retry starts and the recovery of unnotified runs all hand their changes here, so a run
ends the same way whoever saw it end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.models import RunState
from bot.service.alerts import OTHERS_AFTER, Alerter
from bot.service.events import EndedOddly, Recovered, StoppedFollowing
from bot.service.notify import Notifier
from bot.service.subscribers import Subscribers
from bot.store import keys
from bot.store.records import RunOrigin, RunRecord, Transition
from bot.store.store import Store

#: how far back a success looks through the attempts it follows (the policy's, people's retries of them)
ATTEMPTS_LOOKED_AT = 20
LINKED_CARDS = 5  # the cards of an alert's latest failures link to it (a storm's older ones need not)

__all__ = ["Changes", "Outcomes", "RetryPolicy", "StepFollower", "StepWaiter"]


class RetryPolicy(Protocol):
    """``bot.service.retries.Retrier``: whether an ended attempt gets another, and the failure held meanwhile."""

    async def maybe_retry(self, run: RunRecord) -> bool: ...

    async def held_failure(self, run: RunRecord) -> RunRecord | None: ...


class StepFollower(Protocol):
    """``bot.service.workflows.WorkflowEngine``: a step's run ended, its workflow moves on."""

    async def step_ended(self, run: RunRecord) -> None: ...


class StepWaiter(Protocol):
    """``bot.service.function_steps.StepService``: Workflow Builder steps waiting for a run complete at its end."""

    async def run_ended(self, run: RunRecord) -> None: ...


class Changes:
    """Where a service hands a run's change when it is not the poller's to see: a schedule's start that ended at
    its trigger, a run whose trigger's answer says it already ended (``RunService``). ``RunService`` is built
    before ``Outcomes`` (whose workflows start runs through it), so it gets this dispatcher, and ``Outcomes``
    subscribes once it exists (``bot.runtime``)."""

    def __init__(self) -> None:
        self._handlers: list[Callable[[Transition], Awaitable[None]]] = []

    def subscribe(self, handler: Callable[[Transition], Awaitable[None]]) -> None:
        self._handlers.append(handler)

    @property
    def handled(self) -> bool:
        return bool(self._handlers)

    async def publish(self, change: Transition) -> None:
        for handler in self._handlers:
            await handler(change)


class Outcomes:
    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        alerter: Alerter,
        retrier: RetryPolicy,
        workflows: StepFollower,
        subscribers: Subscribers | None = None,
        steps: StepWaiter | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.alerter = alerter
        self.retrier = retrier
        self.workflows = workflows
        self.subscribers = subscribers
        self.steps = steps

    async def linked(self, key: str) -> None:
        """Message ``key`` was posted and its permalink stored: a run's card is linked from its alerts' messages, an
        alert's message from the cards of the runs it counts."""
        run_id = keys.run_of_card(key)
        if run_id is not None:
            await self.alerter.run_changed(run_id)
            return
        if not keys.is_alert_group(key):
            return
        counted = {i for alert in await self.store.alerting.group(key) for i in alert.runs[-LINKED_CARDS:]}
        for run in (await self.store.runs.many(counted)).values():
            if self.notifier.has_card(run):
                await self.notifier.refresh_card(run)

    async def on_change(self, change: Transition) -> None:
        """A run changed: update its card; on failure, alert and post the details in its thread.

        Everything here is idempotent (content compared, messages keyed), and the run is marked notified
        only at the end: after a crash, recovery simply runs it again."""
        if self._left_to_others(change):
            # not marked notified: the recovery of unnotified runs hands it to a replica that knows it. Its card is
            # drawn from the run alone (content compared): it shows the end now, not "running" for those minutes
            if self.notifier.has_card(change.run):
                await self.notifier.refresh_card(change.run)
            return
        await self._on_change(change)
        if change.run.notified_state != change.run.state:  # else the mark is there already: no write for nothing
            await self.store.runs.mark_notified(change.run.id, change.run.state)

    def tells(self, change: Transition) -> bool:
        """Whether ``on_change`` has anything to do for ``change`` beyond marking it notified: a card to update, or
        an end to act on. The poller records a change that tells nobody already notified (``RunStore.record_status``)
        and does not hand it here; ``_on_change`` does nothing for it either, by this same rule."""
        run = change.run
        return self.notifier.has_card(run) or change.ends

    def _left_to_others(self, change: Transition) -> bool:
        """Whether the end of a run whose pipeline this replica's catalog lacks is left to another replica for now:
        on a shared database another replica's catalog may still have the pipeline (a rolling deploy), and only that
        one can route its failure's alert, name its owners, page, retry it by its policy, or draw the alert again
        with its owners at its recovery. Until ``OTHERS_AFTER`` past its record; then it is told here as well as
        this catalog can (a watched run's card where its watch alerted), so a pipeline gone from every catalog is
        still told. A SQLite file has one process: at once. A person's stop following is answered where asked."""
        run = change.run
        if not change.ends or run.pipeline is None or run.stopped_by:
            return False
        if self.store.single_process or self.notifier.pipeline(run) is not None:
            return False
        return self.notifier.now() - run.updated_at < OTHERS_AFTER

    async def _on_change(self, change: Transition) -> None:
        if not self.tells(change):
            return
        run = change.run
        notifier = self.notifier
        if notifier.has_card(run):
            await notifier.refresh_card(run)
        if not change.ends:
            return
        retryable = run.run_state in (RunState.FAILED, RunState.UNKNOWN)
        if retryable and await self.retrier.maybe_retry(run):
            return  # attempts are left: no alert yet
        succeeded = run.run_state is RunState.SUCCEEDED
        if succeeded and run.attempt > 1 and notifier.has_card(run) and await self._held_and_recovered(run):
            await notifier.thread(run, "recovered", Recovered(run.attempt))
        if run.workflow_run_id is not None:
            await self.workflows.step_ended(run)
        if self.steps is not None:
            await self.steps.run_ended(run)
        told: set[str] = set()
        if run.run_state is RunState.FAILED:
            told = await self._failed(run)
        elif run.run_state is RunState.SUCCEEDED:
            await self.alerter.on_success(run)
        elif run.run_state is RunState.UNKNOWN and notifier.has_card(run):
            stopped = StoppedFollowing(run.stopped_by, run.connection, run.stopped_why) if run.stopped_by else None
            await notifier.thread(run, "ended", stopped or EndedOddly(run.raw_status, run.message))
        if run.run_state in (RunState.UNKNOWN, RunState.CANCELED):
            await self.no_attempt_follows(run)
        if run.retry_of is not None and (run.run_state is RunState.CANCELED or run.stopped_by):
            await self.alerter.run_changed(run.id)  # the alert whose timeline names this retry says how it ended
        if self.subscribers is not None:
            await self.subscribers.ended(run, told=told)

    async def _held_and_recovered(self, run: RunRecord) -> bool:
        """Whether the attempts before successful ``run`` failed and none of them was alerted (the policy held them):
        "no alert was sent" is true then. A person's Retry of a failure alerted already, or of a run canceled (nothing
        failed), is told by the alert's recovery, or needs no word."""
        failed = False
        attempt: RunRecord | None = run
        for _ in range(ATTEMPTS_LOOKED_AT):
            if attempt is None or attempt.retry_of is None:
                break
            attempt = await self.store.runs.get(attempt.retry_of)
            if attempt is None or attempt.ended_without_outcome:
                continue  # canceled or no longer followed: no outcome of its own
            if attempt.run_state not in (RunState.FAILED, RunState.UNKNOWN):
                continue  # it did not fail
            if attempt.pipeline and await self.store.alerting.counts_run(
                attempt.pipeline, attempt.id, since=attempt.created_at
            ):
                return False
            failed = True
        return failed

    async def _failed(self, run: RunRecord) -> set[str]:
        """Alert a failure; post its details in the run's thread. Returns the subscribed channels told of it."""
        notifier = self.notifier
        card_channel = notifier.channel_for(run) if notifier.has_card(run) else None
        alert = await self.alerter.on_failure(run, card_channel=card_channel)
        if alert is None and card_channel is None and run.pipeline is not None and notifier.pipeline(run) is None:
            # found by passive watch, its pipeline since removed from the catalog (its connection kept): no alert can
            # be routed nor owners named, and it has no card: its failure was told nobody. Its card is posted where
            # its watch alerted, the failure's details in its thread
            await notifier.refresh_card(run)
            await notifier.failure(run, mention=False)
        if notifier.has_card(run):
            # owners are pinged once per alert: in this thread when the card is the alert, else in the alert
            mention = alert is None or (alert.count == 1 and alert.group_key == keys.run_card(run.id))
            await notifier.failure(run, mention=mention)
        if self.subscribers is None:
            return set()
        # a new alert counts this run alone (a repeat folds it into an open one, already announced)
        return await self.subscribers.failed(run, alert, new=alert is not None and alert.runs == (run.id,))

    async def no_attempt_follows(self, run: RunRecord) -> None:
        """An attempt ended without an outcome of its own (unknown, never started, canceled) and no attempt
        follows it: the earlier failure whose alert waited for it is announced now, with its owners. Called for
        every such end, wherever it is decided (here, and by the recovery of runs left starting)."""
        held = await self.retrier.held_failure(run)
        if held is not None:
            await self._failed(held)
        elif (
            run.origin == RunOrigin.SCHEDULE
            and run.provider_run_id is None
            and run.retry_of is None
            and run.run_state is not RunState.CANCELED  # canceled while it waited its turn: a person asked for it
        ):
            # a schedule's start that never got going (refused, unreachable, or unknown whether it started):
            # nobody asked for it, so nobody would hear of it; the pipeline missed its slot, its owners are told
            await self._failed(run)
