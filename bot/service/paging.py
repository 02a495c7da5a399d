"""The on-call hand-off: a pipeline's failure alerts mirrored to its PagerDuty service (catalog ``pagerduty``).

A new failure alert not muted is triggered, one PagerDuty incident per Slack alert (``dedup_key``
``pipeline-bot/alert/{id}``); the first acknowledgement in Slack acknowledges it; the alert's resolution resolves
it. An alert reopened (a failure again soon after it was resolved) is paged again, a new incident on the same dedup
key, and resolved again in its turn (``episode``). Nothing here calls PagerDuty: each event is written to the
store (``pd:{alert}:{action}``, once) for the sender (``bot.delivery.paging``), a queue of its own, so a PagerDuty
outage never holds a Slack message back. Acknowledge and resolve are recorded only for an alert that was paged.

A trigger and a resolve are recorded in the transaction of the alert's change (``AlertStore.record_failure``'s
``page``, ``recover``'s ``paged``): a process stopped between the two lost the event (the incident never opened, or
left open). ``trigger`` and ``resolve`` here then record nothing new; they still close the race of a success
handled while the failure's alert was being recorded (another task or replica).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from bot.catalog.catalog import Catalog
from bot.models import Json, RunState
from bot.service.clients import ClientPool
from bot.store.alerting import Alert, AlertState
from bot.store.paging import PageAction
from bot.store.records import RunRecord
from bot.store.store import Store

__all__ = ["Pager"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]


class Pager:
    def __init__(self, store: Store, catalog: Catalog, pool: ClientPool, now: Now) -> None:
        self.store = store
        self.catalog = catalog
        self.pool = pool
        self.now = now

    async def trigger(self, alert: Alert, run: RunRecord) -> bool:
        """A failure alert was opened: page its pipeline's service, unless the alert is muted or already resolved
        (a later run succeeded before this failure was handled: nobody needs waking). True when recorded.

        Called for every failure an alert counts: a repeat of a paged episode is the same event (nothing more); a
        reopened alert's is its new episode's trigger; one whose trigger was never recorded (the process stopped
        between the two) gets it."""
        pipeline = self.catalog.pipelines.get(alert.pipeline or "")
        if pipeline is None or pipeline.pagerduty is None or alert.muted:
            return False
        # ``alert`` was read when the failure was recorded: a later run's success handled since (another task of
        # the poller, another replica) resolved it, and its resolve found no trigger to follow
        fresh = await self.store.alerting.get(alert.id)
        if fresh is None or fresh.recovered_at is not None:
            return False
        episode = await self.store.paging.episode(alert.id)
        event = self.trigger_event(pipeline.name, alert.message, run) or {}
        new = await self._record(alert.id, "trigger", pipeline.name, event, episode)
        # resolved between that read and this record: the success's resolve may have looked before the trigger
        # was there, so it is followed here (the same event, recorded once, if the success's resolve saw it)
        after = await self.store.alerting.get(alert.id)
        if after is not None and after.recovered_at is not None:
            await self.resolve([after])
        return new

    async def acknowledge(self, run: RunRecord, user_id: str) -> None:
        """Someone acknowledged ``run`` in Slack (the first to): the paged alerts that count it, acknowledged."""
        if not run.pipeline:
            return
        for alert in await self.store.alerting.open_alerts(limit=500):
            if alert.pipeline != run.pipeline or run.id not in alert.runs:
                continue
            episode = await self.store.paging.episode(alert.id)
            if await self.store.paging.triggered(alert.id, episode):
                await self._record(alert.id, "acknowledge", run.pipeline, {"by": user_id}, episode)

    async def resolve(self, alerts: Iterable[Alert]) -> None:
        """Alerts resolved (a later run succeeded, or closed): their incidents resolved, after their trigger."""
        for alert in alerts:
            resolved = alert.state is AlertState.RECOVERED or alert.recovered_at is not None
            if not alert.pipeline or not resolved:
                continue
            # the episode this resolution ends: a reopening after it (another replica's, at once) is the next one's
            episode = await self.store.paging.episode(alert.id, upto=alert.recovered_at)
            if await self.store.paging.triggered(alert.id, episode):
                by = {"run": f"#{alert.recovered_by_run}"} if alert.recovered_by_run else {}
                await self._record(alert.id, "resolve", alert.pipeline, by, episode)

    async def _record(
        self, alert_id: int, action: PageAction, pipeline: str, event: Json, episode: int = 0
    ) -> bool:
        new = await self.store.paging.enqueue(
            alert_id, action, pipeline=pipeline, event=event, now=self.now(), episode=episode
        )
        if new:
            log.info("PagerDuty %s of alert %s (%s) recorded", action, alert_id, pipeline)
        return new

    def pages(self, pipeline: str) -> bool:
        """Whether ``pipeline`` pages a PagerDuty service (catalog ``pagerduty``)."""
        found = self.catalog.pipelines.get(pipeline)
        return found is not None and found.pagerduty is not None

    def trigger_event(self, pipeline: str, message: str, run: RunRecord) -> Json | None:
        """What ``PagerDutyEvents.trigger`` takes, the routing key aside (None: the pipeline pages nobody). Given to
        the store with the failure, so the trigger is recorded in the failure's transaction. PagerDuty's summary is
        what an on-call person reads first, so it says which pipeline, where, and the provider's words."""
        if not self.pages(pipeline):
            return None
        display = self._display(run.connection)
        said = " ".join((message or run.message or run.raw_status).split())
        summary = f"{pipeline} on {display} failed" + (f": {said}" if said else "")
        details: Json = {
            "pipeline": pipeline,
            "provider": display,
            "connection": run.connection,
            "run": f"#{run.id}",
            "attempt": run.attempt,
        }
        if run.provider_run_id:
            details["provider_run_id"] = run.provider_run_id
        failed = [t.name for t in run.tasks if t.state is RunState.FAILED]
        if failed:
            details["failed_tasks"] = failed[:20]
        if said:
            details["message"] = said[:2000]
        links = []
        console = self._console(run)
        if console:
            links.append({"href": console, "text": f"{display} console"})
        return {
            "summary": summary,
            "source": f"{run.provider}/{pipeline}",
            "severity": "error",
            "custom_details": details,
            "links": links,
            "timestamp": (run.ended_at or self.now()).isoformat(),
        }

    def _display(self, connection: str) -> str:
        try:
            return self.pool.client(connection).display_name
        except Exception:
            return connection

    def _console(self, run: RunRecord) -> str | None:
        try:
            job = self.pool.job(run.provider, run.job)
            return self.pool.client(run.connection, run.provider).console_url(job, run.provider_run_id)
        except Exception:  # a link is a nicety: the page goes without it
            return None
