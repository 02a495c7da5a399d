"""Workflow Builder's "Run a pipeline" step, through the fake Slack: ``function_executed`` events signed into the
bot's endpoint as Slack sends them, the step completed or failed with ``functions.completeSuccess`` /
``functions.completeError`` (whose required outputs the fake takes from manifest.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.emulators.slack.functions import FunctionExecution
from tests.scenario.harness import RIVER, World, world

ROOT = Path(__file__).resolve().parents[2]
STEP = "run_pipeline"


def declare_outputs(w: World) -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    w.slack.functions.required_outputs[STEP] = set(manifest["functions"][STEP]["output_parameters"]["required"])


async def ended(w: World, execution: FunctionExecution) -> None:
    await w.until(lambda: execution.state != "running", what=f"the step {execution.id} to end")


async def test_the_step_runs_a_pipeline_to_its_end(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        declare_outputs(w)
        inputs = {"pipeline": "leads-ods", "parameters": "load_date=2026-11-01", "wait": True}
        step = await w.slack.execute_function(STEP, inputs, user="U0ALICE")
        card = await w.card_saying("queued", channel="C0ALERTS")  # the pipeline's channel: the same card
        [trigger] = w.emulators["rivery"].state.requests_to("trigger")
        assert trigger.body["river_id"] == RIVER
        assert trigger.body["variables"] == {"load_date": "2026-11-01"}
        assert "<@U0ALICE>" in str(card.blocks)  # started by the person who used the workflow
        await w.settle()
        assert step.state == "running"  # it waits for the run

        w.advance(6)
        await w.card_saying("running", channel="C0ALERTS")
        assert step.state == "running"
        w.advance(31)
        await w.card_saying("succeeded", channel="C0ALERTS")
        await ended(w, step)
        assert step.state == "completed", step
        assert step.outputs is not None
        [run] = await w.runtime.store.runs.recent("leads-ods", 1)
        assert step.outputs["run_number"] == run.id
        assert step.outputs["state"] == "succeeded"
        permalink = w.slack.calls_to("chat.getPermalink")[0].response["permalink"]
        assert step.outputs["card_url"] == permalink
        await w.settle()
        assert step.attempts == ["success"]  # completed once


async def test_a_failed_run_fails_the_step_with_the_providers_message(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        declare_outputs(w)
        step = await w.slack.execute_function(STEP, {"pipeline": "orders"}, user="U0BOB")  # waits by default
        await w.card_saying("queued", channel="C0ALERTS")
        w.advance(40)
        await w.card_saying("failed", channel="C0ALERTS")
        await ended(w, step)
        assert step.state == "failed"
        assert step.error is not None
        assert "failed" in step.error and "not found" in step.error, step.error  # the provider's own words
        await w.settle()
        assert step.attempts == ["error"]


async def test_a_step_that_does_not_wait_completes_once_started(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        declare_outputs(w)
        step = await w.slack.execute_function(STEP, {"pipeline": "leads-ods", "wait": False}, user="U0ALICE")
        await ended(w, step)
        assert step.state == "completed"
        assert step.outputs is not None
        assert step.outputs["state"] in ("running", "starting", "queued")
        assert step.outputs["card_url"].startswith("http")  # sent once the card was posted, with its link
        w.advance(40)
        await w.card_saying("succeeded", channel="C0ALERTS")  # the run goes on as any other
        await w.settle()
        assert step.attempts == ["success"]


async def test_the_step_runs_with_the_persons_rights(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        declare_outputs(w)
        # sales-dashboard may be run by U0ALICE only
        refused = await w.slack.execute_function(STEP, {"pipeline": "sales-dashboard"}, user="U0BOB")
        await ended(w, refused)
        assert refused.state == "failed"
        assert refused.error is not None and "You may not run sales-dashboard" in refused.error, refused.error
        assert "*" not in refused.error  # plain text: Workflow Builder shows it as it is
        assert not w.emulators["datakitchen"].state.requests_to("trigger")
        unknown = await w.slack.execute_function(STEP, {"pipeline": "nope"}, user="U0ALICE")
        await ended(w, unknown)
        assert unknown.error is not None and "no pipeline named 'nope'" in unknown.error
        bad = await w.slack.execute_function(STEP, {"pipeline": "leads-ods", "parameters": "load_date"}, user="U0ALICE")
        await ended(w, bad)
        assert bad.error is not None and "key=value" in bad.error
        assert not w.emulators["rivery"].state.requests_to("trigger")
        assert not w.cards("C0ALERTS")


async def test_a_repeated_event_starts_one_run(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        declare_outputs(w)
        step, event = w.slack.functions.start(STEP, {"pipeline": "leads-ods"}, user="U0ALICE")
        await w.slack.send_event(event)
        await w.slack.send_event(event)  # Slack delivering it again, under another event_id
        await w.card_saying("queued", channel="C0ALERTS")
        await w.settle()
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 1
        assert len(w.cards("C0ALERTS")) == 1
        w.advance(40)
        await ended(w, step)
        assert step.attempts == ["success"]


async def test_a_waiting_step_survives_a_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        declare_outputs(w)
        step = await w.slack.execute_function(STEP, {"pipeline": "leads-ods"}, user="U0ALICE")
        await w.card_saying("queued", channel="C0ALERTS")
        await w.restart()  # the step waits in the database, not in this process
        w.advance(40)
        await w.card_saying("succeeded", channel="C0ALERTS")
        await ended(w, step)
        assert step.state == "completed"
        await w.settle()
        assert step.attempts == ["success"]
        assert len(w.slack.calls_to("functions.completeSuccess")) == 1


def _retried(raw: dict[str, Any]) -> None:
    raw["pipelines"]["orders"]["retry"] = {"attempts": 2, "backoff": "1s"}


async def test_a_step_waits_for_the_last_attempt_of_its_run(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_retried) as w:
        declare_outputs(w)
        step = await w.slack.execute_function(STEP, {"pipeline": "orders"}, user="U0BOB")
        await w.card_saying("queued", channel="C0ALERTS")
        w.advance(40)
        rivery = w.emulators["rivery"]
        await w.until(lambda: len(rivery.state.requests_to("trigger")) == 1, what="the first attempt")
        # the policy retries: the first attempt's failure does not end the step
        for _ in range(40):
            w.advance(2)
            await w.settle(0.1)
            if len(rivery.state.requests_to("trigger")) == 2:
                break
        assert len(rivery.state.requests_to("trigger")) == 2, "the policy's retry started"
        assert step.state == "running"
        w.advance(40)
        await ended(w, step)
        assert step.state == "failed"
        assert step.error is not None and "not found" in step.error
        runs = await w.runtime.store.runs.recent("orders", 5)
        assert f"Run #{max(r.id for r in runs)} " in step.error  # the last attempt's outcome
        await w.settle()
        assert step.attempts == ["error"]
