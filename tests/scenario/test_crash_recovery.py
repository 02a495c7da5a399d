"""The bot is killed (SIGKILL) with runs in flight and Slack messages pending, then started again:
every run is followed to its end, every card reaches its final state, nothing is posted twice."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from bot.emulators._core import ManualClock, Outcome
from bot.emulators.slack import FakeSlack
from tests.scenario.harness import (
    FAILING_RIVER,
    BotProcess,
    card_runs,
    catalog_text,
    make_emulators,
    wait,
    world,
)

pytestmark = pytest.mark.slow


async def test_sigkill_with_runs_in_flight_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    clock = ManualClock()
    emulators = make_emulators(clock)
    for e in emulators.values():
        e.state.default = Outcome(queued_s=5, running_s=20)
    emulators["rivery"].state.script(FAILING_RIVER, Outcome(result="fail", queued_s=5, running_s=20, message="boom"))
    slack = FakeSlack()
    await slack.start()
    for e in emulators.values():
        await e.start()
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(catalog_text(emulators))
    bot = BotProcess(tmp_path, slack, catalog)
    try:
        await bot.ready()
        slack.app_url = f"{bot.url}/slack/events"
        commands = ["run leads-ods", "run orders", "run iowa-pda", "run budget", "run sales-dashboard",
                    "run leads-ods load_date=2026-01-02", "run orders"]
        for text in commands:
            assert (await slack.command(text, user="U0ALICE")).ok
        await wait(lambda: len(card_runs(slack, "C0GENERAL")) == len(commands), 15, "all cards posted", slack)

        # runs move on while Slack refuses updates for a while: updates and failure details pile up
        slack.fail_next("chat.update", status=429, retry_after=2, times=1000)
        slack.fail_next("chat.postMessage", status=503, times=1000)
        clock.advance(6)  # all running
        await asyncio.sleep(1.0)
        clock.advance(21)  # all ended: five succeed, two fail
        await asyncio.sleep(1.0)
        bot.kill()

        slack.clear_faults()
        bot = BotProcess(tmp_path, slack, catalog)
        await bot.ready()
        slack.app_url = f"{bot.url}/slack/events"

        def all_final() -> bool:
            texts = card_runs(slack, "C0GENERAL").values()
            return len(texts) == len(commands) and all(("succeeded" in t or "failed" in t) for t in texts)

        await wait(all_final, 60, "every card in its final state", slack)
        texts = list(card_runs(slack, "C0GENERAL").values())
        assert sum("failed" in t for t in texts) == 2
        assert sum("succeeded" in t for t in texts) == 5

        def evidence_posted() -> bool:  # the provider's log is fetched (Rivery prepares it: a few polls) then posted
            told = [c for c in slack.calls_to("chat.postMessage") if c.ok and str(c.params.get("text")).startswith("Det")]
            return len(told) >= 2

        await wait(evidence_posted, 30, "each failure's log in its thread", slack)
        await asyncio.sleep(1.0)  # anything still pending would go out now

        # no card was posted twice, every failure's details (and the provider's log beside them) went out once
        posts = [c for c in slack.calls_to("chat.postMessage") if c.ok]
        # the cards are in the channel of the commands; the failures' alert goes to the alert channel, once (both
        # failures are of orders: one alert), and may come after this check (its grouping window, Slack's 503s)
        cards = [c for c in posts if not c.params.get("thread_ts") and c.params.get("channel") == "C0GENERAL"]
        assert len(cards) == len(commands)
        alerts = [c for c in posts if not c.params.get("thread_ts") and c.params.get("channel") != "C0GENERAL"]
        assert len(alerts) <= 1, [c.params.get("text") for c in alerts]
        replies = [c for c in posts if c.params.get("thread_ts")]
        details = Counter(c.params["thread_ts"] for c in replies if not str(c.params.get("text")).startswith("Details"))
        evidence = Counter(c.params["thread_ts"] for c in replies if str(c.params.get("text")).startswith("Details"))
        failed_cards = [ts for ts, t in card_runs(slack, "C0GENERAL").items() if "failed" in t]
        assert sorted(details) == sorted(failed_cards) == sorted(evidence)
        assert set(details.values()) == set(evidence.values()) == {1}
        # each card got its final content once (no repeated final update)
        for ts in card_runs(slack, "C0GENERAL"):
            message = slack.message("C0GENERAL", ts)
            versions = [json.dumps(v.blocks) for v in message.edits] + [json.dumps(message.blocks)]
            assert len(versions) == len(set(versions)), f"card {ts} was updated without a change"
    finally:
        await asyncio.to_thread(bot.stop)  # the fake Slack answers meanwhile
        for e in emulators.values():
            await e.stop()
        await slack.stop()


async def test_sigterm_finishes_what_it_holds_and_releases_its_leases(tmp_path: Path) -> None:
    import sqlite3

    clock = ManualClock()
    emulators = make_emulators(clock)
    slack = FakeSlack()
    await slack.start()
    for e in emulators.values():
        await e.start()
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(catalog_text(emulators))
    bot = BotProcess(tmp_path, slack, catalog)
    try:
        await bot.ready()
        slack.app_url = f"{bot.url}/slack/events"
        for name in ("leads-ods", "leads-ods", "orders", "orders", "budget"):  # Rivery: 2 runs of a river a minute
            assert (await slack.command(f"run {name}", user="U0ALICE")).ok
        await wait(lambda: len(card_runs(slack, "C0GENERAL")) == 5, 15, "the cards", slack)
        bot.proc.send_signal(signal.SIGTERM)
        # waited for in a thread: the fake Slack runs on this loop, and answers the bot's last calls meanwhile
        assert await asyncio.to_thread(bot.proc.wait, 30) == 0
        with sqlite3.connect(tmp_path / "bot.db") as db:
            held = db.execute(
                "SELECT count(*) FROM runs WHERE lease_owner IS NOT NULL UNION ALL "
                "SELECT count(*) FROM cards WHERE lease_owner IS NOT NULL UNION ALL "
                "SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL"
            ).fetchall()
            pending = db.execute("SELECT count(*) FROM cards WHERE version > sent_version").fetchone()
        assert held == [(0,), (0,), (0,)]
        assert pending == (0,)  # what was decided went out before it exited
    finally:
        await asyncio.to_thread(bot.stop)  # the fake Slack answers meanwhile
        for e in emulators.values():
            await e.stop()
        await slack.stop()


async def test_stopping_lets_a_delivery_tick_record_the_card_slack_already_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop comes while a delivery tick waits on the database between Slack's answer to a card's post and its
    recording: the tick finishes (it is not cut off mid-write, to be redone by a lookup in Slack's history)."""
    async with world(tmp_path) as w:
        store = w.runtime.store
        assert store is not None
        card_posted = store.cards.posted
        slow, go, outcome = asyncio.Event(), asyncio.Event(), []

        async def slow_card_posted(*args: object, **kwargs: object) -> bool:
            slow.set()
            try:
                await go.wait()  # the database is slow just then
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise
            recorded = await card_posted(*args, **kwargs)  # type: ignore[arg-type]
            outcome.append("recorded")
            return recorded

        monkeypatch.setattr(store.cards, "posted", slow_card_posted)
        assert (await w.command("run leads-ods")).ok
        await asyncio.wait_for(slow.wait(), 10)
        assert len(w.cards()) == 1  # Slack has it
        stopping = asyncio.create_task(w.runtime.stop())
        await asyncio.sleep(0)  # stop() is under way: no new ticks from here
        go.set()
        await stopping
        assert outcome == ["recorded"]
        assert not w.slack.calls_to("conversations.history")  # nothing to look up again
        assert len([c for c in w.slack.calls_to("chat.postMessage") if c.ok]) == 1


