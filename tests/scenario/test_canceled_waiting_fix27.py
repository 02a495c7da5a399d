"""Session 27: what a run canceled before it started says, and what follows from it (the sixteenth pass (a)'s lows).

A run waiting its turn (a retry's backoff, a provider's cap) that a person cancels never reaches the provider: its
card said "*InVision says* canceled at <@U…>'s request before it started" (the provider said nothing, and the
mention was shown as text); a Workflow Builder step waiting for it was completed as a failure of the pipeline; and
Retry on the failure it retried answered "already retried as run #N" (the canceled run, whose card has no Retry)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.emulators._core import Outcome
from bot.emulators.slack.server import Message
from bot.slack.blocks import ids
from bot.store import keys
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.tables import outbox
from bot.store.workflow_runs import WorkflowRunRecord, WorkflowState
from tests.scenario.harness import DK_JOB as DK_KEY
from tests.scenario.harness import FLOW, World, world
from tests.scenario.surface import answered_in_place, ask
from tests.scenario.test_workflow_step import STEP, declare_outputs


async def _waiting_start(w: World, *, started_by: str | None = None) -> RunRecord:
    """A run of ``budget`` held by the provider's cap for ten minutes (as ``TriggerLimits.admit`` leaves one)."""
    store = w.runtime.parts.store
    now = w.runtime.parts.now()
    return await store.runs.create(
        NewRun(provider="invision", connection="invision", job={"dataflow_id": FLOW}, parameters={},
               origin=RunOrigin.SCHEDULE if started_by is None else RunOrigin.SLACK, started_by=started_by,
               pipeline="budget", channel="C0GENERAL", start_at=now + timedelta(minutes=10)),
        now=now, next_poll_at=None,
    )


async def _cancel(w: World, run_id: int, *, user: str = "U0ALICE") -> None:
    question = await ask(w, f"cancel {run_id}", user=user)
    assert question.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS], question.text
    answer = await answered_in_place(
        w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts, user=user), question)
    assert answer.text == f"Canceled run #{run_id} before it started: it will not start.", answer.text


