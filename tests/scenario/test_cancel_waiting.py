"""A run waiting its turn (a retry's backoff, a provider's cap on starts) can be canceled: nothing is at the provider
yet, so the bot takes it off the queue itself and it never starts. Before, `/pipeline cancel` answered "has not started
yet; try again in a moment" for all the minutes of the backoff, and its card had no Cancel button (fourteenth pass a,
a low from reading). The failure whose retry was canceled is the pipeline's last word: it is announced with its
owners (a retry policy holds a failure's alert for the attempts left), not left held."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from bot.slack.blocks import ids
from tests.scenario.harness import FLOW, World, world
from tests.scenario.surface import answered_in_place, ask, run_number

FAILS = Outcome(result="fail", queued_s=0, running_s=1, message="boom")


def _retried_later(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["retry"] = {"attempts": 3, "backoff": "10m"}
    raw["pipelines"]["budget"]["owners"] = ["U0BOB"]


def _alerts(w: World, words: str) -> list[str]:
    return [json.dumps([m.text, m.blocks]) for m in w.slack.messages("C0ALERTS") if words in m.text]


async def test_a_retry_waiting_for_its_backoff_is_canceled_and_its_failure_announced(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_retried_later) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [FAILS])
        assert (await w.command("run budget")).ok
        store = w.runtime.parts.store
        first = run_number(await w.card_saying("budget"))
        w.advance(2)
        waiting = None
        for _ in range(50):
            waiting = await store.runs.retry_of(first)
            if waiting is not None:
                break
            await w.settle(0.2)
        assert waiting is not None and waiting.state == "waiting", waiting
        card = await w.card_saying("budget failed")
        await w.until(lambda: any(f"`/pipeline cancel {waiting.id}` keeps it from starting" in m.text
                                  for m in w.thread(card)), what="the retry's note, saying how to stop it")
        assert not _alerts(w, "budget")  # held for the attempts left

        question = await ask(w, f"cancel {waiting.id}")
        # InVision has no cancel, but a run waiting its turn needs none
        assert question.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS], question.text
        answer = await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts),
                                         question)
        assert answer.text == f"Canceled run #{waiting.id} before it started: it will not start.", answer.text

        canceled = await store.runs.get(waiting.id)
        assert canceled is not None and (canceled.state, canceled.final) == ("canceled", True)
        await w.until(lambda: bool(_alerts(w, "budget")), what="the failure's alert, no attempt following it")
        assert "U0BOB" in _alerts(w, "budget")[0]
        await w.card_saying("budget was canceled")
        w.advance(15 * 60)  # past the backoff: it does not start
        await w.settle(2.0)
        assert len(invision.requests_to("trigger")) == 1
        assert len(_alerts(w, "budget")) == 1
