"""Passive watch: runs started outside Slack (schedules, provider consoles) are found through each
provider's list endpoint and tracked like any other run; their failures alert.

One list call per watched pipeline per cycle covers all its runs: runs it lists are updated from the
list and their individual poll is pushed back. Where the tracker's batched call of the same scope answered within
half a watch interval and holds the whole list (Tailer's ``get_last_status``: ``ProviderClient.listed``), the
watch reads it instead of a call of its own; it then only records new runs, whose own polls follow them (the shared
answer may be older than a run's last poll), and runs recorded under the connection's old name, which no poll
reaches. Each external run is recorded once (the store's unique
connection + provider run id), so it is reported once, across restarts and replicas. Runs that ended
before watching began are history, not news: the ones the first list (of this process) shows ended, by the
provider's word, before watching began, or with no time at all. Any run first seen in a later list is news,
whatever times it gives: a provider's clock behind ours, or a run that failed before it started (no times),
cannot hide a failure.

A cycle waits ``tick_wait`` seconds at most for its list calls: a slow provider's calls go on as tasks of their own,
and that pipeline is left out of the cycles that come while its list is still under way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.catalog.catalog import Catalog
from bot.catalog.model import Pipeline
from bot.errors import ProviderError
from bot.models import RunState, RunStatus
from bot.ops.logs import run_context
from bot.ops.metrics import EXTERNAL_RUNS, Metrics
from bot.providers.base import Capability
from bot.service.clients import ClientPool
from bot.service.notify import WATCH_LIMIT, WATCH_LISTS
from bot.store.alerting import Watch
from bot.store.records import NewRun, RunOrigin, Transition
from bot.store.store import AlreadyTracked, Store

__all__ = ["Watcher", "watched_pipelines"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]


def watched_pipelines(catalog: Catalog, overrides: dict[str, Watch]) -> list[Pipeline]:
    """The catalog's `watch:` flags, as switched on or off from Slack."""
    found = []
    for pipeline in catalog.pipelines.values():
        override = overrides.get(pipeline.name)
        if override.enabled if override is not None else pipeline.watch:
            found.append(pipeline)
    return found


