"""What the slash command and the Home tab ask about runs, answered from the store and the providers: the runs in
flight, a pipeline's last runs, statistics over a period, the Home tab's facts and a person's pipelines (those
they own, watch or subscribed to). Read-only; rendering is the caller's."""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.catalog.catalog import Catalog
from bot.catalog.model import Pipeline
from bot.errors import ProviderError
from bot.models import RunStatus
from bot.providers.base import Capability
from bot.service.clients import ClientPool
from bot.service.history import Summary, summarize
from bot.service.permissions import Actor
from bot.service.rights import Rights
from bot.store.alert_events import EventKind
from bot.store.alerting import Alert
from bot.store.records import RunRecord, StoredState
from bot.store.store import Store
from bot.store.subscriptions import SubjectKind, Subscription

__all__ = ["HomeFacts", "PipelineRow", "RunQueries", "RunStats"]

DAY = timedelta(days=1)
TREND_RUNS = 10  # the Home row's trend: enough to see a pattern, short enough for one line

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunStats:
    """``counts`` per state: the provider's own when it keeps statistics (runs started anywhere), else the
    bot's; ``summary`` (failure rate, durations) always from the runs the bot recorded."""

    counts: dict[StoredState, int]
    summary: Summary


@dataclass(frozen=True, slots=True)
class HomeFacts:
    """What the Home tab shows: ``failures`` of the last day newest first (muted and acknowledged ones too),
    ``muted_runs`` the runs a muted alert stood for, ``acknowledged`` who acknowledged an open alert's run."""

    in_flight: list[RunRecord]
    alerts: list[Alert]
    mutes: dict[str, tuple[datetime, str | None]]
    failures: list[RunRecord]
    muted_runs: set[int]
    acknowledged: dict[int, str]
    recovered: dict[int, int]  # a failed run → the pipeline's first later run that succeeded


@dataclass(frozen=True, slots=True)
class PipelineRow:
    """One of a person's pipelines on their Home tab: ``why`` it is theirs (``owner``, ``watching``,
    ``subscribed``), its last runs (newest first, at most ``TREND_RUNS``), when its schedule fires next."""

    name: str
    why: str
    runs: list[RunRecord]
    next_run: datetime | None


