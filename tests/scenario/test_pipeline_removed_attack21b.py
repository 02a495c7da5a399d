"""A pipeline removed from the catalog while a run of it goes on, its connection kept (a deploy). A run passive watch
had found failed after the deploy: its alert was not raised (the pipeline's routing and owners are gone), and it has
no card (runs found by watch are told by their alerts), so the failure was recorded and told nobody."""

from __future__ import annotations

from pathlib import Path

from bot.emulators._core import Outcome
from tests.scenario.harness import DK_JOB, world


async def test_a_watched_runs_failure_after_its_pipeline_left_the_catalog_is_told(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.advance(120)
        await w.settle(0.5)  # watching begins
        w.emulators["datakitchen"].external_run(DK_JOB, {}, Outcome(
            result="fail", queued_s=1, running_s=60, message="Node late failed", failed_tasks=("late",)))
        w.advance(5)
        for _ in range(100):
            if await w.runtime.store.runs.in_flight():
                break
            await w.settle(0.05)
        [found] = await w.runtime.store.runs.in_flight()
        await w.restart(lambda raw: raw["pipelines"].pop("sales-dashboard"))
        w.advance(70)  # it fails; its connection is still in the catalog, so it is polled as ever
        await w.until(lambda: any("sales-dashboard failed" in m.text for m in w.slack.messages("C0ALERTS")), 10,
                      what="the failure told where its watch alerted")
        run = await w.runtime.store.runs.get(found.id)
        assert run is not None and run.state == "failed"
        [card] = [m for m in w.slack.messages("C0ALERTS") if "sales-dashboard failed" in m.text and not m.thread_ts]
        await w.until(lambda: bool(w.thread(card)), 10, what="its details in its thread")
        # Retry on it answered "*sales-dashboard* is no longer in the catalog." and nothing of what works
        before = len(w.slack.ephemerals("C0ALERTS", "U0ALICE"))
        await w.slack.click(card.channel, card.ts, "run.retry", user="U0ALICE")
        await w.until(lambda: len(w.slack.ephemerals("C0ALERTS", "U0ALICE")) > before, 5, what="Retry's answer")
        answer = w.slack.ephemerals("C0ALERTS", "U0ALICE")[before].text
        assert "no longer in the bot's catalog" in answer and "provider's console" in answer, answer


async def test_a_workflow_builder_step_naming_a_removed_pipeline_says_what_works(tmp_path: Path) -> None:
    """It failed with "There is no pipeline named 'orders'." and nothing of what would work."""
    async with world(tmp_path) as w:
        await w.restart(lambda raw: raw["pipelines"].pop("orders"))
        step = await w.slack.execute_function("run_pipeline", {"pipeline": "orders"}, user="U0ALICE")
        await w.until(lambda: step.state != "running", what="the step to end")
        assert step.error is not None and "no pipeline named 'orders'" in step.error, step.error
        assert "/pipeline list" in step.error and "put the pipeline back" in step.error, step.error
