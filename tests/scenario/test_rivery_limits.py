"""Rivery's throttling rules (Boomi's legacy API reference: a river at most 2 runs a minute, an API token at most
15), held by the bot itself: a person who runs a river a third time in a minute is told when to try again, and the
bot's own starts (a schedule, an automatic retry) wait on their card, "waiting for Rivery's rate limit", then
start. The emulator answers 429 past the limits, so a start the bot let through too early would show."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.store.records import RunOrigin
from bot.store.tables import runs
from tests.scenario.harness import World, world

RATE_NOTE = "waiting for Rivery's rate limit, starts at <!date^"


def shown(w: World, message: Any) -> str:
    found = w.slack.message(message.channel, message.ts)
    return found.text + json.dumps(found.blocks)


async def a_minute_passes(w: World) -> None:
    """The bot runs on the real clock: its record of the recent starts is moved back a minute (and the emulator's
    clock on a minute), then the waiting starts are made due, as they would be at the time on their cards."""
    store = w.runtime.store
    assert store is not None
    async with store.engine.begin() as conn:
        rows = (await conn.execute(select(runs.c.id, runs.c.created_at, runs.c.state))).all()
        for run_id, created, state in rows:
            if state == "waiting":
                await conn.execute(update(runs).where(runs.c.id == run_id).values(next_poll_at=w.runtime.now()))
            else:
                await conn.execute(
                    update(runs).where(runs.c.id == run_id).values(created_at=created - timedelta(minutes=2))
                )
    w.advance(61)


async def test_a_third_run_of_a_river_within_a_minute_is_refused_with_when_to_try_again(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        rivery = w.emulators["rivery"]
        await w.command("run leads-ods")
        await w.command("run leads-ods")
        await w.until(lambda: len(w.cards()) == 2, what="two cards")
        await w.command("run leads-ods")
        await w.until(lambda: any("Rivery allows" in r.text for r in w.slack.responses("U0ALICE")),
                      what="the refusal")
        [refusal] = [r.text for r in w.slack.responses("U0ALICE") if "Rivery allows" in r.text]
        assert "Rivery allows 2 runs of a river a minute; try again at <!date^" in refusal
        assert "^{time}|" in refusal  # the time, in each reader's own time zone
        await w.settle()
        assert len(w.cards()) == 2
        assert len(rivery.state.requests_to("trigger")) == 2  # Rivery never saw the third: no 429, no error
        assert not any("did not start" in r.text or "429" in r.text for r in w.slack.responses("U0ALICE"))

        await w.command("run orders")  # another river is not held
        await w.until(lambda: len(w.cards()) == 3, what="a card for the other river")


async def test_a_scheduled_start_past_the_limit_waits_on_its_card_then_starts(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        rivery = w.emulators["rivery"]
        await w.command("run leads-ods")
        await w.command("run leads-ods")
        await w.until(lambda: len(w.cards()) == 2, what="two cards")

        pipeline = w.runtime.catalog.pipelines["leads-ods"]
        held = await w.runtime.services.runs.start(None, pipeline, {}, channel=None, origin=RunOrigin.SCHEDULE,
                                                   authorized=True)
        assert held.state == "waiting"
        card = await w.card_saying(RATE_NOTE, channel="C0ALERTS")
        assert "Rivery allows 2 runs of a river a minute" in shown(w, card)
        await w.settle()
        assert len(rivery.state.requests_to("trigger")) == 2

        await a_minute_passes(w)
        await w.until(lambda: "waiting for Rivery" not in shown(w, card), what="the held run started")
        assert len(rivery.state.requests_to("trigger")) == 3
        await w.until(lambda: "queued" in shown(w, card) or "running" in shown(w, card), what="its card moving on")


async def test_automatic_retries_past_the_limit_wait_for_it_instead_of_failing(tmp_path: Path) -> None:
    def with_retries(raw: dict[str, Any]) -> None:
        raw["pipelines"]["orders"]["retry"] = {"attempts": 2, "backoff": "1s"}

    async with world(tmp_path, catalog_edit=with_retries) as w:
        rivery = w.emulators["rivery"]
        await w.command("run orders", user="U0BOB")
        await w.command("run orders", user="U0BOB")
        await w.until(lambda: len(w.cards()) == 2, what="two cards")
        w.advance(40)  # both fail at Rivery: each has a retry left, due a second later
        await w.until(lambda: len([m for m in w.cards() if RATE_NOTE in shown(w, m)]) == 2, 15,
                      what="both retries waiting for the limit on their cards")
        assert len(rivery.state.requests_to("trigger")) == 2
        assert not [m for m in w.cards() if "did not start" in shown(w, m)]

        await a_minute_passes(w)
        await w.until(lambda: len(rivery.state.requests_to("trigger")) == 4, 15, what="both retries started")
        await w.settle()
        assert not [m for m in w.cards() if RATE_NOTE in shown(w, m)]


async def test_a_workflow_step_past_the_limit_waits_then_the_workflow_goes_on(tmp_path: Path) -> None:
    def with_workflow(raw: dict[str, Any]) -> None:
        raw["workflows"] = {"ingest-twice": {"steps": {"ingest": {"pipeline": "leads-ods"}}}}

    async with world(tmp_path, catalog_edit=with_workflow) as w:
        rivery = w.emulators["rivery"]
        await w.command("run leads-ods")
        await w.command("run leads-ods")
        await w.until(lambda: len(w.cards()) == 2, what="two cards")
        await w.command("run ingest-twice")
        step = await w.card_saying(RATE_NOTE)  # steps' cards go where the workflow was started
        assert "Step ingest of workflow run #1" in shown(w, step)
        await w.settle()
        assert len(rivery.state.requests_to("trigger")) == 2

        await a_minute_passes(w)
        await w.until(lambda: len(rivery.state.requests_to("trigger")) == 3, 15, what="the step started")
        w.advance(40)
        await w.until(lambda: any("ingest-twice succeeded" in m.text for m in w.slack.messages("C0GENERAL")), 15,
                      what="the workflow to succeed")