class Watcher:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        pool: ClientPool,
        *,
        now: Now,
        on_change: Callable[[Transition], Awaitable[None]],
        interval: timedelta = timedelta(seconds=60),
        lookback: timedelta = WATCH_LISTS,  # Stop following reads these (``Notifier.watch_follows``)
        limit: int = WATCH_LIMIT,
        metrics: Metrics | None = None,
        tick_wait: float = 1.0,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.pool = pool
        self.now = now
        self.on_change = on_change
        self.interval = interval
        self.lookback = lookback
        self.limit = limit
        #: how old a batched answer of the tracker (``ProviderClient.listed``) may be to stand in for a list call:
        #: an external run is found at most this much later than by a call of the watch's own
        self.shared_age = interval / 2
        self.found = 0
        self.metrics = metrics or Metrics()
        # per pipeline: the watch (its ``since``) whose first list this process took, and the ended runs that
        # list showed as history (bounded by the list's limit)
        self._history: dict[str, tuple[datetime, frozenset[str]]] = {}
        #: the history runs looked up under the connection's other names already (once each: ``_one``)
        self._history_looked: dict[str, set[str]] = {}
        self.tick_wait = tick_wait
        #: list calls under way, by pipeline, some started by earlier cycles
        self._listing: dict[str, asyncio.Task[int]] = {}

    async def cycle(self) -> int:
        """List every watched pipeline's recent runs once; returns how many new external runs were found by the
        lists that ended within ``tick_wait`` (the slower ones count theirs in ``found`` when they end)."""
        overrides = await self.store.alerting.watches()
        pipelines = [
            p for p in watched_pipelines(self.catalog, overrides) if p.name not in self._listing and self._can_list(p)
        ]
        started = [self._start(p, overrides.get(p.name)) for p in pipelines]
        if not started:
            return 0
        done, _ = await asyncio.wait(started, timeout=self.tick_wait)
        return sum(t.result() for t in done if not t.cancelled() and t.exception() is None)

    async def idle(self) -> None:
        """Return when no list call is under way (at shutdown). Cancelled, it leaves them be (see ``Poller.idle``)."""
        if self._listing:
            await asyncio.wait(list(self._listing.values()))

    def _start(self, pipeline: Pipeline, watch: Watch | None) -> asyncio.Task[int]:
        task = asyncio.create_task(self._pipeline(pipeline, watch), name=f"watch {pipeline.name}")
        self._listing[pipeline.name] = task
        task.add_done_callback(lambda done: self._finished(pipeline.name, done))
        return task

    def _finished(self, name: str, task: asyncio.Task[int]) -> None:
        if self._listing.get(name) is task:
            del self._listing[name]
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("watch of %s failed", name, exc_info=exc, extra={"pipeline": name})

    def _can_list(self, pipeline: Pipeline) -> bool:
        try:
            return self.pool.client(pipeline.connection).can(Capability.LIST_RUNS)
        except Exception:
            return False

    async def _pipeline(self, pipeline: Pipeline, watch: Watch | None) -> int:
        with run_context(pipeline=pipeline.name, provider=pipeline.provider, connection=pipeline.connection):
            return await self._list(pipeline, watch)

    async def _list(self, pipeline: Pipeline, watch: Watch | None) -> int:
        now = self.now()
        if watch is None:  # watched by the catalog and seen for the first time: watching begins now
            watch = await self.store.alerting.start_watching(pipeline.name, now=now)
        client = self.pool.client(pipeline.connection)
        since = now - self.lookback
        shared = client.listed(pipeline.job, since=since, limit=self.limit, max_age=self.shared_age.total_seconds())
        try:
            if shared is None:
                async with self.pool.slot(pipeline.connection):
                    statuses = await client.list_runs(pipeline.job, since=since, limit=self.limit)
            else:
                statuses = shared
        except ProviderError as exc:
            log.warning("watch of %s: cannot list runs: %s", pipeline.name, exc, extra={"pipeline": pipeline.name})
            return 0
        history = self._history_of(pipeline, watch, statuses)
        found = 0
        for status in statuses:
            found += await self._one(pipeline, watch, status, history, shared=shared is not None)
        return found

    def _history_of(self, pipeline: Pipeline, watch: Watch, statuses: list[RunStatus]) -> frozenset[str]:
        """The runs that are history, not news: those ended before watching began in the first list after it
        began (first of this process: the rule only reads the list and ``since``, so a restart or another
        replica decides the same). A run with no time is history there, since nothing says it is new."""
        remembered = self._history.get(pipeline.name)
        if remembered is None or remembered[0] != watch.since:
            ended = {s.run_id: s.ended_at or s.started_at for s in statuses if s.final}
            old = frozenset(r for r, when in ended.items() if when is None or when < watch.since)
            remembered = self._history[pipeline.name] = (watch.since, old)
            self._history_looked[pipeline.name] = set()
        return remembered[1]

    async def _one(
        self, pipeline: Pipeline, watch: Watch, status: RunStatus, history: frozenset[str], *, shared: bool = False
    ) -> int:
        now = self.now()  # when this run is seen: the list may have taken a while (never the cycle's start)
        existing = await self.store.runs.find(pipeline.connection, status.run_id)
        if existing is None and "/" in status.run_id:  # DataKitchen lists "<order>/<run>"; a trigger knows "<order>"
            existing = await self.store.runs.find(pipeline.connection, status.run_id.split("/", 1)[0])
        if existing is None and (not (status.final and status.run_id in history) or self._first_look(pipeline, status)):
            # recorded under the connection's old name (the catalog renamed it, the pipeline followed): the same
            # provider run, not news; followed from the list below, as its own polls cannot reach it. It was
            # recorded again: its failure counted twice in its alert ("failed 2 times"), its run tracked twice.
            # A run ended before watching began too (once: history stays in the list for a day), for the bot's own
            # row of it never heard that end (its pipeline watched since): its failure was told to nobody
            ids = {status.run_id, status.run_id.split("/", 1)[0]}
            existing = await self.store.runs.find_moved(pipeline.name, pipeline.provider, ids,
                                                        besides=pipeline.connection)
        next_poll = now + self.interval + self.interval / 2  # the next cycle will see it: no separate poll
        if existing is not None:
            # a shared answer may be older than the run's last poll: it finds new runs, their own polls follow them;
            # but a run recorded under the connection's old name has no polls that reach it: the list is all it has
            moved = existing.connection != pipeline.connection
            if (moved or not shared) and not existing.final and existing.provider_run_id == status.run_id:
                status = await self._detailed(pipeline, status)
                # a run started from Slack (or a retry, a schedule) keeps its own polls: its card follows it at
                # the poll interval, not at the watch's
                own = (existing.next_poll_at or now) if existing.origin != RunOrigin.WATCH else next_poll
                change = await self.store.runs.record_status(existing.id, status, now=now, next_poll_at=own)
                if change is not None:
                    await self.on_change(change)
            return 0
        if status.final and status.run_id in history:
            return 0  # it ended before watching began: history, not news
        channel = watch.channel or self.catalog.channel_for(pipeline)
        try:
            run = await self.store.runs.create(
                NewRun(
                    provider=pipeline.provider,
                    connection=pipeline.connection,
                    job=pipeline.job.model_dump(),
                    parameters={},
                    origin=RunOrigin.WATCH,
                    pipeline=pipeline.name,
                    channel=channel,
                    provider_run_id=status.run_id,
                ),
                now=now,
                next_poll_at=next_poll,
            )
        except AlreadyTracked:  # another replica's cycle recorded it a moment ago
            return 0
        self.found += 1
        self.metrics.inc(EXTERNAL_RUNS, {"pipeline": pipeline.name})
        log.info(
            "found %s run %s started outside Slack",
            pipeline.name,
            status.run_id,
            extra={"run_id": run.id, "pipeline": pipeline.name},
        )
        change = await self.store.runs.record_status(run.id, await self._detailed(pipeline, status), now=now,
                                                next_poll_at=next_poll)
        if change is not None:
            await self.on_change(change)
        return 1

    def _first_look(self, pipeline: Pipeline, status: RunStatus) -> bool:
        """Whether this history run is looked up under the connection's other names now: the first time only."""
        looked = self._history_looked.setdefault(pipeline.name, set())
        if status.run_id in looked:
            return False
        looked.add(status.run_id)
        return True

    async def _detailed(self, pipeline: Pipeline, status: RunStatus) -> RunStatus:
        """A failure as a list shows it can be terse (DataKitchen lists a status, not the failing node's log):
        the alert deserves what the run's own status says. One more call per failure; the list's word if the
        provider does not answer it."""
        if status.state is not RunState.FAILED:
            return status
        try:
            async with self.pool.slot(pipeline.connection):
                detailed = await self.pool.client(pipeline.connection).get_status(pipeline.job, status.run_id)
        except ProviderError as exc:
            log.warning("watch of %s: no details for failed run %s: %s", pipeline.name, status.run_id, exc)
            return status
        return detailed if detailed.final else status
