"""A workflow step whose start was given up, then answered after all (found by the seventh independent pass).

Recovery gives a step's pending start up when its process is taken for gone (the database away longer than a
lease): the step fails and the workflow stops, announced with its owners. When the trigger answers after all, the
run's tracking resumes; the claimer then marked the step "running" again over the "failed" recovery had recorded,
so when the run succeeded the next step began under a workflow announced as stopped, whose card stayed "failed"
for ever and whose Retry found no failed step. The stopped workflow now stays stopped until Retry, and Retry takes
the step's run that succeeded after all as the step's, never running the pipeline a second time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.emulators._core import Fault, Outcome
from bot.store.workflow_runs import StepState
from tests.scenario.harness import TAILER_CONFIG, World, world
from tests.scenario.test_workflows import QUICK, advance_until, card, daily, messages


async def test_a_given_up_step_answered_after_all_leaves_the_workflow_stopped_until_retry(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        tailer, datakitchen = w.emulators["tailer"], w.emulators["datakitchen"]
        tailer.state.add_fault(Fault(route="trigger", kind="delay", delay=5, times=1))
        store = w.runtime.store
        assert store is not None
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: bool(tailer.state.requests_to("trigger")), "the transform step's trigger")
        await store.release_leases()  # as if its process had died: its start has no owner any more
        [given_up] = await w.runtime.recovery.recover_starting(timedelta(0))
        assert given_up.step == "transform"
        await w.until(lambda: "daily-sales failed" in card(w, "Workflow"), what="the workflow to stop, announced")
        # the trigger answers after all; the transform run is tracked to its end (it succeeds)
        await advance_until(w, lambda: _transform_succeeded(w), "the transform run to end")
        await w.settle(1.0)
        assert not datakitchen.state.requests_to("trigger")  # nothing begins under a workflow announced stopped
        assert "daily-sales failed" in card(w, "Workflow")
        # Retry on its card: the transform step takes the run that succeeded; publish runs; nothing runs twice
        [message] = [m for m in messages(w) if "Workflow daily-sales" in m.text]
        await w.slack.click(message.channel, message.ts, "wf.retry", user="U0ALICE")
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the resumed workflow")
        assert len(tailer.state.requests_to("trigger")) == 1
        assert len(datakitchen.state.requests_to("trigger")) == 1


def _transform_succeeded(w: World) -> bool:
    return any("iowa-pda" in m.text and "succeeded" in m.text for m in w.cards())


async def test_a_given_up_steps_run_found_by_watch_is_taken_by_retry_instead_of_starting_again(
    tmp_path: Path,
) -> None:
    """Found by the seventh pass, fixed with issue 11's lows: the transform step's trigger reached Tailer, which
    started the run, but the connection broke before the answer ("unknown whether it started"): the step failed
    and the workflow stopped. Passive watch then found the Tailer run as one started outside Slack, tied to
    nothing, and Retry on the workflow started transform a second time. Retry now takes that run as the step's."""
    from bot.store.records import RunOrigin

    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        tailer, datakitchen = w.emulators["tailer"], w.emulators["datakitchen"]
        tailer.state.add_fault(Fault(route="trigger", kind="reset", times=1))
        store = w.runtime.store
        assert store is not None
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: "daily-sales failed" in card(w, "Workflow"), "the workflow to stop")
        assert len(tailer.state.requests_to("trigger")) == 1

        async def watched() -> list[int]:
            return [r.id for r in await store.runs.recent("iowa-pda") if r.origin == RunOrigin.WATCH]

        for _ in range(30):  # passive watch lists the Tailer run the broken trigger started
            if await watched():
                break
            w.advance(3)
            await w.settle(0.3)
        [found] = await watched()

        [message] = [m for m in messages(w) if "Workflow daily-sales" in m.text]
        await w.slack.click(message.channel, message.ts, "wf.retry", user="U0ALICE")
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the resumed workflow")
        assert len(tailer.state.requests_to("trigger")) == 1  # transform was not run a second time
        assert len(datakitchen.state.requests_to("trigger")) == 1
        taken = await store.runs.get(found)
        assert taken is not None and taken.step == "transform"
def _daily_with_transform_retried(raw: dict[str, Any]) -> None:
    daily(raw)
    raw["pipelines"]["iowa-pda"]["retry"] = {"attempts": 2, "backoff": "10s"}


