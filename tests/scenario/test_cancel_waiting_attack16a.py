"""A schedule's start held by a provider's cap on starts, canceled by a person while it waited: the person asked for
it, so the owners are not alerted that the pipeline "failed" (sixteenth pass a). Before, the cancel went the way of a
schedule's start that never got going (refused, unreachable: nobody asked for it, so its owners are told), and the
owners were pinged with a failure alert saying "canceled at <@U0ALICE>'s request before it started"."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.slack.blocks import ids
from bot.store.records import NewRun, RunOrigin
from tests.scenario.harness import FLOW, World, world
from tests.scenario.surface import answered_in_place, ask


def _owned(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["owners"] = ["U0BOB"]


def _alerts(w: World, words: str) -> list[str]:
    return [json.dumps([m.text, m.blocks]) for m in w.slack.messages("C0ALERTS") if words in m.text]


async def test_a_schedules_start_waiting_for_a_cap_canceled_by_a_person_alerts_nobody(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_owned) as w:
        store = w.runtime.parts.store
        now = w.runtime.parts.now()
        # the schedule's start, held by the provider's cap until the next minute (``TriggerLimits.admit``)
        waiting = await store.runs.create(
            NewRun(provider="invision", connection="invision", job={"dataflow_id": FLOW}, parameters={},
                   origin=RunOrigin.SCHEDULE, pipeline="budget", channel="C0GENERAL",
                   start_at=now + timedelta(minutes=10)),
            now=now, next_poll_at=None,
        )
        question = await ask(w, f"cancel {waiting.id}")
        assert question.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS], question.text
        answer = await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts),
                                         question)
        assert answer.text == f"Canceled run #{waiting.id} before it started: it will not start.", answer.text
        await w.card_saying("budget was canceled")
        await w.settle(2.0)
        assert not _alerts(w, "budget"), _alerts(w, "budget")  # before: the owners pinged, "budget failed"
        assert not await store.alerting.open_alerts()
        assert not await store.alerting.counts_run("budget", waiting.id, since=now)
