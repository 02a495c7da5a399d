"""Stop following, attacked: a run whose status was outside the model when its connection left the catalog (stored
``unknown``, not ended: the provider may still move on from it) was ended by "Stop following" with nothing acted
on: its state stayed the word it was, so the end read as no change, and neither the failure whose retry it was, nor
the thread, nor a workflow's step heard of it (and nothing would replay it after a restart)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.emulators import invision as invision_emulator
from bot.emulators._core import Outcome
from bot.slack.blocks import ids
from tests.scenario.harness import FLOW, World, world
from tests.scenario.surface import reply_to, shown

FAILS = Outcome(result="fail", queued_s=0, running_s=1, message="boom")
HANGS = Outcome(result="hang", queued_s=0, running_s=1)


def _retried(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["retry"] = {"attempts": 2, "backoff": "1s"}


def _renamed(raw: dict[str, Any]) -> None:
    """A deploy that renamed the InVision connection: ``budget`` stays (its policy, its owners), its runs at the old
    connection cannot be followed any more."""
    _retried(raw)
    raw["connections"]["invision-eu"] = raw["connections"].pop("invision")
    raw["pipelines"]["budget"]["connection"] = "invision-eu"


def _alerts(w: World, words: str) -> list[str]:
    return [json.dumps([m.text, m.blocks]) for m in w.slack.messages("C0ALERTS") if words in m.text]


async def test_stop_following_a_retry_whose_status_was_outside_the_model_announces_the_held_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path, catalog_edit=_retried) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [FAILS, HANGS])
        assert (await w.command("run budget")).ok
        store = w.runtime.parts.store
        retry = None
        for _ in range(40):  # the first attempt fails after a second; its retry, held by the policy, a second later
            runs = await store.runs.recent("budget", 5)
            retry = next((r for r in runs if r.retry_of is not None and r.provider_run_id is not None), None)
            if retry is not None:
                break
            w.advance(1)
            await w.settle(0.3)
        assert retry is not None, "the policy's retry did not start"
        # InVision answers a status the bot does not know for the retry: recorded unknown, followed on
        monkeypatch.setitem(invision_emulator._STATUS, "running", "Reconciling")
        w.advance(2)

        async def odd() -> bool:
            run = await store.runs.get(retry.id)
            return run is not None and run.state == "unknown" and not run.final

        for _ in range(50):
            if await odd():
                break
            await w.settle(0.2)
        assert await odd(), await store.runs.get(retry.id)
        assert not _alerts(w, "budget")  # the failure's alert is held for its retry

        await w.restart(_renamed)
        card = await w.card_saying(f"run #{retry.id}")
        await w.until(lambda: ids.RUN_STOP_FOLLOWING in w.slack.message("C0GENERAL", card.ts).action_ids, 15,
                      what="Stop following on the retry's card")
        _, done = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_STOP_FOLLOWING, user="U0ALICE"))
        assert f"Stopped following run #{retry.id}" in done.text, done.text
        ended = await w.card_saying("budget is no longer followed")
        await w.until(lambda: any("stopped following this run" in m.text for m in w.thread(ended)), 10,
                      what="the thread's note")
        await w.until(lambda: bool(_alerts(w, "budget")), 10, what="the held failure's alert")
        assert "S0DATAENG" in " ".join(_alerts(w, "budget")), _alerts(w, "budget")  # with its owners
        record = await store.runs.get(retry.id)
        assert record is not None and record.notified_state == record.state
        assert "is no longer followed" in shown(ended)
