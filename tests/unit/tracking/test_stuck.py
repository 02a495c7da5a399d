from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from bot.catalog.load import parse_catalog
from bot.models import RunState, RunStatus
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store
from bot.tracking.stuck import StuckDetector, learned_threshold

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CATALOG = """
connections:
  dk: {provider: datakitchen, username: bot, password: "${PW}"}
pipelines:
  learned: {connection: dk, kitchen: k, recipe: r, variation: a, owners: [U0BOB]}
  declared: {connection: dk, kitchen: k, recipe: r, variation: b, expected_duration: 5m}
"""


def test_learned_threshold_needs_enough_history() -> None:
    assert learned_threshold([timedelta(seconds=60)] * 4) is None
    durations = [timedelta(seconds=s) for s in (60, 70, 80, 90, 100)]
    assert learned_threshold(durations) == timedelta(seconds=150)


async def _run(store: Store, pipeline: str, n: int, *, started: datetime, ended: datetime | None) -> int:
    run = await store.runs.create(
        NewRun(provider="datakitchen", connection="dk", job={"kitchen": "k", "recipe": "r", "variation": "a"},
               parameters={}, origin=RunOrigin.SLACK, pipeline=pipeline, channel="C1", provider_run_id=f"o{pipeline}{n}"),
        now=started, next_poll_at=None,
    )
    state = RunState.SUCCEEDED if ended else RunState.RUNNING
    await store.runs.record_status(run.id, RunStatus(f"o{n}", state, "x", started_at=started, ended_at=ended),
                              now=ended or started, next_poll_at=None if ended else NOW)
    return run.id


async def test_a_run_past_its_learned_or_declared_duration_gets_one_warning(sqlite_store: Store) -> None:
    store = sqlite_store
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"PW": "secret-pw"})
    notifier = Notifier(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: NOW), lambda: NOW)
    detector = StuckDetector(store, catalog, notifier, now=lambda: NOW)
    for i, seconds in enumerate((60, 70, 80, 90)):
        start = NOW - timedelta(hours=5 - i)
        await _run(store, "learned", i, started=start, ended=start + timedelta(seconds=seconds))
    live = await _run(store, "learned", 99, started=NOW - timedelta(seconds=200), ended=None)
    assert await detector.tick() == 0  # four successful runs: too little history to judge
    start = NOW - timedelta(hours=1)
    await _run(store, "learned", 4, started=start, ended=start + timedelta(seconds=100))
    assert await detector.tick() == 1  # 200 s > 1.5 × p95 (100 s)
    assert await detector.tick() == 0  # one warning, not one per tick
    [warning] = await store.outbox.of_run(live)
    assert "may be stuck" in warning.text and "<@U0BOB>" in str(warning.blocks)
    assert "1.5 × the 95th percentile of its last 5 successful runs" in warning.text

    declared = await _run(store, "declared", 1, started=NOW - timedelta(minutes=6), ended=None)
    assert await detector.tick() == 1
    [warning] = await store.outbox.of_run(declared)
    assert "its expected duration" in warning.text
