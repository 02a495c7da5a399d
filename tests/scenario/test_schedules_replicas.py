"""A schedule fires once per slot with two bot processes on PostgreSQL, and once after a restart that
spanned a slot (its missed-slot policy: run_once). Real minutes pass: this test takes about two."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from bot.emulators._core import ManualClock, Outcome
from bot.emulators.slack import FakeSlack
from tests.postgres import create_postgres_database, drop_postgres_database
from tests.scenario.harness import BotProcess, catalog_text, make_emulators

pytestmark = pytest.mark.slow


async def until_next_minute(margin: float = 4.0) -> None:
    await asyncio.sleep(60 - time.time() % 60 + margin)


async def test_a_schedule_fires_once_per_slot_across_processes_and_restarts(tmp_path: Path) -> None:
    url = await create_postgres_database()
    emulators = make_emulators(ManualClock())
    for e in emulators.values():
        e.state.default = Outcome(queued_s=1, running_s=1)
    slack = FakeSlack()
    await slack.start()
    for e in emulators.values():
        await e.start()
    raw = yaml.safe_load(catalog_text(emulators))
    raw["pipelines"]["budget"]["schedule"] = {"cron": "* * * * *", "missed": "run_once"}
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(yaml.safe_dump(raw))
    invision = emulators["invision"]
    env = {"DATABASE_URL": url}
    bots: list[BotProcess] = []
    try:
        if time.time() % 60 > 45:  # start well inside a minute, so the first slot is unambiguous
            await until_next_minute(1)
        bots = [BotProcess(tmp_path, slack, catalog, extra=env) for _ in range(2)]
        for bot in bots:
            await bot.ready()
        assert invision.state.requests_to("trigger") == []  # a new schedule starts with its next slot
        await until_next_minute()
        assert len(invision.state.requests_to("trigger")) == 1  # both processes fired; one ran it

        for bot in bots:
            await asyncio.to_thread(bot.stop)  # the fake Slack answers meanwhile
        await until_next_minute()  # a slot passes while no bot runs
        restarted = BotProcess(tmp_path, slack, catalog, extra=env)
        bots = [restarted]
        await restarted.ready()
        await asyncio.sleep(2)
        assert len(invision.state.requests_to("trigger")) == 2  # the missed slot, run once
    finally:
        for bot in bots:
            await asyncio.to_thread(bot.stop)  # the fake Slack answers meanwhile
        for e in emulators.values():
            await e.stop()
        await slack.stop()
        await drop_postgres_database(url)
