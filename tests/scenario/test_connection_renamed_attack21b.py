"""Runs whose connection left the catalog, when the catalog renamed it and its pipelines followed (a deploy). Passive
watch lists the pipeline's runs through the new name and looked for them under that name only: every run of the
day the bot had recorded under the old name was news again, a failure counted twice in its alert, a run in flight
tracked twice. And a connection's name given to another provider's account."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.emulators._core import Outcome
from bot.service.function_steps import _failure
from bot.slack.blocks import ids
from tests.scenario.harness import DK_JOB, RIVER, world
from tests.scenario.surface import answered_in_place, ask, shown


def _dk_renamed(raw: dict[str, Any]) -> None:
    raw["connections"]["dk-prod"] = raw["connections"].pop("datakitchen")
    raw["pipelines"]["sales-dashboard"]["connection"] = "dk-prod"


async def test_a_watched_pipelines_connection_renamed_finds_no_run_twice(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.advance(120)
        await w.settle(0.5)  # watching begins
        dk = w.emulators["datakitchen"]
        dk.external_run(DK_JOB, {}, Outcome(result="fail", queued_s=1, running_s=2, message="Node load failed",
                                            failed_tasks=("load",)))
        dk.external_run(DK_JOB, {}, Outcome(result="fail", queued_s=1, running_s=60, message="Node late failed",
                                            failed_tasks=("late",)))
        w.advance(5)
        store = w.runtime.store

        async def alerts() -> list[tuple[int, ...]]:
            return [a.runs for a in await w.runtime.store.alerting.open_alerts() if a.pipeline == "sales-dashboard"]

        for _ in range(100):  # the first failure alerted, the second run followed while it runs
            if await alerts() and len(await store.runs.in_flight()) == 1:
                break
            await w.settle(0.05)
        assert await alerts() == [(1,)]
        [running] = await store.runs.in_flight()

        await w.restart(_dk_renamed)
        for _ in range(6):
            w.advance(5)
            await w.settle(0.3)
        store = w.runtime.store
        assert await alerts() == [(1,)], "a failure the bot had alerted was counted again"
        assert [r.id for r in await store.runs.in_flight()] == [running.id], "a run in flight tracked twice"

        w.advance(60)  # the run in flight fails: told once, from the list of the connection's new name
        for _ in range(100):
            if await alerts() != [(1,)]:
                break
            await w.settle(0.05)
        assert await alerts() == [(1, running.id)]
        assert not await store.runs.in_flight()
        await w.until(lambda: "failed 2 times" in str(w.slack.messages("C0ALERTS")[0].blocks), 10,
                      what="the alert counting both failures")


def _rivery_now_tailer(raw: dict[str, Any]) -> None:
    raw["connections"]["rivery"] = dict(raw["connections"]["tailer"])  # the name given to another provider's account
    del raw["pipelines"]["leads-ods"]
    del raw["pipelines"]["orders"]


async def test_a_run_whose_connection_name_went_to_another_provider_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The Tailer client was handed the run's Rivery job: "polling run 1 failed" at ERROR with a traceback at every
    poll ('Job' object has no attribute 'status_job_id'), the card "queued" for ever, offering Cancel."""
    async with world(tmp_path) as w:
        await w.command("run leads-ods")
        await w.card_saying("leads-ods is queued")
        with caplog.at_level(logging.WARNING):
            await w.restart(_rivery_now_tailer)
            for _ in range(10):
                w.advance(30)
                await w.settle(0.2)
            card = await w.card_saying("is no longer in the bot's catalog")
            assert "run.cancel" not in card.action_ids
            answer = await ask(w, "cancel 1")
        assert "is a tailer connection in the catalog now, not the rivery one" in answer.text, answer.text
        assert "Stop following it?" in answer.text, answer.text  # what can be done from here
        assert "provider's console" in answer.text, answer.text
        # stopped following: what it says afterwards names that same reason, not "no longer in the bot's catalog"
        done = await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=answer.ts), answer)
        assert "Stopped following run #1" in done.text, done.text
        ended = await w.card_saying("leads-ods is no longer followed")
        now_tailer = "is a tailer connection in the catalog now, not the rivery one"
        assert now_tailer in shown(ended) and "no longer in the bot's catalog" not in shown(ended), shown(ended)
        await w.until(lambda: any(now_tailer in m.text for m in w.thread(ended)), 5, what="the thread's note")
        record = await w.runtime.parts.store.runs.get(1)
        assert record is not None and now_tailer in record.message and now_tailer in _failure(record)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
        assert all(RIVER not in str(r.body) for r in w.emulators["tailer"].state.requests_to("status"))
