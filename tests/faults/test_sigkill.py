"""The bot (a separate process) is killed with SIGKILL at random moments while 200 runs are in flight: while their
cards are being posted, while they move to running, and while they end (final edits, failure details, the
alert). Each time a new process starts on the same database. At the end: no run lost, no notification lost or
duplicated, no false failure. The moments are random; the seed is printed, ``FAULT_SEED=<n>`` replays one."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from pathlib import Path

import pytest

from bot.emulators._core import ManualClock
from tests.faults import (
    QUEUED_S,
    RUNNING_S,
    all_final,
    assert_delivered,
    cards,
    catalog_with_timeouts,
    channels,
    emulators_for_faults,
    fake_slack,
    start_runs,
    wait,
)
from tests.scenario.harness import BotProcess

pytestmark = pytest.mark.slow

RUNS = 200
ENV = {"POLL_INTERVAL_SECONDS": "1", "POLL_INTERVAL_MAX_SECONDS": "2", "POLL_TICK_SECONDS": "0.2",
       "DELIVERY_TICK_SECONDS": "0.1", "ALERT_GROUP_SECONDS": "1", "LOG_FORMAT": "json"}


async def test_sigkill_at_random_moments_with_200_runs_in_flight(tmp_path: Path) -> None:
    seed = int(os.environ.get("FAULT_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"FAULT_SEED={seed}")
    clock = ManualClock()
    emulators = emulators_for_faults(clock)
    chans = channels(25)
    slack = fake_slack(chans)
    await slack.start()
    for e in emulators.values():
        await e.start()
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(catalog_with_timeouts(emulators, 30.0, watch=False))
    bot = BotProcess(tmp_path, slack, catalog, extra=ENV)
    kills: list[str] = []

    async def kill_soon(phase: str, earliest: float, latest: float) -> None:
        nonlocal bot
        moment = rng.uniform(earliest, latest)
        await asyncio.sleep(moment)
        bot.kill()
        kills.append(f"{phase} +{moment:.2f}s")
        bot = BotProcess(tmp_path, slack, catalog, extra=ENV)
        await bot.ready()
        slack.app_url = f"{bot.url}/slack/events"

    try:
        await bot.ready()
        slack.app_url = f"{bot.url}/slack/events"
        started = await start_runs(slack, RUNS, chans)

        def triggered() -> bool:
            with sqlite3.connect(tmp_path / "bot.db") as db:
                count: int = db.execute("select count(*) from runs where provider_run_id is not null").fetchone()[0]
            return count == RUNS

        await wait(triggered, 60, "every run triggered and recorded", slack)
        await kill_soon("cards being posted", 0.0, 2.5)

        clock.advance(QUEUED_S + 1)  # every run is running at its provider
        await kill_soon("cards moving to running", 0.3, 3.0)

        clock.advance(RUNNING_S)  # every run ends: 40 fail, 160 succeed
        await kill_soon("runs ending", 0.3, 3.0)

        await wait(all_final(slack, chans, RUNS), 150, f"every card in its final state (kills: {kills})", slack)
        await asyncio.sleep(3.0)  # anything still pending (a duplicate, the alert) would go out now
        assert len(cards(slack, chans)) == RUNS
        repeated = assert_delivered(slack, chans, started, emulators)
        print(f"edits repeating what Slack already showed: {repeated}")
    finally:
        print(f"FAULT_SEED={seed} kills: {kills}")
        await asyncio.to_thread(bot.stop)  # the fake Slack answers meanwhile
        for e in emulators.values():
            await e.stop()
        await slack.stop()
