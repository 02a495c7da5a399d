"""What makes the channel a status board instead of noise.

- A failure opens an alert in the pipeline's channel (its own, a routing rule's, else the default).
  When the run's card already sits in that channel, the card (and its thread) is the alert.
- Failures landing in one channel within ``group_window`` are announced in one message listing each.
- A pipeline failing again inside its suppression interval updates its open alert instead of posting;
  never an alert whose only post is a run's card (a repeat folded into it would show nowhere).
- A success of a run begun after an alert's latest failure marks it recovered; a run begun before does not.
  An alert resolved before it was posted is posted all the same (showing its failure, owners and what
  resolved it). A muted pipeline's failures are recorded, never announced.
- A connection failing for ``down_after`` gets one "cannot reach" alert, and one "back" notice.
- A credential the bot cannot renew (a static Tailer token) gets one notice ``credential_warning`` before it
  expires; once expired, the connection gets its "cannot reach" alert at once, saying how to renew it.
Nothing here calls Slack or renders: what happened is told to the ``Reporter`` (``bot.service.events``), whose
Slack side writes the messages to the store for the delivery loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.catalog.catalog import Catalog
from bot.catalog.model import Pipeline
from bot.ops.metrics import ALERT_MESSAGES, ALERTS, Metrics
from bot.service.alert_story import AlertStories, ConsoleUrl
from bot.service.clients import ClientPool
from bot.service.events import Reporter
from bot.service.paging import Pager
from bot.store import keys
from bot.store.alerting import Alert
from bot.store.records import RunOrigin, RunRecord
from bot.store.store import Store

__all__ = ["Alerter"]

log = logging.getLogger(__name__)
#: how long nobody heard of a failing connection (a poll's failure, an expired credential) before its absence from
#: this replica's catalog is taken for its removal: polls of a failing connection come at least every 5 minutes
#: (``Intervals.error_max``), so another replica still polling it (a rolling deploy, the other on the old catalog)
#: keeps it heard of. The least: the bot's own ``removed_quiet`` is three of its polls' longest wait after an error,
#: ``POLL_INTERVAL_MAX_SECONDS`` set to 30 minutes waits 30 between two polls of a failing connection
REMOVED_QUIET = timedelta(minutes=15)
#: how long a replica leaves what it cannot tell in full to one whose catalog can (``bot.service.outcomes``)
OTHERS_AFTER = timedelta(minutes=2)
Now = Callable[[], datetime]


class Alerter:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        pool: ClientPool,
        reporter: Reporter,
        now: Now,
        *,
        group_window: timedelta = timedelta(seconds=10),
        suppress: timedelta = timedelta(hours=1),
        down_after: timedelta = timedelta(minutes=2),
        credential_warning: timedelta = timedelta(minutes=10),
        failing_refresh: timedelta = timedelta(seconds=30),
        removed_quiet: timedelta = REMOVED_QUIET,
        metrics: Metrics | None = None,
        pager: Pager | None = None,
        console_url: ConsoleUrl | None = None,
    ) -> None:
        self.store = store
        self.pager = pager  # the on-call hand-off (catalog ``pagerduty``), when some pipeline has one
        self.stories = AlertStories(store, console_url)
        self.catalog = catalog
        self.pool = pool
        self.reporter = reporter
        self.now = now
        self.group_window = group_window
        self.suppress = suppress
        self.down_after = down_after
        self.credential_warning = credential_warning
        self.removed_quiet = removed_quiet
        self.metrics = metrics or Metrics()
        self._failing: set[str] = set()  # connections known to be failing: keeps a healthy poll free of writes
        # read again from the store every ``failing_refresh``: another replica may have seen the connection fail
        # (and posted its "cannot reach"), then died or stopped polling it; its "back" notice is this process's
        # to give, which a copy read once at start never knew of
        self.failing_refresh = failing_refresh.total_seconds()
        self._loaded_at: float | None = None
        self._loading = asyncio.Lock()  # the first tick's thousands of polls read the failing connections once

    # -- failures ---------------------------------------------------------------------------

    def channel_for(self, pipeline: Pipeline) -> str | None:
        return self.catalog.channel_for(pipeline)

    async def on_failure(self, run: RunRecord, *, card_channel: str | None) -> Alert | None:
        pipeline = self.catalog.pipelines.get(run.pipeline or "")
        if pipeline is None:
            return None  # ad-hoc runs: their card and its thread say it all
        # a watched run alerts where its watch says; any other where the catalog routes the pipeline
        routed = run.channel if run.origin == RunOrigin.WATCH and run.channel else self.channel_for(pipeline)
        channel = routed or card_channel
        if channel is None:
            log.warning("no channel for alerts of %s: set defaults.channel in the catalog", pipeline.name)
            return None
        now = self.now()
        muted = pipeline.name in await self.store.mutes.active(now=now)
        announced = keys.run_card(run.id) if card_channel is not None and _same_channel(card_channel, channel) else None
        message = run.message or run.raw_status
        alert, new = await self.store.alerting.record_failure(
            pipeline.name,
            channel=channel,
            run_id=run.id,
            message=message,
            muted=muted,
            announced_by=announced,
            suppress=self.suppress,
            now=now,
            # the PagerDuty trigger recorded with the failure: a stop between the two lost the page
            page=self.pager.trigger_event(pipeline.name, message, run) if self.pager is not None else None,
        )
        outcome = "muted" if alert.muted else ("new" if new else "repeat")
        self.metrics.inc(ALERTS, {"outcome": outcome})
        if self.pager is not None:
            # not only a new alert: a reopened one is a new incident, and a repeat (or this failure told again)
            # pages one whose trigger was never recorded; a repeat of a paged episode records nothing
            await self.pager.trigger(alert, run)
        if not new:
            await self.rerender(alert)
        return alert

    async def on_success(self, run: RunRecord) -> list[Alert]:
        """Resolve the alerts this run's success answers; a posted one is rewritten, a pending one is
        posted at its flush, resolved."""
        if not run.pipeline:
            return []
        paged = self.pager is not None and self.pager.pages(run.pipeline)  # the resolve recorded with the resolution
        recovered = await self.store.alerting.recover(run.pipeline, run.id, now=self.now(), paged=paged)
        if self.pager is not None:
            await self.pager.resolve(recovered)
        # and those this success resolved at an earlier telling: a stop (or the database away) between the
        # resolution and the rewrite left the message saying "failed", and this telling is recovery's replay
        # (the rewrite is drawn from the store: the same content again changes nothing)
        done = {a.id for a in recovered}
        earlier = [a for a in await self.store.alerting.resolved_by(run.pipeline, run.id) if a.id not in done]
        for alert in (*recovered, *earlier):
            await self.rerender(alert)
        return recovered

    async def flush(self) -> list[str]:
        """Announce pending alerts, one message per channel and burst (a few for a storm too large for one)."""
        due = await self.store.alerting.due(now=self.now(), window=self.group_window)
        if not due:
            return []  # one query a tick while nothing is due, as before stories were told
        held = self._left_to_others(due)
        if len(held) == len(due):
            return []
        written = await self.reporter.announce_alerts(
            window=self.group_window,
            owners=self._owners(),
            display_names=self._display_names(),
            stories=await self.stories.gather([a for a in due if a.id not in held]),
            held=held,
        )
        for _, size in written:
            self.metrics.inc(ALERT_MESSAGES, {"size": "single" if size == 1 else "grouped"})
        return [key for key, _ in written]

    async def rerender(self, alert: Alert) -> None:
        """Rewrite the message that announced an alert (a repeat, a recovery) instead of posting again."""
        key = alert.group_key
        if key is None or not keys.is_alert_group(key):
            return  # pending (its message is not written yet), or announced by the run's own card
        # taken before reading the group: of two rewrites at once (two pipelines of one message recovering in one
        # poll, two replicas), the one that read later is kept, never one drawn from a group read before the other
        ticket = await self.store.cards.draw_ticket_for(key)
        group = await self.store.alerting.group(key)
        stories = await self.stories.gather(group, runs_too=len(group) == 1)
        await self.reporter.alert_changed(
            key, alert, owners=self._owners(), display_names=self._display_names(), stories=stories, ticket=ticket
        )

    async def story_changed(self, alert_ids: Sequence[int]) -> None:
        """Something happened to these alerts (acknowledged, retried, muted) or to a message they link (a card
        posted, its permalink known): their messages are rewritten with it."""
        for alert_id in dict.fromkeys(alert_ids):
            alert = await self.store.alerting.get(alert_id)
            if alert is not None:
                await self.rerender(alert)

    async def run_changed(self, run_id: int) -> None:
        """The card of run ``run_id`` got its permalink: the alerts that name the run link it."""
        await self.story_changed(await self.store.alert_events.involving(run_id))

    def _left_to_others(self, due: Sequence[Alert]) -> set[int]:
        """A pending alert of a pipeline this catalog lacks was recorded by a replica whose catalog has it (a rolling
        deploy): that one announces it, naming its owners, which this one cannot. Left to it for
        ``OTHERS_AFTER``, then announced here all the same (that replica is gone), as the run's end is. Only those
        alerts: the others are announced now (two replicas each lacking a pipeline held each other's flush)."""
        if self.store.single_process:
            return set()
        now = self.now()
        return {
            a.id for a in due
            if a.pipeline and a.pipeline not in self.catalog.pipelines and now - a.first_at < OTHERS_AFTER
        }

    def _owners(self) -> dict[str, tuple[str, ...]]:
        return {p.name: p.owners for p in self.catalog.pipelines.values()}

    def _display_names(self) -> dict[str, str]:
        return {p.name: self._display(p.connection) for p in self.catalog.pipelines.values()}

    def _display(self, connection: str) -> str:
        try:
            return self.pool.client(connection).display_name
        except Exception:
            return connection

    # -- connection health ------------------------------------------------------------------

    async def connection_failed(self, connection: str, error: str, *, at_once: bool = False) -> None:
        """``at_once``: a failure that waiting will not cure (an expired credential) alerts without ``down_after``."""
        await self._load()
        now = self.now()
        health = await self.store.alerting.connection_failed(connection, error, now=now)
        self._failing.add(connection)
        if health.alert_id is not None or health.failing_since is None:
            return
        if not at_once and now - health.failing_since < self.down_after:
            return
        channel = self.catalog.defaults.channel or self._any_channel(connection)
        if channel is None:
            return
        alert = await self.store.alerting.claim_unreachable_alert(connection, channel=channel, message=error, now=now)
        if alert is not None:
            key = keys.health_message(connection, alert.id)
            await self.reporter.connection_down(key, alert, self._display(connection))

    async def connection_ok(self, connection: str) -> None:
        await self._load()
        if connection not in self._failing:
            return
        self._failing.discard(connection)  # before the write: the polls landing meanwhile write nothing
        now = self.now()
        try:
            before = await self.store.alerting.connection_ok(connection, now=now)
        except BaseException:  # the database away: still failing in the store, so still here, told back later
            self._failing.add(connection)
            raise
        if before is None or before.alert_id is None or before.alert_id < 0:
            return
        alert = await self.store.alerting.get(before.alert_id)  # closed with the health row, in its transaction
        if alert is None:
            return
        await self.reporter.connection_back(keys.health_message(connection, alert.id), alert, self._display(connection))

    async def health_untold(self, *, within: timedelta = timedelta(days=1)) -> int:
        """A connection's outage whose message was never written: the process stopped (or the database went away)
        between recording the change and writing its message. A "cannot reach" alert claimed and never drawn (its
        connection, still failing, never claims another: the outage unannounced), or closed without its "answers
        again" and "is back" notice. Told now (drawn from the store, the notice once: its key). Returns how many. Run
        at start and with recovery's periodic job.

        A connection failing that is no longer in the catalog (pipelines.yml changed, the bot restarted) is polled by
        nobody, so nothing would ever close its alert: it is closed here, its message saying it was removed."""
        await self._forget_removed()
        told = 0
        for alert in await self.store.alerting.unreachable(since=self.now() - within):
            if alert.connection is None:
                continue
            key = keys.health_message(alert.connection, alert.id)
            removed = alert.connection not in self.catalog.connections
            if alert.recovered_at is None:
                if not removed and not await self.store.cards.written(key):
                    await self.reporter.connection_down(key, alert, self._display(alert.connection))
                    told += 1
            elif await self.store.outbox.written_at(keys.back(key)) is None:
                await self.reporter.connection_back(key, alert, self._display(alert.connection), removed=removed)
                told += 1
        return told

    async def _forget_removed(self) -> None:
        """Connections failing in the store that the catalog no longer has: their health cleared and their alert
        closed (``connection_ok``'s transaction), so the loop above tells it, as removed. Only once nobody has heard of
        it for ``removed_quiet``: another replica may have it in its catalog still (a rolling deploy, the two
        pipelines.yml differ), polling it and seeing it fail; closed at each recovery round, its alert read "removed",
        then "cannot reach" again, for as long as the two ran side by side."""
        silent = self.now() - self.removed_quiet
        for health in await self.store.alerting.failing_connections():
            heard = health.updated_at is not None and health.updated_at > silent
            if health.connection not in self.catalog.connections and not heard:
                log.info("connection %s is no longer in the catalog: its outage is forgotten", health.connection)
                await self.store.alerting.connection_ok(health.connection, now=self.now())
                self._failing.discard(health.connection)

    async def check_credentials(self) -> None:
        """Credentials the bot cannot renew itself: one notice before they expire (fleet-wide: the outbox key is
        unique), then the connection's one "cannot reach" alert when they do, saying how to renew them."""
        now = self.now()
        for connection in self.catalog.connections:
            try:
                deadline = self.pool.client(connection).credential_deadline()
            except Exception:  # a client that cannot be built is reported by the polls that need it
                log.exception("credential check of connection %s failed", connection)
                continue
            if deadline is None:
                continue
            expires, how = deadline
            if now >= expires:
                said = f"its credential expired at {expires:%Y-%m-%d %H:%M} UTC. {how}"
                await self.connection_failed(connection, said, at_once=True)
            elif now >= expires - self.credential_warning:
                channel = self.catalog.defaults.channel or self._any_channel(connection)
                if channel is None:
                    continue
                await self.reporter.credential_expiring(
                    keys.credential(connection, expires),
                    channel=channel,
                    connection=connection,
                    display_name=self._display(connection),
                    expires=expires,
                    how=how,
                )

    async def _load(self) -> None:
        if not self._stale():
            return
        async with self._loading:
            if self._stale():
                self._failing = {h.connection for h in await self.store.alerting.failing_connections()}
                self._loaded_at = time.monotonic()

    def _stale(self) -> bool:
        return self._loaded_at is None or time.monotonic() - self._loaded_at >= self.failing_refresh

    def _any_channel(self, connection: str) -> str | None:
        for pipeline in self.catalog.pipelines.values():
            if pipeline.connection == connection and (channel := self.channel_for(pipeline)):
                return channel
        return None


def _same_channel(a: str, b: str) -> bool:
    return a.lstrip("#") == b.lstrip("#")
