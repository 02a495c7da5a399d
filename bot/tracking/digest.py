"""The daily digest: per channel, the runs of one local day, their failures and the slowest of them.

A run belongs to the day it was created on, in the digest's time zone (local midnight to the next; a day
of 23 or 25 hours at a DST change), and to the channel its alerts go to: the pipeline's (own, routing
rule, default), else, for an ad-hoc run, the channel it was started from. Only runs the provider really
started count (a refused trigger is not a run), as in ``bot.service.history``.

Posting is idempotent: one outbox message per channel and day (``digest:<channel>:<YYYY-MM-DD>``), so a
restart or a second replica never posts a digest twice; the scheduled job also claims the day in the
database, so only one replica does the work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.catalog.catalog import Catalog
from bot.config import Settings
from bot.service.events import TREND_RUNS, DigestData, DigestRun, PipelineDay, Reporter
from bot.service.history import summarize, trend
from bot.store import keys
from bot.store.records import RunRecord, StoredState
from bot.store.store import Store

__all__ = [
    "DigestData",
    "build_digests",
    "day_bounds",
    "digest_channel",
    "digest_day",
    "digest_job",
    "post_digests",
    "schedule_digest",
]

log = logging.getLogger(__name__)

Now = Callable[[], datetime]
SLOWEST = 5
JOB_ID = "digest"


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Local midnight of ``day`` and of the next day, in UTC."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def digest_channel(run: RunRecord, catalog: Catalog) -> str | None:
    """Where a run is reported: its pipeline's alert channel, else the run's own channel, else the default."""
    pipeline = catalog.pipelines.get(run.pipeline or "")
    routed = catalog.channel_for(pipeline) if pipeline is not None else None
    return routed or run.channel or catalog.defaults.channel


async def digest_day(store: Store, catalog: Catalog, day: date, tz: ZoneInfo) -> dict[str, DigestData]:
    """Per channel, what happened on ``day`` (local to ``tz``); channels without runs are left out."""
    start, end = day_bounds(day, tz)
    runs = await store.runs.between(start, end)
    # a muted alert keeps the ids of the runs it stood for; one opened the day before may cover this day too
    alerts = [*await store.alerting.alerts_between(start - timedelta(days=1), end), *await store.alerting.open_alerts()]
    muted = {run_id for alert in alerts if alert.muted for run_id in alert.runs}
    return build_digests(runs, catalog, day, tz, muted_runs=muted)


def build_digests(
    runs: Iterable[RunRecord], catalog: Catalog, day: date, tz: ZoneInfo, *, muted_runs: Iterable[int] = ()
) -> dict[str, DigestData]:
    """The pure part of ``digest_day``: ``runs`` (those of the day) grouped by channel and summed up."""
    muted = frozenset(muted_runs)
    by_channel: dict[str, list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: (r.created_at, r.id)):
        channel = digest_channel(run, catalog)
        if channel is None or run.provider_run_id is None:
            continue
        by_channel.setdefault(channel, []).append(run)
    return {channel: _digest(channel, day, tz, found, muted) for channel, found in sorted(by_channel.items())}


def _digest(channel: str, day: date, tz: ZoneInfo, runs: Sequence[RunRecord], muted: frozenset[int]) -> DigestData:
    summary = summarize(runs)
    by_pipeline: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_pipeline.setdefault(run.name, []).append(run)
    pipelines = sorted(
        (_pipeline_day(name, found) for name, found in by_pipeline.items()), key=lambda p: (-p.failed, p.name)
    )
    failures = tuple(
        DigestRun(
            run_id=r.id,
            name=r.name,
            at=r.ended_at or r.updated_at,
            duration=r.duration(r.updated_at),
            message=r.message or r.raw_status,
            muted=r.id in muted,
        )
        for r in runs
        if r.state is StoredState.FAILED
    )
    timed = [(d, r) for r in runs if r.final and r.state is StoredState.SUCCEEDED and (d := r.duration(r.updated_at))]
    timed.sort(key=lambda dr: (-dr[0].total_seconds(), dr[1].id))
    slowest = tuple(
        DigestRun(run_id=r.id, name=r.name, at=r.started_at or r.created_at, duration=d) for d, r in timed[:SLOWEST]
    )
    return DigestData(
        channel=channel,
        day=day,
        timezone=tz.key,
        runs=len(runs),
        counts=dict(summary.counts),
        failure_rate=summary.failure_rate,
        p50=summary.p50,
        p95=summary.p95,
        pipelines=tuple(pipelines),
        failures=failures,
        slowest=slowest,
    )


def _pipeline_day(name: str, runs: Sequence[RunRecord]) -> PipelineDay:
    statuses = [s for r in reversed(runs) if (s := r.as_status()) is not None]  # newest first, as trend wants
    line = trend(statuses[:TREND_RUNS])
    if len(statuses) > TREND_RUNS:
        line = "…" + line
    return PipelineDay(
        name=name,
        runs=len(runs),
        succeeded=sum(r.state is StoredState.SUCCEEDED for r in runs),
        failed=sum(r.state is StoredState.FAILED for r in runs),
        trend=line,
    )


async def post_digests(store: Store, catalog: Catalog, reporter: Reporter, day: date, tz: ZoneInfo) -> int:
    """Tell one digest per channel that had runs on ``day``. Returns how many were new: a second call
    for the same day (a restart, another replica) posts nothing."""
    posted = 0
    for channel, data in (await digest_day(store, catalog, day, tz)).items():
        posted += await reporter.digest(keys.digest(channel, day), data)
    return posted


def digest_job(
    store: Store, catalog: Catalog, reporter: Reporter, settings: Settings, *, owner: str, now: Now
) -> Callable[[], Awaitable[int]]:
    """The scheduled job: yesterday's digests (in DIGEST_TIMEZONE), by one replica of the fleet per day."""
    tz = ZoneInfo(settings.digest_timezone)

    async def post_yesterday() -> int:
        current = now()
        day = current.astimezone(tz).date() - timedelta(days=1)
        if not await store.slots.claim(JOB_ID, day.isoformat(), owner, now=current):
            return 0  # another replica (or an earlier run of this one) has this day
        posted = await post_digests(store, catalog, reporter, day, tz)
        log.info("daily digest for %s: %d message(s) queued", day.isoformat(), posted)
        return posted

    return post_yesterday


def schedule_digest(scheduler: BaseScheduler, settings: Settings, post: Callable[[], Awaitable[object]]) -> Job | None:
    """Run ``post`` every day at DIGEST_TIME in DIGEST_TIMEZONE; nothing when no DIGEST_TIME is set."""
    if not settings.digest_time:
        return None
    hour, minute = (int(part) for part in settings.digest_time.split(":"))
    trigger = CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(settings.digest_timezone))
    return scheduler.add_job(
        post,
        trigger,
        id=JOB_ID,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