async def test_retry_of_a_stopped_workflow_adopts_the_attempt_that_succeeded_after_the_given_up_run(
    tmp_path: Path,
) -> None:
    """Found by the eighth pass: the given-up run, answered after all, failed; its retry policy's next attempt
    succeeded under the stopped workflow. Retry on the workflow adopted only the run the step recorded (the given-up
    one, failed), so it triggered the transform pipeline a third time though it had succeeded."""
    async with world(tmp_path, catalog_edit=_daily_with_transform_retried) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        tailer, datakitchen = w.emulators["tailer"], w.emulators["datakitchen"]
        tailer.state.script(TAILER_CONFIG, [Outcome(result="fail", queued_s=1, running_s=1), QUICK])
        tailer.state.add_fault(Fault(route="trigger", kind="delay", delay=5, times=1))
        store = w.runtime.store
        assert store is not None
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: bool(tailer.state.requests_to("trigger")), "the transform step's trigger")
        await store.release_leases()  # as if its process had died: its start has no owner any more
        [given_up] = await w.runtime.recovery.recover_starting(timedelta(0))
        assert given_up.step == "transform"
        await w.until(lambda: "daily-sales failed" in card(w, "Workflow"), what="the workflow to stop, announced")
        # the trigger answers after all: that run fails, its policy's second attempt succeeds
        await advance_until(w, lambda: _transform_succeeded(w), "the transform's second attempt to end", limit=100)
        await w.settle(1.0)
        assert len(tailer.state.requests_to("trigger")) == 2
        assert not datakitchen.state.requests_to("trigger")  # nothing begins under a workflow announced stopped
        [message] = [m for m in messages(w) if "Workflow daily-sales" in m.text]
        await w.slack.click(message.channel, message.ts, "wf.retry", user="U0ALICE")
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the resumed workflow")
        assert len(tailer.state.requests_to("trigger")) == 2  # the transform that succeeded is not run again
        assert len(datakitchen.state.requests_to("trigger")) == 1


async def test_a_run_ending_while_retry_adopts_it_does_not_leave_its_step_running_for_ever(tmp_path: Path) -> None:
    """Found by the eighth pass (forced interleaving): Retry on the stopped workflow claims the step and adopts its
    run, still running after its late answer; that run's end, handled between the adoption's read and its update,
    moved the claimed step to succeeded and began the next step. The adoption then set the step running over that
    (an update with no expected state): a step running with an ended run, so the workflow never ended."""
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        tailer = w.emulators["tailer"]
        tailer.state.script(TAILER_CONFIG, [Outcome(queued_s=1, running_s=20)])
        tailer.state.add_fault(Fault(route="trigger", kind="delay", delay=5, times=1))
        store = w.runtime.store
        assert store is not None
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: bool(tailer.state.requests_to("trigger")), "the transform step's trigger")
        await store.release_leases()
        [given_up] = await w.runtime.recovery.recover_starting(timedelta(0))
        await w.until(lambda: "daily-sales failed" in card(w, "Workflow"), what="the workflow to stop, announced")
        await advance_until(w, lambda: _answered(w), "the late answer")
        steps = store.workflows
        set_step = steps.set_step

        async def transform_state() -> StepState:
            record = await steps.get(given_up.workflow_run_id or 0)
            assert record is not None
            return record.steps["transform"].state

        async def adoption_after_the_end(workflow_run_id: int, step: str, state: StepState, **kw: Any) -> bool:
            if step == "transform" and state is StepState.RUNNING and kw.get("expect") is None:
                for _ in range(40):  # the run's end is told (by the poller) before the adoption's update
                    if await transform_state() is StepState.SUCCEEDED:
                        break
                    w.advance(3)
                    await w.settle(0.3)
            return await set_step(workflow_run_id, step, state, **kw)

        steps.set_step = adoption_after_the_end  # type: ignore[method-assign]
        [message] = [m for m in messages(w) if "Workflow daily-sales" in m.text]
        await w.slack.click(message.channel, message.ts, "wf.retry", user="U0ALICE")
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the resumed workflow")
        assert await transform_state() is StepState.SUCCEEDED
        assert len(tailer.state.requests_to("trigger")) == 1


def _answered(w: World) -> bool:
    return any("answered after all" in m.text for c in w.cards() for m in w.thread(c))


