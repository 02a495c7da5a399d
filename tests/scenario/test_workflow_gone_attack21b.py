"""A workflow run in flight when a deploy removed its workflow from the catalog, or renamed its steps. The end of a
step's run raised "There is no workflow …" from the outcome's handling, before the failure's alert: the failure was
never told, the run never marked shown (recovery's ERROR with a traceback every 15 minutes), the workflow's card
"running" for ever."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.scenario.harness import World, world
from tests.scenario.surface import shown


def _nightly(first: str, on: str) -> dict[str, Any]:
    return {"steps": {"first": {"pipeline": first, on: "second"}, "second": {"pipeline": "budget"}}}


def _workflow_card(w: World) -> str:
    found = [m for m in w.slack.messages("C0GENERAL") if m.text.startswith("Workflow nightly")]
    return shown(found[-1]) if found else ""


def _notes(w: World) -> str:
    [card] = [m for m in w.slack.messages("C0GENERAL") if m.text.startswith("Workflow nightly")]
    return "\n".join(shown(m) for m in w.thread(card))


async def _restart_then_run_on(w: World, edit: Any) -> None:
    await w.settle(0.5)
    w.advance(3)  # the first step's run is under way
    await w.settle(0.5)
    await w.restart(edit)
    for _ in range(20):
        w.advance(5)
        await w.settle(0.2)


async def test_a_failed_step_of_a_workflow_gone_from_the_catalog_is_alerted_and_the_workflow_stops(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["workflows"] = {"nightly": _nightly("orders", "on_failure")}

    async with world(tmp_path, catalog_edit=edit) as w:
        assert (await w.command("run nightly")).ok
        await w.card_saying("Workflow nightly running")
        with caplog.at_level(logging.WARNING):
            await _restart_then_run_on(w, lambda raw: None)  # the deploy's catalog has no workflows
        store = w.runtime.store
        await w.until(lambda: any("orders failed" in m.text for m in w.slack.messages("C0ALERTS")), 10,
                      what="the failure's alert")
        assert not await store.runs.unnotified(older_than=w.runtime.now(), skip=())
        await w.until(lambda: "Workflow nightly failed" in _workflow_card(w), 10, what="the workflow card stopped")
        assert "left the bot's catalog" in _notes(w) and "*second*" in _notes(w)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


async def test_a_workflow_whose_steps_were_renamed_stops_and_retry_says_what_works(tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["workflows"] = {"nightly": _nightly("leads-ods", "on_success")}

    def renamed(raw: dict[str, Any]) -> None:
        raw["workflows"] = {"nightly": {"steps": {"load": {"pipeline": "leads-ods", "on_success": "report"},
                                                  "report": {"pipeline": "budget"}}}}

    async with world(tmp_path, catalog_edit=edit) as w:
        assert (await w.command("run nightly")).ok
        await w.card_saying("Workflow nightly running")
        await _restart_then_run_on(w, renamed)
        await w.until(lambda: "Workflow nightly failed" in _workflow_card(w), 10, what="the workflow card stopped")
        assert "first" in _workflow_card(w) and "succeeded" in _workflow_card(w)
        assert "its steps *second* cannot start" in _notes(w)
        assert not w.emulators["invision"].state.requests_to("trigger")
        [card] = [m for m in w.slack.messages("C0GENERAL") if m.text.startswith("Workflow nightly")]
        before = len(w.slack.ephemerals("C0GENERAL", "U0ALICE"))
        await w.slack.click(card.channel, card.ts, "wf.retry", user="U0ALICE")
        await w.until(lambda: len(w.slack.ephemerals("C0GENERAL", "U0ALICE")) > before, 5, what="Retry's answer")
        answer = w.slack.ephemerals("C0GENERAL", "U0ALICE")[before].text
        assert "other steps in the catalog" in answer and "run the workflow again" in answer, answer