async def test_the_card_of_a_run_canceled_before_it_started_says_who_canceled_it_not_the_provider(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        waiting = await _waiting_start(w)
        await _cancel(w, waiting.id)
        card = await w.card_saying("budget was canceled")
        shown = json.dumps(card.blocks)
        assert "says*" not in shown, shown  # before: "*InVision says* canceled at &lt;@U0ALICE&gt;'s request …"
        assert "&lt;@" not in shown, shown
        assert "Canceled by <@U0ALICE> before it started" in shown, shown
        assert "never ran" in shown, shown


FAILS = Outcome(result="fail", queued_s=0, running_s=1, message="boom")


def _retried_later(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["retry"] = {"attempts": 2, "backoff": "10m"}
    raw["pipelines"]["budget"]["owners"] = ["U0BOB"]
    raw["workflows"] = {
        "nightly": {"channel": "C0ALERTS", "owners": ["U0BOB"], "steps": {"plan": {"pipeline": "budget"}}},
    }


async def _retry_waiting(w: World, first: int) -> RunRecord:
    """The policy's retry of ``first``, waiting its backoff."""
    w.advance(2)  # the InVision run fails
    for _ in range(100):
        waiting = await w.runtime.parts.store.runs.retry_of(first)
        if waiting is not None:
            assert waiting.state == "waiting", waiting
            return waiting
        await w.settle(0.1)
    raise AssertionError(f"run #{first} was not retried")


async def test_a_workflow_builder_step_whose_waiting_retry_is_canceled_says_it_was_canceled_not_failed(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, catalog_edit=_retried_later) as w:
        declare_outputs(w)
        w.emulators["invision"].state.script(FLOW, [FAILS])
        step = await w.slack.execute_function(STEP, {"pipeline": "budget", "wait": True}, user="U0ALICE")
        await w.settle(0.5)
        [first] = await w.runtime.parts.store.runs.recent("budget", 5)
        waiting = await _retry_waiting(w, first.id)
        assert step.state == "running"
        await _cancel(w, waiting.id, user="U0CAROL")
        await w.until(lambda: step.state != "running", what="the step ended with the canceled retry")
        assert step.state == "failed", step  # Slack's steps end in success or error: nothing else
        assert step.error is not None
        assert f"Run #{waiting.id} of budget was canceled by @U0CAROL before it started" in step.error, step.error
        assert "&lt;" not in step.error and "<@" not in step.error, step.error
        async with w.runtime.parts.store.engine.connect() as conn:
            [text] = (await conn.execute(
                select(outbox.c.text).where(outbox.c.key == keys.function_completion(step.id)))).scalars()
        assert text.endswith(": canceled"), text  # the bot's record of it; before: "step …: failed"


async def test_a_workflow_step_whose_waiting_retry_is_canceled_is_recorded_canceled(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_retried_later) as w:
        w.emulators["invision"].state.script(FLOW, [FAILS])
        assert (await w.command("run nightly")).ok
        await w.settle(0.5)
        [first] = await w.runtime.parts.store.runs.recent("budget", 5)
        waiting = await _retry_waiting(w, first.id)
        await _cancel(w, waiting.id, user="U0CAROL")
        store = w.runtime.parts.store

        async def ended() -> WorkflowRunRecord:
            for _ in range(100):
                record = await store.workflows.get(first.workflow_run_id or 0)
                assert record is not None
                if record.state is not WorkflowState.RUNNING:
                    return record
                await w.settle(0.1)
            raise AssertionError("the workflow did not stop")

        record = await ended()
        assert record.steps["plan"].state.value == "canceled", record  # before: failed
        assert record.steps["plan"].run_id == waiting.id
        await w.until(lambda: any("stopped" in m.text for m in w.slack.messages("C0GENERAL", top_level=False)),
                      what="the workflow's note that it stopped")
        [note] = [m for m in w.slack.messages("C0GENERAL", top_level=False) if "stopped" in m.text]
        assert "*plan* (canceled)" in note.text, note.text

        def card_says_canceled() -> bool:  # the card's edit is paced (``message_edit_gap``): it may follow the note
            card = [m for m in w.slack.messages("C0GENERAL") if "nightly" in m.text and "plan" in json.dumps(m.blocks)]
            return bool(card) and "*plan* · pipeline *budget* · canceled" in json.dumps(card[-1].blocks,
                                                                                       ensure_ascii=False)

        await w.until(card_says_canceled, what="the workflow's card showing the step canceled")


async def test_retry_on_a_failure_whose_waiting_retry_was_canceled_retries_it(tmp_path: Path) -> None:
    """The on-call engineer canceled the policy's retry (say, to fix the data first), then wants it run: Retry on
    the failure's alert (or card) runs it now. Before: "Run #1 was already retried as run #2" (the canceled run,
    whose card has no Retry); only `/pipeline retry 2` worked."""
    async with world(tmp_path, catalog_edit=_retried_later) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [FAILS])
        assert (await w.command("run budget")).ok
        await w.settle(0.5)
        [first] = await w.runtime.parts.store.runs.recent("budget", 5)
        waiting = await _retry_waiting(w, first.id)
        failed_card = await w.card_saying("budget failed")
        await _cancel(w, waiting.id)
        await w.until(lambda: any("budget" in m.text for m in w.slack.messages("C0ALERTS")),
                      what="the failure's alert, its retry canceled")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "budget" in m.text]
        # the failure's card offers Retry again: its only retry never ran
        await w.until(lambda: ids.RUN_RETRY in w.slack.message("C0GENERAL", failed_card.ts).action_ids,
                      what="Retry back on the failure's card")

        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0BOB")  # an owner
        await w.until(lambda: any("Retrying as #" in e.text or "already retried" in e.text
                                  for e in w.slack.ephemerals("C0ALERTS", "U0BOB")), what="Retry's answer")
        said = [e.text for e in w.slack.ephemerals("C0ALERTS", "U0BOB")]
        assert not any("already retried" in s for s in said), said
        runs = await w.runtime.parts.store.runs.recent("budget", 5)
        [again] = [r for r in runs if r.id not in (first.id, waiting.id)]
        assert f"🔁 Retrying as #{again.id}…" in said, said
        assert again.started_by == "U0BOB"
        await w.until(lambda: len(invision.requests_to("trigger")) == 2, what="the retry's trigger")
        await w.until(lambda: f"Retried as #{again.id}" in json.dumps(
            w.slack.message("C0GENERAL", failed_card.ts).blocks), what="the failure's card pointing at it")
        assert ids.RUN_RETRY not in w.slack.message("C0GENERAL", failed_card.ts).action_ids
        # and once more: that retry is under way, so a second click is refused as before
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0BOB")
        await w.until(lambda: any("already retried" in e.text for e in w.slack.ephemerals("C0ALERTS", "U0BOB")),
                      what="the second Retry refused")
        assert len(invision.requests_to("trigger")) == 2


