"""Turns what happened to a run into what Slack should show: the card's content and thread messages.

Nothing here calls Slack: the card's desired content and each message are written to the store
(``cards`` and ``outbox``) and the delivery loop sends them. So a crash at any point loses nothing,
and a message recorded twice under the same key is sent once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from bot.catalog.model import Catalog, Pipeline
from bot.models import RunState
from bot.providers.base import Capability
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.slack.blocks.card import CardView, run_card
from bot.slack.blocks.replies import failure_details, notice
from bot.slack.text import escape
from bot.store.records import RunRecord, Transition
from bot.store.store import Store
from bot.store.workflow_runs import WorkflowRunRecord

__all__ = ["Notifier"]

Now = Callable[[], datetime]


class RetryHook(Protocol):
    async def maybe_retry(self, run: RunRecord) -> bool: ...

    async def held_failure(self, run: RunRecord) -> RunRecord | None: ...


class WorkflowHook(Protocol):
    async def step_ended(self, run: RunRecord) -> None: ...


class Notifier:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        pool: ClientPool,
        now: Now,
        *,
        unknown_after: timedelta = timedelta(minutes=2),
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.pool = pool
        self.now = now
        self.unknown_after = unknown_after
        self.alerter: Alerter | None = None
        self.retrier: RetryHook | None = None
        self.workflows: WorkflowHook | None = None

    def pipeline(self, run: RunRecord) -> Pipeline | None:
        return self.catalog.pipelines.get(run.pipeline) if run.pipeline else None

    def channel_for(self, run: RunRecord) -> str | None:
        if run.channel:
            return run.channel
        pipeline = self.pipeline(run)
        return self.catalog.channel_for(pipeline) if pipeline else self.catalog.defaults.channel

    def console_url(self, run: RunRecord) -> str | None:
        try:
            client = self.pool.client(run.connection)
            return client.console_url(self.pool.job(run.provider, run.job), run.provider_run_id)
        except Exception:  # a card must render even if the catalog changed under it
            return None

    async def refresh_card(self, run: RunRecord) -> bool:
        """Write what the run's card should show now; False when it already shows that (or has no channel)."""
        channel = self.channel_for(run)
        if channel is None:
            return False
        now = self.now()
        retry = await self.store.retry_of(run.id)
        muted = (await self.store.muted(now=now)).get(run.pipeline or "")
        try:
            client = self.pool.client(run.connection)
            display = client.display_name
            can_cancel = client.can(Capability.CANCEL)
            job_text = self.pool.job(run.provider, run.job).describe()
        except Exception:
            display, can_cancel, job_text = run.provider, False, ", ".join(f"{k}={v}" for k, v in run.job.items())
        view = CardView(
            run=run,
            display_name=display,
            job_text=job_text,
            console_url=self.console_url(run),
            can_cancel=can_cancel and not run.final and run.provider_run_id is not None,
            unknown_after=self.unknown_after,
            now=now,
            retry_of_link=f"#{run.retry_of}" if run.retry_of else None,
            retried_as=retry.id if retry else None,
            muted_until=muted[0] if muted else None,
            attempts=pipeline.retry.attempts if (pipeline := self.pipeline(run)) and pipeline.retry else None,
            workflow_link=f"Step {run.step} of workflow run #{run.workflow_run_id}" if run.workflow_run_id else None,
        )
        text, blocks = run_card(view)
        return await self.store.set_card(run.id, channel, text, blocks, now=now)

    def has_card(self, run: RunRecord) -> bool:
        """Runs started outside Slack get no card: their failures are announced as alerts instead."""
        return run.origin != "watch"

    async def on_change(self, change: Transition) -> None:
        """A run changed: update its card; on failure, alert and post the details in its thread.

        Everything here is idempotent (content compared, messages keyed), and the run is marked notified
        only at the end: after a crash, recovery simply runs it again."""
        await self._on_change(change)
        await self.store.mark_notified(change.run.id, change.run.state)

    async def _on_change(self, change: Transition) -> None:
        run = change.run
        if self.has_card(run):
            await self.refresh_card(run)
        if not (run.final and change.before != run.state):
            return
        retryable = run.run_state in (RunState.FAILED, RunState.UNKNOWN) and self.retrier is not None
        if retryable and self.retrier is not None and await self.retrier.maybe_retry(run):
            return  # attempts are left: no alert yet
        if run.run_state is RunState.SUCCEEDED and run.attempt > 1 and self.has_card(run):
            await self.thread(run, "recovered", f"✅ Succeeded on attempt {run.attempt}: no alert was sent.")
        if self.workflows is not None and run.workflow_run_id is not None:
            await self.workflows.step_ended(run)
        if run.run_state is RunState.FAILED:
            await self._failed(run)
        elif run.run_state is RunState.SUCCEEDED and self.alerter is not None:
            await self.alerter.on_success(run)
        elif run.run_state is RunState.UNKNOWN and self.has_card(run):
            said = f"The run ended with a status outside the usual ones: {escape(run.raw_status)}"
            if not run.raw_status and run.message:  # ended by the bot (a retry that did not start): its reason
                said = escape(run.message)
            await self.thread(run, "ended", said)
        if run.run_state in (RunState.UNKNOWN, RunState.CANCELED):
            await self.no_attempt_follows(run)

    async def _failed(self, run: RunRecord) -> None:
        """Alert a failure; post its details in the run's thread."""
        card_channel = self.channel_for(run) if self.has_card(run) else None
        alert = await self.alerter.on_failure(run, card_channel=card_channel) if self.alerter else None
        if self.has_card(run):
            # owners are pinged once per alert: in this thread when the card is the alert, else in the alert
            mention = alert is None or (alert.count == 1 and alert.group_key == f"run:{run.id}")
            await self.failure(run, mention=mention)

    async def no_attempt_follows(self, run: RunRecord) -> None:
        """An attempt ended without an outcome of its own (unknown, never started, canceled) and no attempt
        follows it: the earlier failure whose alert waited for it is announced now, with its owners. Called for
        every such end, wherever it is decided (here, and by the recovery of runs left starting)."""
        held = await self.retrier.held_failure(run) if self.retrier is not None else None
        if held is not None:
            await self._failed(held)
        elif run.origin == "schedule" and run.provider_run_id is None and run.retry_of is None:
            # a schedule's start that never got going (refused, unreachable, or unknown whether it started):
            # nobody asked for it, so nobody would hear of it; the pipeline missed its slot, its owners are told
            await self._failed(run)

    async def failure(self, run: RunRecord, *, mention: bool = True) -> None:
        pipeline = self.pipeline(run)
        muted = (await self.store.muted(now=self.now())).get(run.pipeline or "")
        owners = () if muted or pipeline is None or not mention else pipeline.owners
        text, blocks = failure_details(
            run, owners=owners, display_name=self.display_name(run), console_url=self.console_url(run)
        )
        await self.store.enqueue(
            f"run:{run.id}:failure", kind="thread", run_id=run.id, text=text, blocks=blocks, now=self.now()
        )

    async def thread(self, run: RunRecord, key: str, message: str) -> None:
        """A note in the run's thread. ``message`` is mrkdwn built by our code: escape what it quotes."""
        text, blocks = notice(message, formatted=True)
        await self.store.enqueue(
            f"run:{run.id}:{key}", kind="thread", run_id=run.id, text=text, blocks=blocks, now=self.now()
        )

    async def workflow_note(self, record: WorkflowRunRecord, key: str, message: str) -> None:
        """A note in a workflow card's thread. ``message`` is mrkdwn built by our code."""
        text, blocks = notice(message, formatted=True)
        await self.store.enqueue(
            f"workflow:{record.id}:{key}",
            kind="thread",
            card_key=f"workflow:{record.id}",
            text=text,
            blocks=blocks,
            now=self.now(),
        )

    def display_name(self, run: RunRecord) -> str:
        try:
            return self.pool.client(run.connection).display_name
        except Exception:
            return run.provider
