"""Runs waiting their turn (a retry's backoff, a provider's cap), due together, when the bot stops or is killed
(seventeenth pass a). The starter claimed up to 50 at once (``StartStore.claim_waiting``) and triggered them one after
another; at a stop it went on sending through the grace period and was cut off there. Every claimed run not yet sent
was left ``starting``, and recovery gave it up as "the bot stopped while starting this run: it is unknown whether it
started" (a schedule's start: its owners alerted that the pipeline failed; a retry: its attempt lost, the failure it
retried announced), though none of them had been sent. Now each is claimed when its trigger is about to go, and a stop
sends no more: the runs not sent still wait their turn, and the next bot (or another replica) starts each once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.emulators._core import Fault, ManualClock
from bot.emulators.slack import FakeSlack
from bot.store.engine import make_engine, migrate
from bot.store.records import NewRun, RunOrigin, StoredState
from bot.store.store import Store
from tests.scenario.harness import FLOW, BotProcess, catalog_text, make_emulators, wait, world

STARTS = 10


async def test_waiting_starts_due_together_when_the_bot_stops_wait_and_start_once_after(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        store = w.runtime.parts.store
        invision = w.emulators["invision"]
        invision.state.add_fault(Fault(route="trigger", kind="delay", delay=0.8, times=None))  # a slow trigger
        now = w.runtime.parts.now()
        made = []
        for _ in range(STARTS):  # a schedule's starts held by a cap, due together
            run = await store.runs.create(
                NewRun(provider="invision", connection="invision", job={"dataflow_id": FLOW}, parameters={},
                       origin=RunOrigin.SCHEDULE, pipeline="budget", channel="C0GENERAL",
                       start_at=now + timedelta(seconds=3)),  # all made before it
                now=now, next_poll_at=None,
            )
            made.append(run.id)
        await w.until(lambda: any(r.route == "trigger" for r in invision.state.requests), 10, "the first trigger")
        await w.runtime.stop()  # a deploy: the grace period (2 s) is shorter than the triggers left to send
        with sqlite3.connect(tmp_path / "bot.db") as db:  # the stopped bot's store is closed
            answered = db.execute("select count(*) from runs where provider_run_id is not null").fetchone()[0]
        assert answered < STARTS, "every trigger was sent before the bot stopped: the test proves nothing"
        await w.restart()
        store = w.runtime.parts.store
        # the starts the stopped bot left behind are given up at once (not after recovery's 30 s)
        await w.runtime.parts.recovery.recover_starting(timedelta(seconds=0))
        await w.until(lambda: len(invision.state.runs) >= STARTS, 15, "every start sent")
        await w.settle(1.0)
        runs = [await store.runs.get(i) for i in made]
        ended = {r.id: (r.state, r.message) for r in runs if r is not None and r.provider_run_id is None}
        assert not ended, ended  # before: "the bot stopped while starting this run: it is unknown whether it started"
        assert all(r is not None and r.state is not StoredState.UNKNOWN for r in runs)
        assert len(invision.state.runs) == STARTS  # each sent once
        alerts = [m.text for m in w.slack.messages("C0ALERTS") if "budget" in m.text]
        assert not alerts, alerts  # before: "budget failed", its owners told of starts never sent


@pytest.mark.slow
async def test_a_killed_starter_leaves_at_most_its_trigger_under_way_unknown(tmp_path: Path) -> None:
    """SIGKILL while the starter works through runs due together: only the run whose trigger was under way is left
    "starting" (whether it started is truly unknown). Before, the starter had claimed every due run at once (up to
    50), and recovery gave up each one not yet sent as "unknown whether it started"."""
    clock = ManualClock()
    emulators = make_emulators(clock)
    slack = FakeSlack()
    await slack.start()
    for emulator in emulators.values():
        await emulator.start()
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(catalog_text(emulators))
    invision = emulators["invision"]
    invision.state.add_fault(Fault(route="trigger", kind="delay", delay=1.0, times=None))
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await migrate(engine)
    store = Store(engine)
    now = datetime.now(UTC)
    for _ in range(STARTS):
        await store.runs.create(
            NewRun(provider="invision", connection="invision", job={"dataflow_id": FLOW}, parameters={},
                   origin=RunOrigin.SCHEDULE, pipeline="budget", channel="C0GENERAL",
                   start_at=now + timedelta(seconds=2)),
            now=now, next_poll_at=None,
        )
    await store.close()
    bot = BotProcess(tmp_path, slack, catalog)
    try:
        await bot.ready()
        slack.app_url = f"{bot.url}/slack/events"
        await wait(lambda: any(r.route == "trigger" for r in invision.state.requests), 20, "the first trigger", slack)
        await asyncio.sleep(0.3)
        bot.kill()
        with sqlite3.connect(tmp_path / "bot.db") as db:
            states = Counter(state for (state,) in db.execute("select state from runs"))
        # before: {"starting": 10}, every one of them to be given up as unknown whether it started
        assert states["starting"] <= 1, states
        assert states["waiting"] >= STARTS - 2, states  # the next process starts them
    finally:
        bot.stop()
        for emulator in emulators.values():
            await emulator.stop()
        await slack.stop()


async def test_a_waiting_start_whose_connection_left_the_catalog_did_not_start_and_says_why(tmp_path: Path) -> None:
    """A retry or a cap-held start waiting across a deploy that renamed its connection: nothing can be sent. Before,
    the starter raised, the run stayed "starting" until its lease ran out, and recovery said "The bot stopped while
    starting this run: it is unknown whether it started. Check the provider's console": the bot had not stopped, and
    knew nothing was sent."""
    async with world(tmp_path, lease_seconds=1.0) as w:
        store = w.runtime.parts.store
        now = w.runtime.parts.now()
        run = await store.runs.create(
            NewRun(provider="invision", connection="invision-old", job={"dataflow_id": FLOW}, parameters={},
                   origin=RunOrigin.SCHEDULE, pipeline="budget", channel="C0GENERAL",
                   start_at=now + timedelta(seconds=0.5)),
            now=now, next_poll_at=None,
        )

        async def ended() -> bool:
            found = await store.runs.get(run.id)
            return found is not None and found.final

        for _ in range(200):
            if await ended():
                break
            await asyncio.sleep(0.05)
        after = await store.runs.get(run.id)
        assert after is not None and after.final, after
        assert "stopped while starting" not in after.message, after.message
        assert "no connection named invision-old" in after.message, after.message
        assert not w.emulators["invision"].state.runs