def _dk_retried_later(raw: dict[str, Any]) -> None:
    raw["pipelines"]["sales-dashboard"]["watch"] = False
    raw["pipelines"]["sales-dashboard"]["retry"] = {"attempts": 2, "backoff": "10m"}


async def dk_failure_its_retry_canceled(w: World) -> tuple[RunRecord, RunRecord, Message, str]:
    """A DataKitchen order failed at its ``transform`` step, its policy's retry canceled while it waited: the failed
    run, the canceled retry, the failure's details in its thread (Resume), and the failed order's id."""
    w.emulators["datakitchen"].state.script(DK_KEY, Outcome(
        result="fail", queued_s=1, running_s=5, tasks=("extract", "transform"), failed_tasks=("transform",),
        message="bad row",
    ))
    assert (await w.command("run sales-dashboard source_date=2026-11-03")).ok
    await w.card_saying("sales-dashboard is queued")
    store = w.runtime.parts.store
    [first] = await store.runs.recent("sales-dashboard", 5)
    w.advance(10)
    waiting = await _retry_waiting(w, first.id)
    card = await w.card_saying("sales-dashboard failed")
    await _cancel(w, waiting.id)
    await w.until(lambda: any("Details of run" in m.text for m in w.thread(card)), what="the failure's details")
    [note] = [m for m in w.thread(card) if "Details of run" in m.text]
    order = (await store.runs.get(first.id) or first).provider_run_id
    assert order is not None
    return first, waiting, note, order


async def test_resume_of_a_failure_whose_waiting_retry_was_canceled_resumes_its_order(tmp_path: Path) -> None:
    """Resume from the failed step, past the canceled retry: DataKitchen resumes the failed order under its own id;
    the failed attempt keeps a precise id (not the canceled retry, which never had one)."""
    async with world(tmp_path, catalog_edit=_dk_retried_later) as w:
        dk = w.emulators["datakitchen"]
        store = w.runtime.parts.store
        first, waiting, note, order = await dk_failure_its_retry_canceled(w)
        assert "run.resume" in note.action_ids

        await w.slack.click(note.channel, note.ts, "run.resume", user="U0ALICE")
        await w.until(lambda: len(dk.state.requests_to("resume")) == 1, what="DataKitchen asked to resume")
        again: list[RunRecord] = []

        async def resumed() -> bool:
            again[:] = [r for r in await store.runs.recent("sales-dashboard", 5) if r.provider_run_id == order]
            return bool(again) and again[0].id not in (first.id, waiting.id)

        for _ in range(100):
            if await resumed():
                break
            await w.settle(0.1)
        assert again and again[0].retry_of == waiting.id, again  # the database's one retry per run
        failed = await store.runs.get(first.id)
        assert failed is not None and failed.provider_run_id == f"{order}/attempt-1", failed
        canceled = await store.runs.get(waiting.id)
        assert canceled is not None and canceled.provider_run_id is None, canceled
        assert len(dk.state.requests_to("trigger")) == 1  # no new order: the failed one resumed
