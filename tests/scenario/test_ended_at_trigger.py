"""Ends that nothing followed (found by the fifth independent pass).

A run whose trigger's answer already says it ended (InVision answers a start with the run's status: a data flow
that fails at once, or has nothing to do): the answer was recorded and the card showed the end, but nothing that follows an end happened, since the poller never polls a run that ended: no
failure alert, no owners told, no details, no retry, and a workflow step that never ended (the workflow stayed
"running" for ever)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.emulators._core import Fault, Outcome
from bot.service.workflows import CLAIM_STALE
from bot.store.records import NewRun, RunRecord
from bot.store.workflow_runs import StepState
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


async def test_two_copies_of_a_steps_end_at_the_same_moment_begin_its_next_step_once(tmp_path: Path) -> None:
    """Found by the fifth independent pass, fixed by the sixth: two copies of a step's end handled at the same
    moment both found the next step pending (the first had not recorded its run yet) and both began it."""
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        store = w.runtime.store
        assert store is not None
        engine = w.runtime.parts.workflows
        original_end, original_create = engine.step_ended, store.runs.create
        progressed = asyncio.Event()  # the other copy entered create_run too, or finished without it
        creating: list[str] = []

        async def create_run(new: NewRun, **kw: Any) -> RunRecord:
            if new.step == "transform":
                creating.append(new.step)
                if len(creating) == 1:
                    await progressed.wait()  # hold the first copy's run unrecorded: the window the second needs
                else:
                    progressed.set()
            return await original_create(new, **kw)

        async def twice(run: RunRecord) -> None:
            if run.step != "ingest":
                await original_end(run)
                return

            async def copy() -> None:
                try:
                    await original_end(run)
                finally:
                    progressed.set()

            await asyncio.gather(copy(), copy())

        store.runs.create = create_run  # type: ignore[method-assign]
        engine.step_ended = twice  # type: ignore[method-assign]
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the workflow to succeed")
        assert creating == ["transform"]  # the second copy never began it
        triggers = sum(len(e.state.requests_to("trigger")) for e in w.emulators.values())
        assert triggers == 3  # each step started once


async def test_a_workflow_step_whose_start_was_given_up_ends_the_step(tmp_path: Path) -> None:
    """Found by the sixth independent pass: a step's trigger pending when its process died; recovery gave the start
    up ("unknown whether it started") but told only the run's card, not its workflow: the step stayed as it was and
    the workflow "running" for ever, its owners never told. The given-up start now ends the step."""
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        w.emulators["tailer"].state.add_fault(Fault(route="trigger", kind="delay", delay=5, times=None))
        store = w.runtime.store
        assert store is not None
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: bool(w.emulators["tailer"].state.requests_to("trigger")),
                            "the transform step's trigger to be pending")
        await store.release_leases()  # as if its process had died: its start has no owner any more
        [given_up] = await w.runtime.recovery.recover_starting(timedelta(0))
        assert given_up.step == "transform"
        await w.until(lambda: "daily-sales failed" in card(w, "Workflow"), what="the workflow to stop, announced")
        # its process was alive after all: the late answer is recorded (tracking resumed), the workflow stays stopped
        # until Retry on its card, which adopts that run rather than starting the step again
        await w.until(lambda: any("answered after all" in m.text for m in w.slack.messages("C0GENERAL", top_level=False)),
                      timeout=15,
                      what="the late answer recorded")


async def test_a_step_claimed_by_a_process_that_died_before_beginning_it_is_begun_later(tmp_path: Path) -> None:
    """Sixth pass: a step is begun by whoever claims it ("starting"); a claimer that dies between the claim and the
    run's recording (the database away for both the run and the giving back) leaves the claim, and the end before
    it is already told: the periodic sweep begins it once the claim is stale."""
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        store = w.runtime.store
        assert store is not None
        original_create, original_set = store.runs.create, store.workflows.set_step
        refused: list[str] = []

        async def create_run(new: NewRun, **kw: Any) -> RunRecord:
            if new.step == "transform" and not refused:
                refused.append("run")
                raise ConnectionError("the database went away")
            return await original_create(new, **kw)

        async def set_step(workflow_run_id: int, step: str, state: StepState, **kw: Any) -> bool:
            if (step, state) == ("transform", StepState.PENDING) and refused == ["run"]:
                refused.append("give back")
                raise ConnectionError("the database is still away")
            return await original_set(workflow_run_id, step, state, **kw)

        store.runs.create = create_run  # type: ignore[method-assign]
        store.workflows.set_step = set_step  # type: ignore[method-assign]
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: len(refused) == 2, "the transform step's start and give-back to fail")
        await w.settle(0.5)
        await w.runtime.recovery.recover_unnotified(timedelta(0))  # the end replayed: the claim is fresh, left
        engine = w.runtime.parts.workflows
        assert await engine.begin_stale_claims() == 0
        real = engine.now
        engine.now = lambda: real() + CLAIM_STALE + timedelta(seconds=1)
        assert await engine.begin_stale_claims() == 1
        engine.now = real
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the workflow to succeed")
        triggers = sum(len(e.state.requests_to("trigger")) for e in w.emulators.values())
        assert triggers == 3  # each step started once
