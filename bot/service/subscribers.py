"""Who hears of a run besides the catalog's routing: the channels subscribed to its pipeline, one of its tags or
its provider (``/pipeline subscribe``), and the person who started it, when they asked "notify me".

- A failure that opens an alert is announced in each subscribed channel too (``failures`` and ``all``), never
  twice in one channel: not where the alert is (the routed channel), not where the run's card is. A repeat
  folded into an open alert posts nothing new there, as it posts nothing new in the routed channel.
- ``all`` subscribers also get a short note when a run ends otherwise (succeeded, canceled, unknown, or a
  failure folded into an open alert), except in the channel where the run's card already shows it.
- A muted pipeline's runs are not announced to subscribers either; the person who started a run is told of
  it all the same (it is their own run, and the DM pings nobody else).
Each message is keyed by subscription and run (``bot.store.keys``): told twice (a crash, a replica), sent once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.catalog.catalog import Catalog
from bot.models import RunState
from bot.service.events import Reporter, SubscriberNote
from bot.service.notify import Notifier
from bot.store import keys
from bot.store.alerting import Alert
from bot.store.records import RunRecord
from bot.store.store import Store
from bot.store.subscriptions import Level, Subscription

__all__ = ["Subscribers"]

Now = Callable[[], datetime]
#: the ends a person who asked "notify me" hears of
_TOLD_ENDS = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED, RunState.UNKNOWN)


class Subscribers:
    def __init__(self, store: Store, catalog: Catalog, notifier: Notifier, reporter: Reporter, now: Now) -> None:
        self.store = store
        self.catalog = catalog
        self.notifier = notifier
        self.reporter = reporter
        self.now = now

    async def failed(self, run: RunRecord, alert: Alert | None, *, new: bool) -> set[str]:
        """Announce a failure in the subscribed channels; returns the channels told (or told already)."""
        if alert is None or alert.muted:
            return set()
        told: set[str] = set()
        skip = self._shown_in(run) | {_bare(alert.channel)}
        for subscription in await self._covering(run):
            channel = _bare(subscription.channel)
            if channel in skip:
                told.add(channel)  # the alert or the card is there: that is the announcement
                continue
            if not new:
                continue  # folded into the open alert: nothing new, as in the routed channel
            note = self._note(run, subscription, failure=True, alert_channel=alert.channel)
            await self.reporter.subscriber_note(keys.subscriber_note(subscription.id, run.id, "failed"), channel, note)
            told.add(channel)
        return told

    async def ended(self, run: RunRecord, *, told: set[str]) -> None:
        """A run ended: the short note for ``all`` subscribers not ``told`` of it yet, and the starter's DM."""
        if run.run_state not in _TOLD_ENDS:
            return
        await self._starter(run)
        muted = run.pipeline in await self.store.mutes.active(now=self.now()) if run.pipeline else False
        if muted:
            return
        skip = self._shown_in(run) | {_bare(c) for c in told}
        for subscription in await self._covering(run):
            channel = _bare(subscription.channel)
            if subscription.level is not Level.ALL or channel in skip:
                continue
            skip.add(channel)  # a pipeline and its tag both subscribed in one channel: one note
            note = self._note(run, subscription, failure=False)
            await self.reporter.subscriber_note(keys.subscriber_note(subscription.id, run.id, "ended"), channel, note)

    async def _starter(self, run: RunRecord) -> None:
        user = run.started_by
        if not user or not await self.store.subscriptions.notifies(user):
            return
        note = SubscriberNote(
            run=run,
            why="started",
            display_name=self.notifier.display_name(run),
            failure=False,
            console_url=self.notifier.console_url(run),
        )
        await self.reporter.subscriber_note(keys.notify_me(user, run.id), user, note)

    async def _covering(self, run: RunRecord) -> list[Subscription]:
        pipeline = self.notifier.pipeline(run)
        if pipeline is None:
            return []  # ad-hoc runs belong to no pipeline, tag or provider anyone subscribed to
        return await self.store.subscriptions.matching(pipeline.name, pipeline.tags, pipeline.provider)

    def _shown_in(self, run: RunRecord) -> set[str]:
        """The channel where the run's card is: it shows the run's end already."""
        channel = self.notifier.channel_for(run) if self.notifier.has_card(run) else None
        return {_bare(channel)} if channel else set()

    def _note(
        self, run: RunRecord, subscription: Subscription, *, failure: bool, alert_channel: str | None = None
    ) -> SubscriberNote:
        return SubscriberNote(
            run=run,
            why=f"{subscription.kind.value} {subscription.target}",
            display_name=self.notifier.display_name(run),
            failure=failure,
            alert_channel=alert_channel,
            console_url=self.notifier.console_url(run),
        )


def _bare(channel: str) -> str:
    """``#name`` and ``name`` are one channel (the catalog may name channels either way before they resolve)."""
    return channel.removeprefix("#")
