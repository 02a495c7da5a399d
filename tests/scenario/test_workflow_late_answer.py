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

from bot.emulators._core import Fault
from tests.scenario.harness import World, world
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