class RunQueries:
    def __init__(self, store: Store, pool: ClientPool, now: Callable[[], datetime]) -> None:
        self.store = store
        self.pool = pool
        self.now = now

    async def in_flight(self) -> list[RunRecord]:
        return await self.store.runs.in_flight()

    async def last(self, pipeline: Pipeline, count: int) -> list[RunStatus]:
        """Newest first, at most ``count``: the provider's list when it keeps one (runs started anywhere),
        else, or when it does not answer, the runs the bot recorded."""
        name = pipeline.name
        client = self.pool.client(pipeline.connection)
        statuses: list[RunStatus] = []
        if client.can(Capability.LIST_RUNS):
            try:
                async with self.pool.slot(pipeline.connection):
                    statuses = await client.list_runs(pipeline.job, since=self.now() - timedelta(days=30), limit=count)
            except ProviderError as exc:
                log.warning("last runs of %s from the provider failed: %s", name, exc)
        if not statuses:  # the provider cannot list runs (InVision) or did not answer: the bot's own history
            statuses = [s for r in await self.store.runs.recent(name, count) if (s := r.as_status()) is not None]
        return statuses[:count]

    async def numbers(self, pipeline: Pipeline, statuses: Sequence[RunStatus]) -> dict[str, int]:
        """The bot's run number of each listed run it knows (started or watched by it): provider id → ``#n``."""
        found: dict[str, int] = {}
        for status in statuses:
            run = await self.store.runs.find(pipeline.connection, status.run_id)
            if run is not None:
                found[status.run_id] = run.id
        return found

    async def stats(self, pipeline: Pipeline | None, span: timedelta) -> RunStats:
        """The runs created in the last ``span``, of one pipeline or of all (``None``)."""
        now = self.now()
        name = pipeline.name if pipeline is not None else None
        summary = summarize(await self.store.runs.between(now - span, now, name))
        counts = dict(summary.counts)
        if pipeline is not None:
            client = self.pool.client(pipeline.connection)
            if client.can(Capability.STATS):  # the provider's own statistics count runs started anywhere
                try:
                    provider_stats = await client.stats(pipeline.job, start=now - span, end=now)
                    counts = {StoredState(state.value): n for state, n in provider_stats.counts.items()}
                except ProviderError as exc:
                    log.warning("provider statistics for %s failed: %s", name, exc)
        return RunStats(counts, summary)

    async def home(self, now: datetime) -> HomeFacts:
        store = self.store
        recent = await store.runs.between(now - DAY, now + timedelta(seconds=1))
        failures = [r for r in reversed(recent) if r.state is StoredState.FAILED]  # muted and acknowledged ones too
        alerts = await store.alerting.open_alerts()
        # a muted alert keeps the ids of the runs it stood for: their failures are marked muted
        lately = await store.alerting.alerts_between(now - 2 * DAY, now + timedelta(seconds=1))
        # and so are those of an alert muted after it failed (its Mute menu, ``mute``): marked once the mute ended
        # too, as a failure that came while muted is (they were marked only while their pipeline was muted)
        seen = {a.id: a for a in (*alerts, *lately)}
        events = await store.alert_events.of_alerts(list(seen))
        muted_later = {i for i, told in events.items() if any(e.kind is EventKind.MUTED for e in told)}
        muted_runs = {run_id for a in seen.values() if a.muted or a.id in muted_later for run_id in a.runs}
        runs = {r.id: r for r in recent}
        acknowledged: dict[int, str] = {}
        for alert in alerts:
            if alert.last_run_id is None:
                continue
            run = runs.get(alert.last_run_id) or await store.runs.get(alert.last_run_id)
            if run is not None and run.acknowledged_by:
                acknowledged[run.id] = run.acknowledged_by
        return HomeFacts(
            in_flight=await store.runs.in_flight(limit=1000),
            alerts=alerts,
            mutes=await store.mutes.active(now=now),
            failures=failures,
            muted_runs=muted_runs,
            acknowledged=acknowledged,
            recovered=_recovered(recent),
        )

    async def pipelines_of(self, actor: Actor, catalog: Catalog, rights: Rights, now: datetime) -> list[PipelineRow]:
        """The pipelines ``actor`` owns (named, or through a user group), watches (turned the watch on) or
        subscribed a channel to (a tag or a provider covers each of its pipelines); failing ones first."""
        why: dict[str, str] = {}
        for pipeline in catalog.pipelines.values():
            if await rights.owns(actor, pipeline):
                why[pipeline.name] = "owner"
        for name, watch in (await self.store.alerting.watches()).items():
            if watch.enabled and watch.updated_by == actor.user_id and name in catalog.pipelines:
                why.setdefault(name, "watching")
        for subscription in await self.store.subscriptions.listed(user_id=actor.user_id):
            for pipeline in catalog.pipelines.values():
                if _covers(subscription, pipeline):
                    why.setdefault(pipeline.name, "subscribed")
        recent = await self.store.runs.recent_of(why, TREND_RUNS)  # one read for all the rows
        rows: list[PipelineRow] = []
        for name, reason in why.items():
            schedule = catalog.pipelines[name].schedule
            fire: datetime | None = schedule.trigger().get_next_fire_time(None, now) if schedule else None
            rows.append(PipelineRow(name, reason, recent[name], fire))
        return sorted(rows, key=lambda r: (not (r.runs and r.runs[0].state is StoredState.FAILED), r.name))


def _covers(subscription: Subscription, pipeline: Pipeline) -> bool:
    if subscription.kind is SubjectKind.PIPELINE:
        return subscription.target == pipeline.name
    if subscription.kind is SubjectKind.TAG:
        return subscription.target in pipeline.tags
    if subscription.kind is SubjectKind.PROVIDER:
        return subscription.target == pipeline.provider
    return False


def _recovered(runs: Sequence[RunRecord]) -> dict[int, int]:
    """Each failed run of ``runs`` (oldest first) whose pipeline later succeeded → the first such success."""
    successes: dict[str, list[int]] = defaultdict(list)
    for run in runs:
        if run.pipeline is not None and run.state is StoredState.SUCCEEDED:
            successes[run.pipeline].append(run.id)
    found: dict[int, int] = {}
    for run in runs:
        if run.pipeline is None or run.state is not StoredState.FAILED:
            continue
        later = successes.get(run.pipeline, [])
        at = bisect.bisect_right(later, run.id)
        if at < len(later):
            found[run.id] = later[at]
    return found
