"""The daily digest on a real store (SQLite and PostgreSQL): the runs of one local day per channel, the figures
right, posted once per channel and day whatever restarts or replicas do, and scheduled at the configured time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.catalog.catalog import Catalog
from bot.catalog.model import Defaults, Pipeline
from bot.config import Settings
from bot.models import RunState, RunStatus
from bot.providers.base import JobConfig
from bot.service.history import percentile
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store
from bot.tracking.digest import DigestData, day_bounds, digest_day, digest_job, post_digests, schedule_digest

UTC_ZONE = ZoneInfo("UTC")
OSLO = ZoneInfo("Europe/Oslo")
DAY1 = date(2026, 11, 21)
DAY2 = date(2026, 11, 22)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def pipeline(name: str, channel: str | None = None) -> Pipeline:
    return Pipeline(name=name, provider="rivery", connection="rivery-main", job=JobConfig(), channel=channel)


CATALOG = Catalog(
    connections={},
    pipelines={"leads-ods": pipeline("leads-ods", "C0DATA"), "orders": pipeline("orders")},
    defaults=Defaults(channel="C0ALERTS"),
)


@dataclass
class Runs:
    store: Store
    count: int = 0

    async def add(
        self,
        created: datetime,
        outcome: RunState | None,
        *,
        pipeline: str | None = "leads-ods",
        took: timedelta = timedelta(minutes=5),
        message: str = "",
        channel: str | None = "C0GENERAL",
    ) -> RunRecord:
        """A run created at ``created``, triggered a second later, running, then ending with ``outcome``
        after ``took`` (None: still running)."""
        self.count += 1
        new = NewRun(provider="rivery", connection="rivery-main", job={"river_id": f"r{self.count}"}, parameters={},
                     origin=RunOrigin.SLACK, pipeline=pipeline, started_by="U0ALICE", channel=channel)
        run = await self.store.runs.create(new, now=created, next_poll_at=None)
        provider_id = f"p-{self.count}"
        started = created + timedelta(seconds=1)
        await self.store.starts.record_triggered(run.id, provider_id, now=started, next_poll_at=started)
        change = await self.store.runs.record_status(run.id, RunStatus(provider_id, RunState.RUNNING, "R"), now=started,
                                                next_poll_at=started)
        assert change is not None
        if outcome is not None:
            status = RunStatus(provider_id, outcome, outcome.value[:1].upper(), message=message)
            change = await self.store.runs.record_status(run.id, status, now=started + took, next_poll_at=None)
            assert change is not None
        found = await self.store.runs.get(run.id)
        assert found is not None
        return found


async def two_days(store: Store) -> dict[str, RunRecord]:
    runs = Runs(store)
    made = {
        # the day before: a slow run that must not show as the next day's slowest
        "old-slow": await runs.add(at(DAY1, 8), RunState.SUCCEEDED, took=timedelta(hours=3)),
        "old-fail": await runs.add(at(DAY1, 9), RunState.FAILED, pipeline="orders", message="yesterday's failure"),
        # the day itself
        "ok-10m": await runs.add(at(DAY2, 0, 0), RunState.SUCCEEDED, took=timedelta(minutes=10)),
        "fail": await runs.add(at(DAY2, 6), RunState.FAILED, message="bad <!channel> column", took=timedelta(minutes=2)),
        "ok-30m": await runs.add(at(DAY2, 12), RunState.SUCCEEDED, took=timedelta(minutes=30)),
        "running": await runs.add(at(DAY2, 23, 50), None),
        "orders": await runs.add(at(DAY2, 7), RunState.FAILED, pipeline="orders", message="Table missing"),
        "adhoc": await runs.add(at(DAY2, 8), RunState.SUCCEEDED, pipeline=None, channel="C0ADHOC",
                                took=timedelta(minutes=1)),
        # the next day, by a minute
        "next": await runs.add(at(DAY2 + timedelta(days=1), 0, 0), RunState.FAILED),
    }
    # a trigger the provider refused: not a run, not in the digest
    refused = await store.runs.create(
        NewRun(provider="rivery", connection="rivery-main", job={"river_id": "x"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="leads-ods", channel="C0GENERAL"), now=at(DAY2, 9), next_poll_at=None)
    ended = await store.runs.finish(refused.id, RunState.UNKNOWN, "not started: 401", now=at(DAY2, 9))
    assert ended is not None
    made["refused"] = ended
    return made


async def test_the_digest_of_a_day_lists_exactly_that_days_runs_per_channel(store: Store) -> None:
    runs = await two_days(store)
    digests = await digest_day(store, CATALOG, DAY2, UTC_ZONE)
    assert set(digests) == {"C0DATA", "C0ALERTS", "C0ADHOC"}  # pipeline's channel, the default, the ad-hoc run's own

    data = digests["C0DATA"]
    assert data.runs == 4
    assert dict(data.counts) == {"succeeded": 2, "failed": 1, "running": 1}
    assert data.failure_rate == pytest.approx(1 / 3)
    [leads] = data.pipelines
    assert (leads.name, leads.runs, leads.succeeded, leads.failed) == ("leads-ods", 4, 2, 1)
    assert leads.trend == "✅❌✅▶️"  # oldest → newest
    assert [f.run_id for f in data.failures] == [runs["fail"].id]
    assert data.failures[0].message == "bad <!channel> column"  # kept raw here; the message builder escapes it
    assert [(s.run_id, s.duration) for s in data.slowest] == [
        (runs["ok-30m"].id, timedelta(minutes=30)), (runs["ok-10m"].id, timedelta(minutes=10))]
    durations = [timedelta(minutes=10), timedelta(minutes=30)]  # the successful ones: as ``history`` reckons
    assert (data.p50, data.p95) == (percentile(durations, 50), percentile(durations, 95)) != (None, None)

    alerts = digests["C0ALERTS"]
    assert alerts.runs == 1 and alerts.failure_rate == 1.0 and alerts.slowest == ()
    assert [f.run_id for f in alerts.failures] == [runs["orders"].id]
    adhoc = digests["C0ADHOC"]
    assert [p.name for p in adhoc.pipelines] == ["rivery:r8"] and adhoc.failure_rate == 0.0

    everything = {f.run_id for d in digests.values() for f in (*d.failures, *d.slowest)}
    assert runs["old-slow"].id not in everything and runs["next"].id not in everything

    before = await digest_day(store, CATALOG, DAY1, UTC_ZONE)
    assert set(before) == {"C0DATA", "C0ALERTS"}
    assert before["C0DATA"].runs == 1 and before["C0DATA"].slowest[0].run_id == runs["old-slow"].id
    assert [f.run_id for f in before["C0ALERTS"].failures] == [runs["old-fail"].id]
    assert await digest_day(store, CATALOG, date(2026, 11, 10), UTC_ZONE) == {}


async def test_posting_twice_enqueues_once_per_channel(store: Store) -> None:
    await two_days(store)
    now = at(DAY2 + timedelta(days=1), 9)
    reporter = SlackReporter(store, lambda: now)
    assert await post_digests(store, CATALOG, reporter, DAY2, UTC_ZONE) == 3
    assert await post_digests(store, CATALOG, reporter, DAY2, UTC_ZONE) == 0  # a restart, another replica
    assert await post_digests(store, CATALOG, reporter, date(2026, 11, 10), UTC_ZONE) == 0  # no runs, no message
    items = await store.outbox.claim("me", now=now, limit=100, lease=timedelta(days=30))
    assert sorted((i.key, i.channel, i.kind) for i in items) == [
        ("digest:C0ADHOC:2026-11-22", "C0ADHOC", "post"),
        ("digest:C0ALERTS:2026-11-22", "C0ALERTS", "post"),
        ("digest:C0DATA:2026-11-22", "C0DATA", "post"),
    ]
    data = next(i for i in items if i.channel == "C0DATA")
    assert data.text == "Daily digest for 2026-11-22: 4 runs, 1 failed (failure rate 33%)"
    body = json.dumps(data.blocks, ensure_ascii=False)
    assert "*leads-ods* · 4 runs · ❌ 1 failed · ✅❌✅▶️" in body
    assert "bad &lt;!channel&gt; column" in body and "<!channel>" not in body
    assert "Failure rate *33%* (1 of 3 finished)" in body


async def test_a_run_late_in_the_utc_evening_belongs_to_the_next_day_in_oslo(store: Store) -> None:
    runs = Runs(store)
    late = await runs.add(datetime(2026, 11, 21, 23, 30, tzinfo=UTC), RunState.SUCCEEDED)  # 00:30 in Oslo
    early = await runs.add(datetime(2026, 11, 21, 22, 59, tzinfo=UTC), RunState.FAILED)  # 23:59 in Oslo

    def ids(digests: dict[str, DigestData]) -> set[int]:
        found: set[int] = set()
        for data in digests.values():
            found |= {r.run_id for r in (*data.failures, *data.slowest)}
        return found

    assert ids(await digest_day(store, CATALOG, DAY2, OSLO)) == {late.id}
    assert ids(await digest_day(store, CATALOG, DAY1, OSLO)) == {early.id}
    assert ids(await digest_day(store, CATALOG, DAY1, UTC_ZONE)) == {late.id, early.id}


def test_a_local_day_spans_its_real_length_across_dst_changes() -> None:
    start, end = day_bounds(date(2026, 3, 29), OSLO)  # clocks go forward: 23 hours
    assert (start, end - start) == (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), timedelta(hours=23))
    start, end = day_bounds(date(2026, 10, 25), OSLO)  # back: 25 hours
    assert (start, end - start) == (datetime(2026, 10, 24, 22, 0, tzinfo=UTC), timedelta(hours=25))
    assert day_bounds(DAY2, OSLO) == (datetime(2026, 11, 21, 23, 0, tzinfo=UTC), datetime(2026, 11, 22, 23, 0,
                                                                                        tzinfo=UTC))


async def test_a_muted_failure_is_listed_in_the_digest_and_marked(store: Store) -> None:
    runs = await two_days(store)
    await store.alerting.record_failure("orders", channel="C0ALERTS", run_id=runs["orders"].id, message="Table missing",
                                        muted=True, announced_by=None, suppress=timedelta(hours=1), now=at(DAY2, 7, 6))
    digests = await digest_day(store, CATALOG, DAY2, UTC_ZONE)
    [failure] = digests["C0ALERTS"].failures
    assert failure.run_id == runs["orders"].id and failure.muted
    assert not digests["C0DATA"].failures[0].muted


async def test_the_job_posts_yesterdays_digest_once_across_replicas(store: Store) -> None:
    made = await two_days(store)
    settings = Settings(_env_file=None, digest_time="09:00", digest_timezone="Europe/Oslo")
    clock = [datetime(2026, 11, 23, 8, 0, tzinfo=UTC)]  # 09:00 in Oslo: the digest of the 22nd
    reporter = SlackReporter(store, lambda: clock[0])
    first = digest_job(store, CATALOG, reporter, settings, owner="replica-a", now=lambda: clock[0])
    second = digest_job(store, CATALOG, reporter, settings, owner="replica-b", now=lambda: clock[0])
    assert await first() == 3
    assert await second() == 0 and await first() == 0
    items = await store.outbox.claim("me", now=clock[0], limit=100, lease=timedelta(days=30))
    assert {i.key for i in items} == {"digest:C0DATA:2026-11-22", "digest:C0ALERTS:2026-11-22",
                                      "digest:C0ADHOC:2026-11-22"}
    # the run at 00:00 UTC on the 23rd is 01:00 in Oslo: the 23rd's digest, posted the next morning
    clock[0] += timedelta(days=1)
    assert await second() == 1
    [item] = await store.outbox.claim("me", now=clock[0], limit=100, lease=timedelta(days=30))
    assert item.key == "digest:C0DATA:2026-11-23" and f"#{made['next'].id}" in json.dumps(item.blocks)


async def test_the_digest_is_scheduled_daily_at_the_configured_local_time() -> None:
    scheduler = AsyncIOScheduler(timezone=UTC)

    async def post() -> None:
        return None

    settings = Settings(_env_file=None, digest_time="09:30", digest_timezone="Europe/Oslo")
    job = schedule_digest(scheduler, settings, post)
    assert job is not None and job.id == "digest"
    assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 3600)
    fire = job.trigger.get_next_fire_time(None, datetime(2026, 11, 22, 7, 0, tzinfo=UTC))
    assert fire == datetime(2026, 11, 22, 8, 30, tzinfo=UTC)  # 09:30 in Oslo (UTC+1 in November)
    summer = job.trigger.get_next_fire_time(None, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert summer == datetime(2026, 7, 2, 7, 30, tzinfo=UTC)  # UTC+2 in July
    scheduler.start(paused=True)
    try:
        again = schedule_digest(scheduler, settings, post)
        assert again is not None and again.id == "digest"  # replace_existing: still one job
        assert [j.id for j in scheduler.get_jobs()] == ["digest"]
    finally:
        scheduler.shutdown(wait=False)

    off = Settings(_env_file=None, digest_time="", digest_timezone="UTC")
    assert schedule_digest(AsyncIOScheduler(timezone=UTC), off, post) is None