async def test_a_persons_retry_of_a_step_run_the_workflow_ran_again_does_not_decide_the_step(tmp_path: Path) -> None:
    """Found by the eighth pass: the transform step failed (run 2) and Retry on the workflow ran it again (run 3); run
    2's card still offered Retry, and a person's Retry of it started a third transform run of the same step. That
    run failed first and, being a run of the step, ended it: the workflow was announced stopped while run 3 was
    running, and run 3's success then changed nothing. A run's Retry is refused once its workflow ran its step again
    (Retry on the workflow adopts a person's retry started before it instead of starting another)."""
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        tailer = w.emulators["tailer"]
        failing = Outcome(result="fail", queued_s=1, running_s=1)
        tailer.state.script(TAILER_CONFIG, [failing, Outcome(queued_s=1, running_s=30), failing])
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: "daily-sales failed" in card(w, "Workflow"), "the workflow to stop")
        [workflow] = [m for m in messages(w) if "Workflow daily-sales" in m.text]
        await w.slack.click(workflow.channel, workflow.ts, "wf.retry", user="U0ALICE")
        await advance_until(w, lambda: any("(run #3)" in c.text for c in w.cards()), "the transform run again")
        [first] = [m for m in messages(w) if "iowa-pda failed (run #2)" in m.text and "run.retry" in m.action_ids]
        await w.slack.click(first.channel, first.ts, "run.retry", user="U0ALICE")
        await w.until(lambda: any("earlier run of the step" in r.text for r in w.slack.responses("U0ALICE")), what="the refusal")
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the resumed workflow")
        assert len(tailer.state.requests_to("trigger")) == 2


async def test_a_workflow_that_stops_again_after_retry_is_announced_again(tmp_path: Path) -> None:
    """Found by the eighth pass: the "stopped … cc owners" note was posted once per workflow run (its key "failed"),
    so a workflow that Retry resumed and that stopped again changed only its card: its owners were not told."""
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        failing = Outcome(result="fail", queued_s=1, running_s=1)
        w.emulators["tailer"].state.script(TAILER_CONFIG, [failing, failing])
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await w.until(lambda: "daily-sales" in card(w, "Workflow"), what="the workflow card")
        [workflow] = [m for m in messages(w) if "Workflow daily-sales" in m.text]
        await advance_until(w, lambda: len(_stopped_notes(w, workflow)) == 1, "the workflow to stop, announced")
        await w.until(lambda: "daily-sales failed" in card(w, "Workflow"), what="the stopped workflow's card")
        await w.slack.click(workflow.channel, workflow.ts, "wf.retry", user="U0ALICE")
        await advance_until(w, lambda: len(w.emulators["tailer"].state.requests_to("trigger")) == 2, "the retry")
        await advance_until(w, lambda: len(_stopped_notes(w, workflow)) == 2, "the second stop, announced")
        assert "<@U0BOB>" in _stopped_notes(w, workflow)[-1]


def _stopped_notes(w: World, workflow: Any) -> list[str]:
    return [m.text for m in w.thread(workflow) if "stopped" in m.text]


async def test_retry_does_not_take_a_run_watch_found_long_after_the_given_up_start(tmp_path: Path) -> None:
    """Found by the ninth pass: the tie of a given-up step to a run passive watch found had a lower bound only (a
    minute before the given-up start). The broken trigger's own Tailer run failed (so it is not taken); two hours
    later someone started the same Tailer configuration by hand, and watch found it; Retry on the workflow took that
    unrelated run as the step's and went on from it, the step never run with the workflow's parameters."""
    from bot.store.records import RunOrigin

    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        tailer, datakitchen = w.emulators["tailer"], w.emulators["datakitchen"]
        tailer.state.script(TAILER_CONFIG, [Outcome(result="fail", queued_s=1, running_s=1), QUICK])
        tailer.state.add_fault(Fault(route="trigger", kind="reset", times=1))
        store = w.runtime.store
        assert store is not None
        assert (await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")).ok
        await advance_until(w, lambda: "daily-sales failed" in card(w, "Workflow"), "the workflow to stop")

        async def watched() -> list[int]:
            return [r.id for r in await store.runs.recent("iowa-pda") if r.origin == RunOrigin.WATCH]

        for _ in range(30):  # the broken trigger's run, found by watch: it failed, so it is not the step's
            if await watched():
                break
            w.advance(3)
            await w.settle(0.3)
        assert len(await watched()) == 1
        w.advance(2 * 3600)
        tailer.state.start_run(TAILER_CONFIG, external=True, outcome=Outcome(queued_s=1, running_s=600))
        for _ in range(30):  # the hand-started run, two hours later, found by watch too
            if len(await watched()) == 2:
                break
            w.advance(3)
            await w.settle(0.3)
        later = max(await watched())

        [message] = [m for m in messages(w) if "Workflow daily-sales" in m.text]
        await w.slack.click(message.channel, message.ts, "wf.retry", user="U0ALICE")
        await advance_until(w, lambda: len(tailer.state.requests_to("trigger")) == 2, "transform started again")
        taken = await store.runs.get(later)
        assert taken is not None and taken.step is None and taken.workflow_run_id is None
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the resumed workflow")
        assert len(datakitchen.state.requests_to("trigger")) == 1
