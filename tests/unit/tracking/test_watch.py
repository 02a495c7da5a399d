"""Passive watch: what a list of runs makes news (a failure to announce) and what history, and when a run it
finds is taken to have been seen. The provider is a stand-in answering ``list_runs``; the rest is real."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from bot.catalog.load import parse_catalog
from bot.models import RunState, RunStatus
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.service.outcomes import Outcomes
from bot.service.permissions import Authorizer
from bot.service.retries import Retrier
from bot.service.runs import RunService
from bot.service.workflows import WorkflowEngine
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store
from bot.tracking.watch import Watcher

CATALOG = """
defaults: {channel: C0ALERTS, owners: [U0BOB]}
connections:
  rv: {provider: rivery, api: v1, base_url: "http://127.0.0.1:1", account_id: a, environment_id: e, api_token: "${TOKEN}"}
pipelines:
  loads: {connection: rv, river_id: r1, watch: true}
"""


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class Lister:
    """The provider as the watch sees it: each list call answers ``runs`` (after ``during``, if set)."""

    display_name = "Rivery"

    def __init__(self) -> None:
        self.runs: list[RunStatus] = []
        self.during: Callable[[], Awaitable[None]] | None = None

    def can(self, capability: Any) -> bool:
        return True

    async def list_runs(self, job: Any, *, since: datetime, limit: int) -> list[RunStatus]:
        if self.during is not None:
            await self.during()
        return list(self.runs)

    async def get_status(self, job: Any, run_id: str) -> RunStatus:
        return next(r for r in self.runs if r.run_id == run_id)

    def listed(self, job: Any, *, since: datetime, limit: int, max_age: float) -> list[RunStatus] | None:
        return None  # no batched answer to share: every cycle lists


class Pool:
    def __init__(self, real: ClientPool, lister: Lister) -> None:
        self.real, self.lister = real, lister

    def client(self, connection: str) -> Lister:
        return self.lister

    def slot(self, connection: str) -> asyncio.Semaphore:
        return self.real.slot(connection)


async def nobody(group: str) -> frozenset[str]:
    return frozenset()


class Setup:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = Clock()
        self.catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "t0ken-value"})
        self.pool = ClientPool.for_catalog(self.catalog)
        reporter = SlackReporter(store, self.clock)
        self.notifier = Notifier(store, self.catalog, self.pool, reporter, self.clock)
        alerter = Alerter(store, self.catalog, self.pool, reporter, self.clock)
        runs = RunService(store, self.pool, Authorizer([], nobody), self.notifier, self.clock)
        workflows = WorkflowEngine(store, self.catalog, runs, self.notifier, runs.auth, now=self.clock)
        retrier = Retrier(store, self.catalog, self.notifier, now=self.clock)
        self.outcomes = Outcomes(store, self.notifier, alerter, retrier, workflows)
        self.lister = Lister()

    def watcher(self) -> Watcher:
        """A watcher (a process: a restart makes a new one)."""
        return Watcher(self.store, self.catalog, Pool(self.pool, self.lister), now=self.clock,  # type: ignore[arg-type]
                       on_change=self.outcomes.on_change)

    async def failures(self) -> list[str]:
        """Provider ids of the runs whose failure is alerted."""
        ids = [i for a in await self.store.alerting.open_alerts() for i in a.runs]
        return [r.provider_run_id or "" for i in ids if (r := await self.store.runs.get(i)) is not None]


def failed(run_id: str, ended: datetime | None = None) -> RunStatus:
    return RunStatus(run_id, RunState.FAILED, "FAILED", message=f"{run_id} broke", final=True,
                     started_at=ended - timedelta(seconds=30) if ended else None, ended_at=ended)


async def test_runs_ended_before_watching_began_are_history_and_stay_so_across_a_restart(sqlite_store: Store) -> None:
    s = Setup(sqlite_store)
    since = s.clock()
    s.lister.runs = [failed("old", since - timedelta(hours=2)), failed("old-no-times")]
    watcher = s.watcher()
    assert await watcher.cycle() == 0  # the first list: watching begins now, what ended before is history
    s.clock.advance(60)
    assert await watcher.cycle() == 0
    s.clock.advance(60)
    assert await s.watcher().cycle() == 0  # a restart's first list decides the same
    assert await s.failures() == []


async def test_a_failure_first_seen_after_the_first_list_is_news_whatever_times_it_gives(sqlite_store: Store) -> None:
    """A run that failed before starting (no time at all), and one whose provider's clock is two minutes behind
    ours (it says it ended before watching began): both appeared after watching began, both are announced."""
    s = Setup(sqlite_store)
    watcher = s.watcher()
    assert await watcher.cycle() == 0  # watching begins: nothing listed yet
    since = s.clock()
    s.clock.advance(30)
    s.lister.runs = [failed("no-times"), failed("behind", since - timedelta(seconds=90))]
    assert await watcher.cycle() == 2
    assert sorted(await s.failures()) == ["behind", "no-times"]


async def test_a_run_found_by_a_slow_list_is_taken_as_seen_when_the_list_answered(sqlite_store: Store) -> None:
    """The list takes 12 s. Meanwhile a person runs the pipeline from Slack (it will succeed), and a run started
    elsewhere fails, listed without times: it was seen at the list's answer, after the Slack run began. The Slack
    run's success began before it, so it does not resolve that failure."""
    s = Setup(sqlite_store)
    watcher = s.watcher()
    await watcher.cycle()  # watching begins
    s.clock.advance(60)
    box: dict[str, Any] = {}

    async def meanwhile() -> None:
        s.clock.advance(2)
        run = await s.store.runs.create(
            NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
                   pipeline="loads", started_by="U0ALICE", channel="C0GENERAL"),
            now=s.clock(), next_poll_at=None)
        run = await s.store.starts.record_triggered(run.id, "slack-run", now=s.clock(), next_poll_at=s.clock())
        box["slack"] = await s.store.runs.record_status(
            run.id, RunStatus("slack-run", RunState.RUNNING, "RUNNING"), now=s.clock(), next_poll_at=s.clock())
        s.clock.advance(10)

    s.lister.during = meanwhile
    s.lister.runs = [failed("elsewhere")]
    assert await watcher.cycle() == 1
    [found] = [r for r in await s.store.runs.recent("loads") if r.provider_run_id == "elsewhere"]
    assert found.created_at == s.clock()  # seen when the list answered, not when the cycle began
    s.lister.during = None
    s.clock.advance(30)
    slack = box["slack"].run
    change = await s.store.runs.record_status(slack.id, RunStatus("slack-run", RunState.SUCCEEDED, "SUCCEEDED",
                                                             final=True), now=s.clock(), next_poll_at=None)
    assert change is not None
    await s.outcomes.on_change(change)
    assert await s.failures() == ["elsewhere"]  # still open
