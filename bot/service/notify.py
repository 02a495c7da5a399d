"""What a run's card and thread should say: gathered here from the run, the catalog and its client, told to the
``Reporter`` (``bot.service.events``) that renders it.

Nothing here calls Slack or renders: the Slack side writes the card's content and each message to the store
(``cards`` and ``outbox``) and the delivery loop sends them. So a crash at any point loses nothing, and a message
recorded twice under the same key is sent once. What follows a change (a retry, an alert, a workflow's next step)
is ``bot.service.outcomes``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote

from bot.catalog.catalog import Catalog
from bot.catalog.model import Pipeline
from bot.errors import InvalidRequest
from bot.models import RunState
from bot.providers.base import Capability
from bot.service.clients import ClientPool
from bot.service.events import CardView, Reporter, RunNote, WorkflowNote
from bot.service.views import run_view
from bot.store import keys
from bot.store.alert_events import CANCELED_RETRIES
from bot.store.records import RunOrigin, RunRecord, StoredState
from bot.store.store import Store
from bot.store.workflow_runs import WorkflowRunRecord

__all__ = ["Notifier"]

Now = Callable[[], datetime]
#: where a connection's ``console_url`` wants the provider's run id
RUN_ID = "{run_id}"
#: how far back the watch lists a pipeline's runs (``Watcher``'s lookback): a run begun earlier is not in its list
WATCH_LISTS = timedelta(days=1)
#: how many runs the watch lists a pipeline's (``Watcher``'s limit), newest first: an older one is not in its list
WATCH_LIMIT = 50


def never_ran(run: RunRecord) -> bool:
    """Canceled while it waited its turn (a retry's backoff, a provider's cap): nothing of it reached the provider."""
    return run.final and run.run_state is RunState.CANCELED and run.provider_run_id is None


class Notifier:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        pool: ClientPool,
        reporter: Reporter,
        now: Now,
        *,
        unknown_after: timedelta = timedelta(minutes=2),
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.pool = pool
        self.reporter = reporter
        self.now = now
        self.unknown_after = unknown_after

    def pipeline(self, run: RunRecord) -> Pipeline | None:
        return self.catalog.pipelines.get(run.pipeline) if run.pipeline else None

    def channel_for(self, run: RunRecord) -> str | None:
        if run.channel:
            return run.channel
        pipeline = self.pipeline(run)
        return self.catalog.channel_for(pipeline) if pipeline else self.catalog.defaults.channel

    def console_url(self, run: RunRecord) -> str | None:
        """The client's console link; a ``{run_id}`` in the connection's ``console_url`` becomes the run's id
        (empty before the provider gave one), so a console with a page per run is linked to that page."""
        try:
            client = self.pool.client(run.connection, run.provider)
            url = client.console_url(self.pool.job(run.provider, run.job), run.provider_run_id)
        except Exception:  # a card must render even if the catalog changed under it
            return None
        return url.replace(RUN_ID, quote(run.provider_run_id or "", safe="")) if url else url

    async def retried(self, run: RunRecord) -> tuple[RunRecord, RunRecord | None]:
        """The attempt a Retry of ``run`` retries, and the retry already standing for it (None: Retry may go). A
        retry canceled before it started stands for nothing: it never ran, so a Retry of ``run`` retries it (the
        database keeps one retry per run) and the failure's card offers Retry again."""
        target, retry = run, await self.store.runs.retry_of(run.id)
        for _ in range(CANCELED_RETRIES):
            if retry is None or not never_ran(retry):
                break
            target, retry = retry, await self.store.runs.retry_of(retry.id)
        return target, retry

    async def card_view(self, run: RunRecord) -> CardView:
        """What the run's card shows now: the one builder, for the card in the channel and ``status N``'s reply
        alike (same content, same buttons: each button re-checks who clicks and the run's state on the server,
        wherever it is clicked)."""
        now = self.now()
        _, retry = await self.retried(run)
        muted = (await self.store.mutes.active(now=now)).get(run.pipeline or "")
        gone = None
        try:
            client = self.pool.client(run.connection, run.provider)
            display = client.display_name
            can_cancel = client.can(Capability.CANCEL)
            job_text = self.pool.job(run.provider, run.job).describe()
        except InvalidRequest:  # the catalog has its connection no more
            display, can_cancel, job_text = run.provider, False, ", ".join(f"{k}={v}" for k, v in run.job.items())
            gone = run.connection
        except Exception:
            display, can_cancel, job_text = run.provider, False, ", ".join(f"{k}={v}" for k, v in run.job.items())
        if gone is not None and await self.watch_follows(run) is not None:
            gone = None  # followed all the same: its end is told as any, nothing to stop following
        paged, alert_link = await self._alert_of(run)
        return CardView(
            paged=paged,
            alert_link=alert_link,
            run=run_view(run),
            display_name=display,
            job_text=job_text,
            console_url=self.console_url(run),
            # a run waiting its turn is canceled by the bot alone (nothing at the provider yet): any provider
            can_cancel=not run.final and (
                run.state == StoredState.WAITING.value or (can_cancel and run.provider_run_id is not None)
            ),
            unknown_after=self.unknown_after,
            now=now,
            retry_of_link=f"#{run.retry_of}" if run.retry_of else None,
            retried_as=retry.id if retry else None,
            muted_until=muted[0] if muted else None,
            attempts=pipeline.retry.attempts if (pipeline := self.pipeline(run)) and pipeline.retry else None,
            workflow_link=f"Step {run.step} of workflow run #{run.workflow_run_id}" if run.workflow_run_id else None,
            stuck_since=None if run.final else await self.store.outbox.written_at(keys.run_stuck(run.id)),
            alerted=await self._alerted(run),
            gone_connection=gone,
        )

    async def watch_follows(self, run: RunRecord) -> Pipeline | None:
        """The watched pipeline whose list follows ``run`` though this catalog lacks the run's connection: the
        pipeline moved to another connection of its provider (a rename) and the watch finds the run there under its
        old name (``RunReads.find_moved``), its end recorded as any. None otherwise (nothing follows it from here)."""
        pipeline = self.pipeline(run)
        if run.final or pipeline is None or pipeline.provider != run.provider or pipeline.connection == run.connection:
            return None
        if self.now() - (run.started_at or run.created_at) >= WATCH_LISTS:
            return None
        if pipeline.provider == "datakitchen" and "/" not in (run.provider_run_id or ""):
            # DataKitchen lists "<order>/<order run>" where its trigger knew "<order>": the watch finds such a run
            # but records only what it lists by the run's own id (``Watcher._one``): nothing follows it
            return None
        try:
            if not self.pool.client(pipeline.connection, pipeline.provider).can(Capability.LIST_RUNS):
                return None
            if not self.pool.job(run.provider, run.job).lists_as(pipeline.job):
                return None  # the pipeline runs another job now (not a rename): the watch lists that job's runs
        except (InvalidRequest, ValueError):
            return None
        override = (await self.store.alerting.watches()).get(pipeline.name)
        if not (override.enabled if override is not None else pipeline.watch):
            return None
        if await self.store.runs.reached_after(pipeline.name, run.provider, run.id, WATCH_LIMIT) >= WATCH_LIMIT:
            # as many runs of it began at the provider since: the watch's list (its newest runs) no longer holds it.
            # Only those: a start refused or still waiting is in no list (counted, a run followed was offered to stop)
            return None
        return pipeline

    async def _alert_of(self, run: RunRecord) -> tuple[tuple[str, ...], str | None]:
        """Who the alert of this failed run paged, and the link to that alert's message: only for an alert posted
        on its own (a card that is the alert says it in its thread) and not muted."""
        if not run.final or run.run_state is RunState.SUCCEEDED:
            return (), None
        alert_id = await self.store.alert_events.alert_of_run(run.id)
        alert = await self.store.alerting.get(alert_id) if alert_id is not None else None
        if alert is None or alert.muted or alert.group_key is None or not keys.is_alert_group(alert.group_key):
            return (), None
        pipeline = self.pipeline(run)
        link = (await self.store.alert_events.permalinks([alert.group_key])).get(alert.group_key)
        return (pipeline.owners if pipeline else ()), link
    async def _alerted(self, run: RunRecord) -> bool:
        """Whether an alert counts this run; asked only of a run that ended unknown or did not start (a failure
        always alerts, other ends never do), so a card's refresh costs no query in the usual cases."""
        if not run.final or run.run_state is not RunState.UNKNOWN or run.pipeline is None:
            return False
        return await self.store.alerting.counts_run(run.pipeline, run.id, since=run.created_at)

    async def refresh_card(self, run: RunRecord) -> bool:
        """Write what the run's card should show now; False when it already shows that (or has no channel)."""
        channel = self.channel_for(run)
        if channel is None:
            return False
        # the run as it is now, read after the ticket: the caller's copy may predate a click another task handled
        ticket = await self.store.cards.draw_ticket(run.id)
        run = await self.store.runs.get(run.id) or run
        return await self.reporter.run_card(channel, await self.card_view(run), ticket=ticket)

    async def refresh_shown(self, run: RunRecord) -> bool:
        """Refresh the card of a run that has one (its status turned unknown, say); False when nothing changed.

        A run whose connection this replica's catalog lacks is left to the replica that has it (its polls clear the
        unknown) until it has been unknown long enough for the card to say so: each replica drew its own view (the
        provider's name, the job, Cancel or not), an edit of the card at every poll for as long as the run ran."""
        if not self.has_card(run):
            return False
        if run.unknown_since is not None and self.now() - run.unknown_since < self.unknown_after and self._gone(run):
            return False
        return await self.refresh_card(run)

    def _gone(self, run: RunRecord) -> bool:
        try:
            self.pool.client(run.connection, run.provider)
        except InvalidRequest:
            return True
        return False

    def has_card(self, run: RunRecord) -> bool:
        """Runs started outside Slack get no card: their failures are announced as alerts instead."""
        return run.origin != RunOrigin.WATCH

    async def failure(self, run: RunRecord, *, mention: bool = True) -> None:
        pipeline = self.pipeline(run)
        muted = (await self.store.mutes.active(now=self.now())).get(run.pipeline or "")
        owners = () if muted or pipeline is None or not mention else pipeline.owners
        await self.reporter.run_failed(
            run, owners=owners, display_name=self.display_name(run), console_url=self.console_url(run)
        )

    async def thread(self, run: RunRecord, key: str, note: RunNote) -> None:
        """A note in the run's thread, once per ``key``."""
        await self.reporter.run_note(run, key, note)

    async def workflow_note(self, record: WorkflowRunRecord, key: str, note: WorkflowNote) -> None:
        """A note in a workflow card's thread, once per ``key``."""
        await self.reporter.workflow_note(record, key, note)

    def display_name(self, run: RunRecord) -> str:
        try:
            return self.pool.client(run.connection, run.provider).display_name
        except Exception:
            return run.provider