async def test_sigterm_with_scheduler_jobs_in_flight_logs_no_error(tmp_path: Path) -> None:
    """Second independent pass: a stop cancelled the ticks still running and APScheduler logged each as
    ``ERROR … raised an exception`` with a CancelledError traceback. A slow Slack keeps a delivery tick in
    flight when SIGTERM comes; the stop lets it finish (within the grace period) and the log stays clean."""
    clock = ManualClock()
    emulators = make_emulators(clock)
    slack = FakeSlack()
    await slack.start()
    for e in emulators.values():
        await e.start()
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(catalog_text(emulators))
    try:
        for attempt in range(3):  # each stop is a fresh process: one clean stop could be luck
            bot = BotProcess(tmp_path, slack, catalog, {"SHUTDOWN_GRACE_SECONDS": "10"})
            try:
                await bot.ready()
                slack.app_url = f"{bot.url}/slack/events"
                posts = len(slack.messages("C0GENERAL"))
                slack.delay_next("chat.postMessage", 1.0, times=5)  # the card's post holds a delivery tick
                assert (await slack.command("run budget", user="U0ALICE")).ok
                await asyncio.sleep(0.4)  # the delivery tick is waiting on the slow post now
                bot.proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(bot.proc.wait, 30) == 0
            finally:
                await asyncio.to_thread(bot.stop)
                slack.clear_faults()
            log = await asyncio.to_thread(Path(bot.log.name).read_text)
            bad = [line for line in log.splitlines() if '"level": "error"' in line or "Traceback" in line]
            assert bad == [], f"stop {attempt + 1}: {bad[:3]}"
            assert len(slack.messages("C0GENERAL")) > posts, "the card posted during the stop went out"
    finally:
        for e in emulators.values():
            await e.stop()
        await slack.stop()
