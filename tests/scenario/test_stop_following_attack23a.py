"""Stop following and a workflow gone, attacked again (the twenty-second passes' fixes).

A run whose connection the catalog renamed, its pipeline watched, is followed by the watch at the new name
(``RunReads.find_moved``): Stop following was offered all the same ("cannot be canceled nor followed from here"), and
once clicked the run's real end, listed by the watch a moment later, was dropped (an ended run stays ended): its
failure told nobody. And a click on an approval of a workflow gone from the catalog stopped the run whoever clicked:
nobody's rights were asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.emulators._core import Outcome
from bot.errors import InvalidRequest, NotAllowed
from bot.service.permissions import Actor
from bot.service.workflows import WorkflowEngine
from bot.slack.blocks import ids
from bot.store.workflow_runs import StepState, WorkflowState
from tests.scenario.harness import DK_JOB, World, world
from tests.scenario.surface import add_stranger, ask, audit_of
from tests.scenario.test_workflows import QUICK, advance_until, card

LATE_FAIL = Outcome(result="fail", queued_s=1, running_s=60, message="late failed")


def _tailer_renamed(raw: dict[str, Any]) -> None:
    """A deploy that renamed the Tailer connection; ``iowa-pda`` (watched) follows it to ``tailer-eu``."""
    raw["connections"]["tailer-eu"] = raw["connections"].pop("tailer")
    raw["pipelines"]["iowa-pda"]["connection"] = "tailer-eu"


async def test_a_run_the_watch_follows_at_its_renamed_connection_is_not_offered_to_stop_following(
    tmp_path: Path,
) -> None:
    """Its card offered Stop following ("cannot be canceled nor followed from here"), and so did `/pipeline cancel`:
    stopped, its failure listed by the watch a minute later was dropped, told nobody."""
    async with world(tmp_path) as w:
        w.advance(120)
        await w.settle(0.5)  # watching begins
        w.tailer.state.default = LATE_FAIL
        assert (await w.command("run iowa-pda execution_date=2026-11-03")).ok
        card = await w.card_saying("iowa-pda is")
        w.advance(2)
        await w.settle(1)

        await w.restart(_tailer_renamed)
        for _ in range(6):  # the watch lists it at tailer-eu and finds it under tailer: it follows it
            w.advance(5)
            await w.settle(0.3)
        run = await w.runtime.store.runs.get(1)
        assert run is not None and not run.final and run.connection == "tailer"

        answer = await ask(w, "cancel 1")  # its starter
        assert "Stop following it?" not in answer.text, answer.text
        assert "watch of *iowa-pda*" in answer.text and "tailer-eu" in answer.text, answer.text
        await w.until(lambda: "iowa-pda is running" in w.slack.message("C0GENERAL", card.ts).text, 5,
                      what="the card running")
        assert ids.RUN_STOP_FOLLOWING not in w.slack.message("C0GENERAL", card.ts).action_ids
        with pytest.raises(InvalidRequest, match="through the watch"):  # a click from before (or forged): refused
            await w.runtime.services.runs.stop_following(Actor("U0ALICE"), 1)

        w.advance(60)  # it fails at Tailer: listed by the watch, told as any failure
        for _ in range(10):
            w.advance(5)
            await w.settle(0.3)
        await w.until(lambda: any("iowa-pda failed" in m.text for m in w.slack.messages("C0OPS")), 10,
                      what="the failure's alert")
        ended = await w.runtime.store.runs.get(1)
        assert ended is not None and ended.state == "failed" and ended.stopped_by is None


def _dk_renamed(raw: dict[str, Any]) -> None:
    raw["connections"]["dk-prod"] = raw["connections"].pop("datakitchen")
    raw["pipelines"]["sales-dashboard"]["connection"] = "dk-prod"


async def test_an_order_the_watch_finds_but_does_not_follow_may_still_be_stopped_following(tmp_path: Path) -> None:
    """DataKitchen lists "<order>/<order run>" where its trigger knew "<order>": the watch finds a run started from
    Slack at the renamed connection but leaves it to its own polls, which cannot reach it: Stop following stays the
    way to end it."""
    async with world(tmp_path) as w:
        w.advance(120)
        await w.settle(0.5)
        w.emulators["datakitchen"].state.script(DK_JOB, LATE_FAIL)
        assert (await w.command("run sales-dashboard source_date=2026-11-03")).ok
        await w.card_saying("sales-dashboard is queued")
        w.advance(2)
        await w.card_saying("sales-dashboard is running", timeout=15)
        await w.restart(_dk_renamed)
        for _ in range(6):
            w.advance(5)
            await w.settle(0.3)
        answer = await ask(w, "cancel 1")
        assert "Stop following it?" in answer.text, answer.text


def _gated(raw: dict[str, Any]) -> None:
    raw["workflows"] = {"gated": {"channel": "C0ALERTS", "steps": {
        "ingest": {"pipeline": "budget", "on_success": "approve"},
        "approve": {"approval": {"approvers": ["U0BOB"], "timeout": "2h", "question": "Publish?"},
                    "on_success": "publish"},
        "publish": {"pipeline": "sales-dashboard"}}}}


@asynccontextmanager
async def gated_gone(tmp_path: Path) -> AsyncIterator[tuple[World, str, WorkflowEngine]]:
    """Alice's run of ``gated`` waiting for Bob's approval when a deploy's catalog has no workflows; a stranger in
    the channel. Yields the world, the stranger and the workflow engine."""
    async with world(tmp_path, catalog_edit=_gated) as w:
        stranger = add_stranger(w)
        for e in w.emulators.values():
            e.state.default = QUICK
        assert (await w.command("run gated", user="U0ALICE")).ok
        await advance_until(w, lambda: "wf.approve" in card(w, "Workflow gated"), "the approval buttons")
        await w.restart(lambda raw: None)  # the deploy's catalog has no workflows
        yield w, stranger, w.runtime.parts.workflows


async def test_an_approval_of_a_workflow_gone_is_not_anyones_to_stop(tmp_path: Path) -> None:
    """Its approvers went with the definition: a stranger's click stopped the run (a rollback of the deploy would
    have let its approvers decide)."""
    async with gated_gone(tmp_path) as (w, stranger, engine):
        with pytest.raises(NotAllowed):
            await engine.decide(Actor(stranger), 1, "approve", True)
        record = await w.runtime.store.workflows.get(1)
        assert record is not None and record.state is WorkflowState.RUNNING
        assert record.steps["approve"].state is StepState.WAITING

        with pytest.raises(InvalidRequest, match="cannot go on and stops"):  # who started it may
            await engine.decide(Actor("U0ALICE"), 1, "approve", True)
        record = await w.runtime.store.workflows.get(1)
        assert record is not None and record.state is WorkflowState.FAILED
        entries = [e for e in await audit_of(w) if e.action == "approve"]
        assert [e.user_id for e in entries] == [stranger, "U0ALICE"], entries
