"""Session 27: what a run canceled before it started says, and what follows from it (the sixteenth pass (a)'s lows).

A run waiting its turn (a retry's backoff, a provider's cap) that a person cancels never reaches the provider: its
card said "*InVision says* canceled at <@U…>'s request before it started" (the provider said nothing, and the
mention was shown as text); a Workflow Builder step waiting for it was completed as a failure of the pipeline; and
Retry on the failure it retried answered "already retried as run #N" (the canceled run, whose card has no Retry)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.slack.blocks import ids
from bot.store.records import NewRun, RunOrigin, RunRecord
from tests.scenario.harness import FLOW, World, world
from tests.scenario.surface import answered_in_place, ask


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
