"""Ends that nothing followed (found by the fifth independent pass).

A run whose trigger's answer already says it ended (InVision answers a start with the run's status: a data flow
that fails at once, or has nothing to do): the answer was recorded and the card showed the end, but nothing that follows an end happened, since the poller never polls a run that ended: no
failure alert, no owners told, no details, no retry, and a workflow step that never ended (the workflow stayed
"running" for ever)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from bot.store.records import NewRun, RunRecord
from tests.scenario.harness import FLOW, World, world
from tests.scenario.test_workflows import QUICK, advance_until, card, daily

AT_ONCE_FAILED = Outcome(result="fail", queued_s=0, running_s=0, message="boom at start")
AT_ONCE_DONE = Outcome(queued_s=0, running_s=0)


def _alerts(w: World, words: str) -> list[str]:
    return [json.dumps([m.text, m.blocks]) for m in w.slack.messages("C0ALERTS") if words in m.text]


async def test_a_run_that_failed_by_the_time_its_trigger_answered_is_alerted_with_its_owners(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.emulators["invision"].state.default = AT_ONCE_FAILED
        assert (await w.command("run budget")).ok
        failed = await w.card_saying("failed")
        await w.until(lambda: bool(_alerts(w, "budget")), what="the failure alert")
        [alert] = _alerts(w, "budget")
        assert "S0DATAENG" in alert  # the catalog's default owners of budget, mentioned
        await w.until(lambda: any("failed" in m.text for m in w.thread(failed)), what="the details in its thread")
        await w.settle(1.0)
        assert len(_alerts(w, "budget")) == 1


def _retried(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["retry"] = {"attempts": 2, "backoff": "1s"}


async def test_a_run_that_failed_by_the_time_its_trigger_answered_is_retried_by_its_policy(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_retried) as w:
        w.emulators["invision"].state.script(FLOW, [AT_ONCE_FAILED, AT_ONCE_DONE])
        assert (await w.command("run budget")).ok
        for _ in range(20):
            if len(w.emulators["invision"].state.requests_to("trigger")) == 2:
                break
            w.advance(1)
            await w.settle(0.3)
        assert len(w.emulators["invision"].state.requests_to("trigger")) == 2, "the second attempt"
        await w.until(lambda: any("succeeded" in c.text for c in w.cards()), what="the second attempt succeeding")
        await w.settle(1.0)
        assert not _alerts(w, "budget")  # the policy's second attempt succeeded: nothing to alert


async def test_a_workflow_step_that_ended_by_the_time_its_trigger_answered_moves_the_workflow_on(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, catalog_edit=daily) as w:
        w.emulators["invision"].state.default = AT_ONCE_DONE
        assert (await w.command("run gated", user="U0ALICE")).ok
        await w.until(lambda: "Publish?" in card(w, "Workflow") or "Publish?" in card(w, "gated"),
                      what="the approval the workflow moves on to once its first step succeeded")


async def test_a_workflow_whose_next_step_could_not_be_begun_goes_on_when_recovery_replays_the_change(
    tmp_path: Path,
) -> None:
    """Found by the fifth independent pass: a step ended and was recorded so, then beginning the next step failed
    (the database away, the process killed). Recovery replays the step's end, but the step was no longer "running",
    so nothing followed it: the workflow stayed "running" for ever, its next steps never begun."""
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        store = w.runtime.store
        assert store is not None
        original = store.runs.create
        refused: list[str] = []

        async def create_run(new: NewRun, **kw: Any) -> RunRecord:
            if new.step == "transform" and not refused:
                refused.append(new.step)
                raise ConnectionError("the database went away")
            return await original(new, **kw)

        store.runs.create = create_run  # type: ignore[method-assign]
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: bool(refused), "the transform step's start to fail")
        await w.settle(0.5)
        await w.runtime.recovery.recover_unnotified(timedelta(0))  # what its periodic job does 10 s later
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the workflow to succeed")
        triggers = sum(len(e.state.requests_to("trigger")) for e in w.emulators.values())
        assert triggers == 3  # each step started once
